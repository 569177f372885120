"""Where the tests find Helm: `HERALD_HELM`, else the cache `deploy/local/setup.sh` builds into,
else PATH; nowhere is an error that says how to get it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from herald_dev.helm import HelmError, helm_binary, the_one


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_herald_helm_names_the_binary(tmp_path: Path) -> None:
    given = tmp_path / "elsewhere" / "helm"
    assert helm_binary({"HERALD_HELM": str(given), "XDG_CACHE_HOME": str(tmp_path)}) == given


def test_the_setup_cache_is_found_under_xdg_cache_home(tmp_path: Path) -> None:
    built = _executable(tmp_path / "herald" / "bin" / "helm")
    assert helm_binary({"XDG_CACHE_HOME": str(tmp_path), "PATH": ""}) == built


def test_helm_on_path_is_the_last_resort(tmp_path: Path) -> None:
    on_path = _executable(tmp_path / "bin" / "helm")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": str(on_path.parent)}
    assert helm_binary(env) == on_path


def test_no_helm_anywhere_says_to_run_make_setup(tmp_path: Path) -> None:
    with pytest.raises(HelmError, match="make setup"):
        helm_binary({"XDG_CACHE_HOME": str(tmp_path), "PATH": str(tmp_path / "empty")})


def test_the_one_refuses_none_or_several() -> None:
    objects = [
        {"kind": "Service", "metadata": {"labels": {"app.kubernetes.io/component": c}}}
        for c in ("collector", "processor")
    ]
    assert the_one(objects, "Service", "processor") == objects[1]
    with pytest.raises(LookupError, match="2 objects"):
        the_one(objects, "Service")
    with pytest.raises(LookupError, match="0 objects"):
        the_one(objects, "Deployment")
