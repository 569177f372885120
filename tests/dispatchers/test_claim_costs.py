"""The claim path's queue shape (issue 14): a claim reads only what it could take.

Open deliveries of a disabled subscription are parked out of the claims' way, an ordered
subscription's later events about an object wait behind the object's head outside the claims'
index, and a claim locks and writes only the rate-limited subscriptions it takes deliveries of.
Against a real PostgreSQL server (a fresh database per test): the queue's columns, the locks and
the plans, which only Postgres has. What a claim may take (parked deliveries come back when their
subscription is enabled, an object's events go in order, which deliveries are first deliveries) is
the contract both stores keep: `test_store_contract.py`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from dispatchers import metrics
from dispatchers.http import HttpResult
from dispatchers.matching import SubscriptionFilter
from dispatchers.model import AttemptRecord, DueDelivery
from dispatchers.outcomes import Outcome, Verdict
from dispatchers.postgres import Store
from dispatchers.postgres import queue as pg_queue
from herald_contracts import DomainEvent, encode_domain_event

NOW = datetime(2026, 8, 20, 9, 0, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DELIVERED = Outcome(Verdict.DELIVERED)
FAILED = Outcome(Verdict.FAILED)


def _event(n: int, *, name: str = "payments") -> DomainEvent:
    return DomainEvent(
        id=f"event-{name}-{n}",
        source=f"/clusters/c/namespaces/billing/rollouts/{name}",
        type="dev.herald.rollout.step_advanced",
        subject=name,
        time="2026-08-20T09:00:00Z",
        data={"cluster": "c", "namespace": "billing", "name": name, "step_index": n},
        key=f"c/billing/Rollout/{name}",
    )


def _subscribe(
    store: Store, *, ordered: bool = True, rate_limit_per_s: float | None = None
) -> uuid.UUID:
    return store.subscriptions.create(
        url="http://127.0.0.1:9/hooks",
        secrets=[SECRET],
        filter=SubscriptionFilter(),
        ordered=ordered,
        rate_limit_per_s=rate_limit_per_s,
    )


def _record(store: Store, events: list[DomainEvent], *subscriptions: uuid.UUID) -> int:
    return store.events.record_events(
        [(e, encode_domain_event(e), list(subscriptions)) for e in events], now=NOW
    )


def _claim(store: Store, at: datetime = NOW) -> list[DueDelivery]:
    return store.queue.claim_due(now=at, limit=50, lease_s=60)


def _finish(store: Store, due: DueDelivery, outcome: Outcome, at: datetime = NOW) -> None:
    attempt = AttemptRecord(
        delivery_id=due.id,
        claim=due.claim,
        started_at=at,
        duration_ms=3,
        status_code=204 if outcome.verdict is Verdict.DELIVERED else 400,
        response_headers=None,
        response_body=None,
        error=None,
    )
    store.queue.record_attempt(attempt, outcome, now=at)


def _queue_state(database_url: str) -> dict[str, tuple[str, bool, bool]]:
    """Each delivery's (status, parked, waiting), by event id."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT event_id, status, parked, waiting FROM deliveries").fetchall()
    return {event: (status, parked, waiting) for event, status, parked, waiting in rows}


# -- parking ----------------------------------------------------------------------------------


def test_a_disabled_subscriptions_deliveries_are_parked_and_claimed_again_once_enabled(
    store: Store, database_url: str
) -> None:
    subscription = _subscribe(store, ordered=False)
    _record(store, [_event(1), _event(2)], subscription)
    store.subscriptions.set_enabled(subscription, enabled=False, reason="maintenance", now=NOW)
    _record(store, [_event(3)], subscription)  # queued while disabled: parked from the start
    assert {e: parked for e, (_, parked, _) in _queue_state(database_url).items()} == {
        "event-payments-1": True,
        "event-payments-2": True,
        "event-payments-3": True,
    }
    assert _claim(store) == []
    store.subscriptions.set_enabled(subscription, enabled=True, reason=None, now=NOW)
    assert not any(parked for _, parked, _ in _queue_state(database_url).values())
    assert sorted(d.event_id for d in _claim(store)) == [
        "event-payments-1",
        "event-payments-2",
        "event-payments-3",
    ]


def test_a_subscription_disabled_by_410_gone_has_its_open_deliveries_parked(
    store: Store, database_url: str
) -> None:
    subscription = _subscribe(store, ordered=False)
    _record(store, [_event(1), _event(2, name="orders")], subscription)
    claimed = {d.event_id: d for d in _claim(store)}
    store.queue.release([claimed["event-orders-2"]])
    _finish(store, claimed["event-payments-1"], Outcome(Verdict.GONE))
    state = _queue_state(database_url)
    assert state["event-orders-2"] == ("pending", True, False)
    assert state["event-payments-1"] == ("failed", False, False)
    store.subscriptions.set_enabled(subscription, enabled=True, reason=None, now=NOW)
    assert [d.event_id for d in _claim(store)] == ["event-orders-2"]


