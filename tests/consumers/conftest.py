"""The CloudEvents SDK consumers: the Java one is built (`sdks.ensure_java_consumer`) once
collection is over and before any test runs, when a selected test needs it: a build inside a
fixture would count against that test's timeout (pytest-timeout covers fixture setup), and a first
build downloads from Maven Central. Without java or mvn the tests that need them fail, naming what
is missing: they are never skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.consumers.sdks import JavaConsumerError, ensure_java_consumer

_built: list[Path | JavaConsumerError] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    if any("java_consumer" in getattr(item, "fixturenames", ()) for item in session.items):
        try:
            _built.append(ensure_java_consumer())
        except JavaConsumerError as e:
            _built.append(e)


@pytest.fixture(scope="session")
def java_consumer() -> Path:
    """The jar of the Java CloudEvents SDK consumer (`java/`), built before the session's tests."""
    built = _built[0] if _built else ensure_java_consumer()
    if isinstance(built, JavaConsumerError):
        pytest.fail(f"the Java CloudEvents SDK consumer: {built}", pytrace=False)
    return built
