"""The two stores the contract suite runs against, each with the few looks behind its ports a test
needs (which events are kept, an event made older, the clean-up lock held elsewhere); and the
choice of store for the tests of the logic above it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import psycopg
import pytest

from dispatchers.memory import MemoryStore
from dispatchers.model import Stores
from dispatchers.postgres import Store

CLEANUP_LOCK = 0x48455243  # dispatchers.postgres.housekeeping's advisory lock


class Backend(Protocol):
    @property
    def store(self) -> Stores: ...

    def event_ids(self) -> set[str]: ...

    def receive_at(self, event_id: str, at: datetime) -> None:
        """Make a stored event look received at `at`."""
        ...

    def cleaning_elsewhere(self) -> AbstractContextManager[None]:
        """Hold the clean-up lock, as another dispatcher cleaning does."""
        ...


@dataclass
class PostgresBackend:
    store: Store
    url: str

    def event_ids(self) -> set[str]:
        with psycopg.connect(self.url) as conn:
            return {r[0] for r in conn.execute("SELECT id FROM events").fetchall()}

    def receive_at(self, event_id: str, at: datetime) -> None:
        with psycopg.connect(self.url) as conn:
            conn.execute("UPDATE events SET received_at = %s WHERE id = %s", (at, event_id))

    @contextmanager
    def cleaning_elsewhere(self) -> Iterator[None]:
        with psycopg.connect(self.url, autocommit=True) as other:
            other.execute("SELECT pg_advisory_lock(%s)", (CLEANUP_LOCK,))
            yield
            # Released here: a closed connection's locks go only once its server process has ended.
            other.execute("SELECT pg_advisory_unlock(%s)", (CLEANUP_LOCK,))


@dataclass
class MemoryBackend:
    store: MemoryStore

    def event_ids(self) -> set[str]:
        return set(self.store.tables.events)

    def receive_at(self, event_id: str, at: datetime) -> None:
        self.store.tables.events[event_id].received_at = at

    @contextmanager
    def cleaning_elsewhere(self) -> Iterator[None]:
        with self.store.tables.cleaning:
            yield


def memory_unless_postgres_asked(request: pytest.FixtureRequest) -> Stores:
    """For a module's `store` fixture: the in-memory store, unless the test looks behind the ports
    at the database (it asks for `database_url`): then the Postgres store on that database."""
    if "database_url" in request.fixturenames:
        postgres: Store = request.getfixturevalue("postgres_store")
        return postgres
    return MemoryStore()
