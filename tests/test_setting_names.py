"""The registry of Herald's setting names (`herald_runtime.setting_names`) holds every name the
services read: a name missing from it would be warned about at start as unknown, though read."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from collectors.settings import CollectorSettings
from dispatchers.settings import DispatcherSettings
from herald_runtime import setting_names
from processors.settings import ProcessorSettings

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"\bHERALD_[A-Z0-9]+(?:_[A-Z0-9]+)*\b")

SERVICES = {
    "collectors": setting_names.COLLECTOR,
    "processors": setting_names.PROCESSOR,
    "dispatchers": setting_names.DISPATCHER,
}
PACKAGES = {**SERVICES, "herald_runtime/topics": setting_names.TOPICS_COMMAND}


def _names_in_strings(package: str) -> set[str]:
    """Every `HERALD_*` name in a string of the package's code (docstrings and messages too)."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.update(NAME.findall(node.value))
    return found


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_name_a_service_mentions_is_registered_as_read_by_it(package: str) -> None:
    assert _names_in_strings(package) - PACKAGES[package] == set()


class _Recording(Mapping[str, str]):
    """An environment that remembers every name asked for."""

    def __init__(self, env: dict[str, str]) -> None:
        self._env = env
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return self._env[name]

    def __contains__(self, name: object) -> bool:
        self.asked.add(str(name))
        return name in self._env

    def get(self, name: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(name)
        return self._env.get(name, default)  # type: ignore[call-overload]

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)


@pytest.mark.parametrize(
    ("read", "env", "names"),
    [
        pytest.param(
            CollectorSettings.from_env,
            {"HERALD_KAFKA_BOOTSTRAP": "k:1", "HERALD_CLUSTER_NAME": "a"},
            setting_names.COLLECTOR,
            id="collector",
        ),
        pytest.param(
            ProcessorSettings.from_env,
            {"HERALD_KAFKA_BOOTSTRAP": "k:1"},
            setting_names.PROCESSOR,
            id="processor",
        ),
        pytest.param(
            DispatcherSettings.from_env,
            {"HERALD_DATABASE_URL": "postgresql://x", "HERALD_KAFKA_BOOTSTRAP": "k:1"},
            setting_names.DISPATCHER,
            id="dispatcher",
        ),
    ],
)
def test_every_name_a_service_reads_is_registered(
    read: Callable[[Mapping[str, str]], object], env: dict[str, str], names: frozenset[str]
) -> None:
    recording = _Recording(env)
    read(recording)
    asked = {n for n in recording.asked if n.startswith("HERALD_")}
    assert asked - names == set()
    assert "HERALD_LOG_LEVEL" in asked
    assert "HERALD_LOG_FORMAT" in asked


def test_the_shared_names_are_read_by_every_service() -> None:
    for names in SERVICES.values():
        assert names >= setting_names.SHARED
    assert frozenset().union(*PACKAGES.values()) == setting_names.KNOWN