def test_a_delivery_redelivered_or_replayed_for_a_disabled_subscription_waits_parked(
    store: Store, database_url: str
) -> None:
    subscription = _subscribe(store, ordered=False)
    _record(store, [_event(1)], subscription)
    [due] = _claim(store)
    _finish(store, due, DELIVERED)
    store.subscriptions.set_enabled(subscription, enabled=False, reason="maintenance", now=NOW)
    assert store.log.redeliver(due.id, now=NOW)
    assert _queue_state(database_url)["event-payments-1"] == ("pending", True, False)
    assert _claim(store) == []
    store.subscriptions.set_enabled(subscription, enabled=True, reason=None, now=NOW)
    [again] = _claim(store)
    assert again.id == due.id


# -- ordering: one head per object ------------------------------------------------------------


def test_only_each_objects_first_open_delivery_is_a_candidate(
    store: Store, database_url: str
) -> None:
    subscription = _subscribe(store, ordered=True)
    _record(store, [_event(n) for n in (1, 2, 3)] + [_event(1, name="orders")], subscription)
    assert _queue_state(database_url) == {
        "event-payments-1": ("pending", False, False),
        "event-payments-2": ("pending", False, True),
        "event-payments-3": ("pending", False, True),
        "event-orders-1": ("pending", False, False),
    }


def test_an_event_queued_after_its_objects_head_finished_is_the_new_head(
    store: Store, database_url: str
) -> None:
    subscription = _subscribe(store, ordered=True)
    _record(store, [_event(1)], subscription)
    [first] = _claim(store)
    _finish(store, first, DELIVERED)
    _record(store, [_event(1), _event(2)], subscription)  # a repeat of 1 (absorbed), then 2
    assert _queue_state(database_url)["event-payments-2"] == ("pending", False, False)
    assert [d.event_id for d in _claim(store)] == ["event-payments-2"]


def test_a_redelivered_earlier_event_goes_before_the_later_ones_still_open(
    store: Store, database_url: str
) -> None:
    subscription = _subscribe(store, ordered=True)
    _record(store, [_event(1), _event(2), _event(3)], subscription)
    [first] = _claim(store)
    _finish(store, first, DELIVERED)
    assert store.log.redeliver(first.id, now=NOW)  # event 2 was the head: it waits again
    state = _queue_state(database_url)
    assert state["event-payments-1"] == ("pending", False, False)
    assert state["event-payments-2"] == ("pending", False, True)
    assert [d.event_id for d in _claim(store)] == ["event-payments-1"]


# -- rate limits ------------------------------------------------------------------------------


@pytest.fixture
def locked_idle_subscription(store: Store, database_url: str) -> Iterator[uuid.UUID]:
    """A rate-limited subscription with nothing due, its row locked by another transaction."""
    idle = _subscribe(store, ordered=False, rate_limit_per_s=5)
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT 1 FROM subscriptions WHERE id = %s FOR UPDATE", (idle,))
        yield idle
        conn.rollback()


def test_a_claim_neither_locks_nor_writes_an_idle_rate_limited_subscriptions_row(
    store: Store, database_url: str, locked_idle_subscription: uuid.UUID
) -> None:
    free = _subscribe(store, ordered=False)
    limited = _subscribe(store, ordered=False, rate_limit_per_s=5)
    _record(store, [_event(1)], free, limited)
    claimed: list[DueDelivery] = []
    claiming = threading.Thread(target=lambda: claimed.extend(_claim(store)), daemon=True)
    claiming.start()
    claiming.join(timeout=30)  # it would wait for the lock for as long as it is held
    assert not claiming.is_alive()
    assert sorted(str(d.subscription_id) for d in claimed) == sorted([str(free), str(limited)])
    with psycopg.connect(database_url) as conn:
        buckets = dict(
            conn.execute(
                "SELECT id, rate_tokens FROM subscriptions WHERE rate_limit_per_s IS NOT NULL"
            ).fetchall()
        )
    assert buckets == {locked_idle_subscription: None, limited: 4.0}  # only the one spent from


# -- the end-to-end latency: first deliveries only --------------------------------------------


def _end_to_end_count() -> float:
    return REGISTRY.get_sample_value("herald_dispatcher_end_to_end_seconds_count") or 0.0


@pytest.mark.parametrize("first", [True, False])
def test_the_end_to_end_latency_is_observed_for_first_deliveries_only(first: bool) -> None:
    delivery = DueDelivery(
        id=uuid.uuid4(),
        event_id="e",
        subscription_id=uuid.uuid4(),
        url="http://127.0.0.1:9/",
        secrets=(SECRET,),
        body=b"{}",
        attempt_number=1,
        round_attempt=1,
        claim=uuid.uuid4(),
        event_time=NOW,
        first_delivery=first,
    )
    before = _end_to_end_count()
    result = HttpResult(status_code=204, headers=None, body=None, error=None, duration_ms=3)
    metrics.observe_attempt(delivery, result, DELIVERED, now=NOW + timedelta(seconds=1))
    assert _end_to_end_count() - before == (1.0 if first else 0.0)


