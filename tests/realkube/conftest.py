"""The real-cluster tier: the collector against a real kube-apiserver and etcd (`herald_dev.realkube`).

The binaries come from `herald_dev.kubeassets`: `KUBEBUILDER_ASSETS` if set, else the per-machine
cache, else built from the Go module proxy once (about 13 minutes; `make kube-assets` does it first,
and so does the session itself before any test runs when the tier is selected).
One server runs for the whole session (`real_kube`); tests that need other server flags, or that
break the server for good (etcd wiped), start their own with `start_real_kube`. Each test writes its
Events into a namespace of its own (`namespace`), so tests sharing the server never see each other's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from herald_dev.kubeassets import AssetsError, ensure_assets
from herald_dev.realkube import RealKube
from tests.realkube.kube import new_namespace

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder `realkube` (a `pytestmark` in a conftest marks nothing), so
    that `pytest -m realkube` runs the tier alone and `-m 'not realkube'` everything else."""
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.realkube)


_found: list[Path | AssetsError] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    """Find or build the binaries before any test runs, when the tier is selected: a build (about
    13 minutes the first time) inside a fixture would count against the first test's timeout
    (pytest-timeout's 120 s covers fixture setup) and be killed, and every test of the tier with it."""
    if any(item.get_closest_marker("realkube") for item in session.items):
        try:
            _found.append(ensure_assets())
        except AssetsError as e:
            _found.append(e)


@pytest.fixture(scope="session")
def kube_assets() -> Path:
    found = _found[0] if _found else ensure_assets()
    if isinstance(found, AssetsError):
        pytest.fail(f"kubeassets: {found}", pytrace=False)
    return found


@pytest.fixture(scope="session")
def real_kube(kube_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealKube]:
    kube = RealKube(kube_assets, tmp_path_factory.mktemp("realkube"))
    try:
        yield kube.start()
    finally:
        kube.stop()


@pytest.fixture
def start_real_kube(
    kube_assets: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., RealKube]]:
    """Start a server of this test's own (`RealKube` keyword arguments); stopped after the test."""
    started: list[RealKube] = []

    def start(**options: Any) -> RealKube:
        kube = RealKube(kube_assets, tmp_path_factory.mktemp("realkube-own"), **options)
        started.append(kube)
        return kube.start()

    yield start
    for kube in started:
        print(kube.logs())
        kube.stop()


@pytest.fixture
def namespace(real_kube: RealKube) -> str:
    """A fresh namespace on the shared server."""
    return new_namespace(real_kube)
