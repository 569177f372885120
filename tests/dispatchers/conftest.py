"""The dispatcher's stores for tests: `memory_store` for the logic above the store (milliseconds),
and `backend`, parametrized over both stores, for the contract suite (`test_store_contract.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dispatchers.memory import MemoryStore
from dispatchers.postgres import Store
from tests.dispatchers.stores import Backend, MemoryBackend, PostgresBackend


@pytest.fixture
def memory_store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def postgres_store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


@pytest.fixture(params=["memory", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        yield MemoryBackend(MemoryStore())
        return
    url: str = request.getfixturevalue("database_url")
    store = Store.open(url)
    yield PostgresBackend(store, url)
    store.close()