# -- the migration ----------------------------------------------------------------------------


def test_migration_0009_parks_and_queues_the_open_deliveries_already_stored(
    infra_env: dict[str, str],
) -> None:
    admin_url = infra_env["HERALD_DATABASE_URL"]
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        files = sorted(
            f
            for f in resources.files("dispatchers.migrations").iterdir()
            if f.name.endswith(".sql") and f.name < "0009"
        )
        with psycopg.connect(url) as conn:
            conn.execute(
                "CREATE TABLE schema_migrations (version text PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for f in files:
                conn.execute(f.read_text().encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version) VALUES (%s)",
                    (f.name.removesuffix(".sql"),),
                )
            ordered, disabled = uuid.uuid4(), uuid.uuid4()
            conn.execute(
                "INSERT INTO subscriptions (id, url, secrets, ordered, enabled)"
                " VALUES (%s, 'http://127.0.0.1:9/', ARRAY['s'], true, true),"
                " (%s, 'http://127.0.0.1:9/', ARRAY['s'], false, false)",
                (ordered, disabled),
            )
            for n in range(4):
                conn.execute(
                    "INSERT INTO events (id, type, source, object_key, time, payload, body)"
                    " VALUES (%s, 't', 's', 'k', now(), '{}', '{}')",
                    (f"e{n}",),
                )
            for n, sub, status in [
                (0, ordered, "delivered"),
                (1, ordered, "retrying"),
                (2, ordered, "pending"),
                (3, ordered, "pending"),
                (0, disabled, "pending"),
                (1, disabled, "failed"),
            ]:
                conn.execute(
                    "INSERT INTO deliveries (id, event_id, subscription_id, object_key, status,"
                    " next_attempt_at) VALUES (%s, %s, %s, 'k', %s, now())",
                    (uuid.uuid4(), f"e{n}", sub, status),
                )
        store = Store.open(url)
        try:
            assert store.migrate() == [f.removesuffix(".sql") for f in _later_than_0008()]
        finally:
            store.close()
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT event_id, subscription_id = %s, parked, waiting FROM deliveries"
                " ORDER BY subscription_id = %s DESC, event_id",
                (ordered, ordered),
            ).fetchall()
        assert rows == [
            ("e0", True, False, False),  # delivered: not in the queue
            ("e1", True, False, False),  # the object's head
            ("e2", True, False, True),
            ("e3", True, False, True),
            ("e0", False, True, False),  # a disabled subscription's open delivery: parked
            ("e1", False, False, False),  # failed: not in the queue
        ]
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _later_than_0008() -> list[str]:
    return sorted(
        f.name
        for f in resources.files("dispatchers.migrations").iterdir()
        if f.name.endswith(".sql") and f.name >= "0009"
    )


# -- the plan ---------------------------------------------------------------------------------


def _pages_and_indexes(
    conn: psycopg.Connection[Any], sql: str, now: datetime
) -> tuple[int, set[str]]:
    [[plan]] = conn.execute(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, {"now": now, "held": [], "limit": 10}
    ).fetchall()
    indexes: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        if "Index Name" in node:
            indexes.add(node["Index Name"])
        for child in node.get("Plans", []):
            walk(child)

    top = plan[0]["Plan"]
    walk(top)
    return top["Shared Hit Blocks"] + top["Shared Read Blocks"], indexes


def test_a_claim_reads_the_same_few_pages_whatever_waits_or_is_parked(
    store: Store, database_url: str
) -> None:
    parked = _subscribe(store, ordered=False)
    _record(store, [_event(n, name=f"svc-{n}") for n in range(3000)], parked)
    store.subscriptions.set_enabled(parked, enabled=False, reason="maintenance", now=NOW)
    ordered = _subscribe(store, ordered=True)
    _record(store, [_event(0)], ordered)
    [head] = _claim(store)
    _finish(store, head, Outcome(Verdict.RETRY, NOW + timedelta(days=1)))
    _record(store, [_event(n) for n in range(1, 3001)], ordered)  # behind the retrying head
    _subscribe(store, ordered=False, rate_limit_per_s=1)  # idle, limited
    free = _subscribe(store, ordered=False)
    _record(store, [_event(n, name=f"free-{n}") for n in range(20)], free)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE deliveries")
        due_pages, due_indexes = _pages_and_indexes(conn, pg_queue._DUE_UNTHROTTLED, NOW)
        bucket_pages, bucket_indexes = _pages_and_indexes(conn, pg_queue._DUE_BUCKETS, NOW)
    # Before migration 0009 the first read every one of the 6,000 deliveries it skipped.
    assert {i for i in due_indexes if i.startswith("deliveries")} == {"deliveries_claimable"}
    assert due_pages < 40
    assert bucket_indexes <= {"deliveries_claimable_by_subscription"}
    assert bucket_pages < 10
