"""What only the Postgres store does: its migrations, and telling an outage from a database that
answers without Herald's tables. The contract both stores keep is `test_store_contract.py`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from dispatchers.matching import SubscriptionFilter
from dispatchers.model import StoreError
from dispatchers.postgres import Store
from herald_contracts import DomainEvent, encode_domain_event


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


NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _event(n: int) -> DomainEvent:
    return DomainEvent(
        id=f"event-{n:02d}",
        source="/clusters/c/namespaces/billing/rollouts/payments",
        type="dev.herald.rollout.step_advanced",
        subject="payments",
        time="2026-11-30T08:00:00Z",
        data={"cluster": "c", "namespace": "billing", "name": "payments", "step_index": n},
        key="c/billing/Rollout/payments",
    )


def test_events_stored_before_the_arrival_order_are_numbered_in_it_not_in_heap_order(
    database_url: str,
) -> None:
    """Migration 0010 numbers the events already stored (`events.seq`), and replay follows that
    number: numbered in heap order, after a clean-up freed space, the later events came first and
    an ordered subscription's replay sent one object's later events first (found in review)."""
    # The database as it was before 0010.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE events DROP COLUMN seq")
        conn.execute("DELETE FROM schema_migrations WHERE version LIKE '0010%'")
    store = Store.open(database_url)
    try:
        # Ten events of one object arrive; the clean-up removes the first five; three later ones
        # arrive and take the space it freed.
        store.events.record_events(
            [(e, encode_domain_event(e), []) for e in map(_event, range(1, 11))], now=NOW
        )
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM events WHERE id <= 'event-05'")
            conn.execute("VACUUM events")  # what autovacuum does after a clean-up
        store.events.record_events(
            [(e, encode_domain_event(e), []) for e in map(_event, range(11, 14))], now=NOW
        )
        store.migrate()  # 0010 now
        sub_id = store.subscriptions.create(
            url="http://127.0.0.1:9/hooks",
            secrets=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            filter=SubscriptionFilter(),
            ordered=True,
        )
        subscription = store.subscriptions.get(sub_id)
        assert subscription is not None
        since = datetime(2026, 1, 1, tzinfo=UTC)
        assert store.events.replay(subscription, since=since, until=None, now=NOW) == 8
        first = store.queue.claim_due(now=NOW, limit=10, lease_s=60)
        # The ordered subscription gets the object's earliest event still stored first.
        assert [d.event_id for d in first] == ["event-06"]
        with psycopg.connect(database_url) as conn:
            by_seq = [r[0] for r in conn.execute("SELECT id FROM events ORDER BY seq").fetchall()]
            by_arrival = [
                r[0]
                for r in conn.execute("SELECT id FROM events ORDER BY received_at, id").fetchall()
            ]
        assert by_seq == by_arrival
    finally:
        store.close()
