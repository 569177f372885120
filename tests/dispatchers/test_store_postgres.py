"""What only the Postgres store does: its migrations, and telling an outage from a database that
answers without Herald's tables. The contract both stores keep is `test_store_contract.py`."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from dispatchers.model import StoreError
from dispatchers.postgres import Store


def test_migrations_are_idempotent(store: Store) -> None:
    assert store.migrate() == []  # the fixture applied them already


def test_a_database_that_answers_without_herald_tables_is_not_taken_for_unreachable(
    infra_env: dict[str, str],
) -> None:
    """A dispatcher that waited for its database at start must then tell "no tables yet" (stop,
    saying to migrate) from "still unreachable" (wait on): the database answered, so the error of
    the outage before is gone."""
    admin_url = infra_env["HERALD_DATABASE_URL"]
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        store = Store.open(admin_url.rsplit("/", 1)[0] + f"/{name}")
        try:
            store.last_error = "connection refused"  # as the outage before left it
            with pytest.raises(StoreError, match="migrate"):
                store.subscriptions.check_secrets()
            assert store.last_error is None
        finally:
            store.close()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
