"""Where the tests' promtool comes from: the PATH, else the cache setup.sh fills."""

from __future__ import annotations

from pathlib import Path

from herald_dev.promtool import find_promtool


def _executable(directory: Path) -> Path:
    directory.mkdir(parents=True)
    path = directory / "promtool"
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_promtool_on_the_path_comes_before_the_cached_one(tmp_path: Path) -> None:
    on_path = _executable(tmp_path / "bin")
    _executable(tmp_path / "cache" / "herald" / "bin")
    env = {"PATH": str(on_path.parent), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert find_promtool(env) == on_path


def test_the_cached_promtool_is_used_when_the_path_has_none(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path / "empty"), "HOME": str(tmp_path)}
    assert find_promtool(env) is None
    cached = _executable(tmp_path / ".cache" / "herald" / "bin")
    assert find_promtool(env) == cached
