"""Where the real-cluster tier's binaries come from: given, cached, or built (`herald_dev.kubeassets`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from herald_dev.kubeassets import (
    AssetsError,
    cache_dir,
    ensure_assets,
    given_assets,
    staging_version,
)


def _binaries(directory: Path, *names: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = directory / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    return directory


def test_a_kubernetes_release_maps_to_the_version_of_its_published_staging_modules() -> None:
    assert staging_version("v1.37.2") == "v0.37.2"
    assert staging_version("v1.30.0") == "v0.30.0"
    with pytest.raises(AssetsError):
        staging_version("v2.0.0")


def test_kubebuilder_assets_with_both_binaries_is_used_and_nothing_is_built(tmp_path: Path) -> None:
    assets = _binaries(tmp_path / "assets", "etcd", "kube-apiserver", "kubectl")
    env = {"KUBEBUILDER_ASSETS": str(assets), "PATH": ""}  # no `go`: building would fail
    assert ensure_assets(env) == assets


@pytest.mark.parametrize("present", [(), ("etcd",), ("kube-apiserver",)])
def test_kubebuilder_assets_missing_a_binary_is_refused_naming_it(
    tmp_path: Path, present: tuple[str, ...]
) -> None:
    assets = _binaries(tmp_path / "assets", *present)
    with pytest.raises(AssetsError, match=r"KUBEBUILDER_ASSETS=.* has no executable") as raised:
        given_assets({"KUBEBUILDER_ASSETS": str(assets)})
    for name in {"etcd", "kube-apiserver"} - set(present):
        assert name in str(raised.value)


def test_without_kubebuilder_assets_the_binaries_are_cached_per_user_and_version(
    tmp_path: Path,
) -> None:
    assert given_assets({}) is None
    assert given_assets({"KUBEBUILDER_ASSETS": " "}) is None
    xdg = cache_dir({"XDG_CACHE_HOME": str(tmp_path)})
    assert xdg.parent == tmp_path / "herald" / "kube-assets"
    assert "v1.37.2" in xdg.name
    assert "v3.7.3" in xdg.name
    chosen = cache_dir({"HERALD_KUBE_ASSETS_DIR": str(tmp_path / "mine")})
    assert chosen.parent == tmp_path / "mine"


def test_cached_binaries_are_used_without_building(tmp_path: Path) -> None:
    env = {"HERALD_KUBE_ASSETS_DIR": str(tmp_path), "PATH": ""}
    cached = _binaries(cache_dir(env), "etcd", "kube-apiserver")
    assert ensure_assets(env) == cached


def test_nothing_given_nothing_cached_and_no_go_says_what_to_install(tmp_path: Path) -> None:
    env = {"HERALD_KUBE_ASSETS_DIR": str(tmp_path), "PATH": str(tmp_path / "empty")}
    with pytest.raises(AssetsError, match=r"`go` is not installed.*KUBEBUILDER_ASSETS"):
        ensure_assets(env, log=False)
