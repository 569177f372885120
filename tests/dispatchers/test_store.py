"""The Postgres store against a real PostgreSQL server (a fresh database per test)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from dispatchers.matching import SubscriptionFilter
from dispatchers.outcomes import Outcome, Verdict
from dispatchers.postgres import AttemptRecord, DueDelivery, Store, StoreError
from herald_contracts import CloudEvent, DomainEvent, decode_cloudevent, encode_domain_event

NOW = datetime(2026, 8, 20, 9, 0, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


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
    return store.create_subscription(
        url="http://127.0.0.1:9/hooks",
        secrets=[SECRET],
        filter=SubscriptionFilter(),
        ordered=ordered,
        rate_limit_per_s=rate_limit_per_s,
    )


def _record(store: Store, events: list[DomainEvent], subscription: uuid.UUID) -> int:
    return store.record_events(
        [(e, encode_domain_event(e), [subscription]) for e in events], now=NOW
    )


def _attempt(due: DueDelivery, status: int | None) -> AttemptRecord:
    return AttemptRecord(
        delivery_id=due.id,
        claim=due.claim,
        started_at=NOW,
        duration_ms=12,
        status_code=status,
        response_headers={"x": "y"} if status else None,
        response_body="nope" if status else None,
        error=None if status else "ConnectTimeout",
    )


def test_migrations_are_idempotent(store: Store) -> None:
    assert store.migrate() == []  # the fixture applied them already


def test_each_event_and_subscription_pair_gets_exactly_one_delivery(store: Store) -> None:
    subscription = _subscribe(store)
    assert _record(store, [_event(1), _event(2)], subscription) == 2
    assert _record(store, [_event(1), _event(2)], subscription) == 0  # a redelivered batch
    assert len(store.deliveries()) == 2


def test_the_stored_body_is_the_exact_bytes_read(store: Store, database_url: str) -> None:
    subscription = _subscribe(store)
    event = _event(1)
    body = b'{"specversion":"1.0",  "id":"event-payments-1"}'  # odd spacing survives
    store.record_events([(event, body, [subscription])], now=NOW)
    [due] = store.claim_due(now=NOW, limit=10, lease_s=60)
    assert due.body == body


def test_a_claimed_delivery_is_not_claimed_again_until_its_lease_runs_out(store: Store) -> None:
    _record(store, [_event(1)], _subscribe(store, ordered=False))
    assert len(store.claim_due(now=NOW, limit=10, lease_s=60)) == 1
    assert store.claim_due(now=NOW + timedelta(seconds=30), limit=10, lease_s=60) == []
    [again] = store.claim_due(now=NOW + timedelta(seconds=61), limit=10, lease_s=60)
    assert again.attempt_number == 1


def test_an_attempt_recorded_after_its_claim_passed_on_is_logged_and_moves_nothing(
    store: Store, database_url: str
) -> None:
    """A worker whose lease ran out while it sent: another worker claimed the delivery again.
    Whichever records first, both attempts are logged, numbered in turn, and only the current
    claim decides the delivery's state."""
    _record(store, [_event(1), _event(2)], _subscribe(store, ordered=False))
    first = {d.event_id: d for d in store.claim_due(now=NOW, limit=10, lease_s=60)}
    later = NOW + timedelta(seconds=61)
    second = {d.event_id: d for d in store.claim_due(now=later, limit=10, lease_s=60)}
    one, two = "event-payments-1", "event-payments-2"
    # Event 1: the late worker records first (a failure), then the current holder (a success).
    late = store.record_attempts(
        [(_attempt(first[one], None), Outcome(Verdict.RETRY, later))], now=later
    )
    assert late.late == 1
    current = store.record_attempts(
        [(_attempt(second[one], 204), Outcome(Verdict.DELIVERED))], now=later
    )
    assert current.late == 0
    # Event 2: the current holder records first (a success), then the late worker (a failure).
    store.record_attempt(_attempt(second[two], 204), Outcome(Verdict.DELIVERED), now=later)
    store.record_attempt(_attempt(first[two], None), Outcome(Verdict.RETRY, later), now=later)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT d.event_id, d.status, d.attempt_count, a.attempt_number, a.status_code"
            " FROM deliveries d JOIN attempts a ON a.delivery_id = d.id"
            " ORDER BY d.event_id, a.attempt_number"
        ).fetchall()
    assert rows == [
        (one, "delivered", 2, 1, None),
        (one, "delivered", 2, 2, 204),
        (two, "delivered", 2, 1, 204),
        (two, "delivered", 2, 2, None),
    ]
    assert store.claim_due(now=later + timedelta(hours=1), limit=10, lease_s=60) == []


def test_giving_back_a_claim_that_passed_on_leaves_the_new_claim_alone(store: Store) -> None:
    _record(store, [_event(1)], _subscribe(store, ordered=False))
    [stale] = store.claim_due(now=NOW, limit=10, lease_s=60)
    later = NOW + timedelta(seconds=61)
    [current] = store.claim_due(now=later, limit=10, lease_s=60)
    store.release([stale])
    assert store.claim_due(now=later, limit=10, lease_s=60) == []  # still held by `current`
    store.release([current])
    assert len(store.claim_due(now=later, limit=10, lease_s=60)) == 1


def test_a_rate_limited_subscription_is_claimed_no_faster_than_its_rate(store: Store) -> None:
    limited = _subscribe(store, ordered=False, rate_limit_per_s=2)
    free = _subscribe(store, ordered=False)
    events = [_event(n, name=f"svc-{n}") for n in range(10)]
    store.record_events([(e, encode_domain_event(e), [limited, free]) for e in events], now=NOW)

    def claim(at: datetime) -> list[uuid.UUID]:
        return [d.subscription_id for d in store.claim_due(now=at, limit=50, lease_s=60)]

    first = claim(NOW)
    assert (first.count(limited), first.count(free)) == (2, 10)  # a full bucket: 1 s worth
    assert claim(NOW) == []
    assert claim(NOW + timedelta(seconds=0.4)) == []
    assert claim(NOW + timedelta(seconds=0.5)) == [limited]
    assert claim(NOW + timedelta(seconds=1.0)) == [limited]
    assert claim(NOW + timedelta(seconds=60)) == [limited, limited]  # never above one second's


def test_claims_given_back_return_their_tokens(store: Store) -> None:
    limited = _subscribe(store, ordered=False, rate_limit_per_s=3)
    _record(store, [_event(n, name=f"svc-{n}") for n in range(5)], limited)
    claimed = store.claim_due(now=NOW, limit=50, lease_s=60)
    assert len(claimed) == 3
    store.release(claimed[:2])
    assert len(store.claim_due(now=NOW, limit=50, lease_s=60)) == 2


def test_ordered_subscription_holds_later_events_about_the_same_object(store: Store) -> None:
    subscription = _subscribe(store, ordered=True)
    _record(store, [_event(1), _event(2), _event(1, name="orders")], subscription)
    claimed = store.claim_due(now=NOW, limit=10, lease_s=60)
    assert sorted(d.event_id for d in claimed) == ["event-orders-1", "event-payments-1"]
    first = next(d for d in claimed if d.event_id == "event-payments-1")
    store.record_attempt(_attempt(first, 204), Outcome(Verdict.DELIVERED), now=NOW)
    [second] = store.claim_due(now=NOW, limit=10, lease_s=60)
    assert second.event_id == "event-payments-2"


def test_unordered_subscription_sends_everything_at_once(store: Store) -> None:
    _record(store, [_event(1), _event(2)], _subscribe(store, ordered=False))
    assert len(store.claim_due(now=NOW, limit=10, lease_s=60)) == 2


def test_a_retry_waits_for_its_time_and_counts_the_attempt(store: Store, database_url: str) -> None:
    _record(store, [_event(1)], _subscribe(store))
    [due] = store.claim_due(now=NOW, limit=10, lease_s=60)
    retry_at = NOW + timedelta(seconds=5)
    store.record_attempt(_attempt(due, None), Outcome(Verdict.RETRY, retry_at), now=NOW)
    assert store.claim_due(now=NOW + timedelta(seconds=4), limit=10, lease_s=60) == []
    [again] = store.claim_due(now=retry_at, limit=10, lease_s=60)
    assert again.attempt_number == 2
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT status, attempt_count FROM deliveries").fetchone()
        attempts = conn.execute(
            "SELECT attempt_number, status_code, error FROM attempts"
        ).fetchall()
    assert row == ("retrying", 1)
    assert attempts == [(1, None, "ConnectTimeout")]


def test_410_gone_disables_the_subscription_with_the_reason(store: Store) -> None:
    subscription = _subscribe(store)
    _record(store, [_event(1), _event(1, name="orders")], subscription)
    due = store.claim_due(now=NOW, limit=1, lease_s=60)
    store.record_attempt(_attempt(due[0], 410), Outcome(Verdict.GONE), now=NOW)
    [sub] = store.subscriptions()
    assert not sub.enabled
    assert sub.disabled_reason is not None
    assert "410" in sub.disabled_reason
    assert store.claim_due(now=NOW, limit=10, lease_s=60) == []  # a disabled subscription waits


def _finish(store: Store, events: list[DomainEvent], verdict: Verdict, at: datetime) -> None:
    for due in store.claim_due(now=NOW, limit=100, lease_s=60):
        if due.event_id not in {e.id for e in events}:
            store.release([due])
            continue
        store.record_attempt(
            AttemptRecord(
                delivery_id=due.id,
                claim=due.claim,
                started_at=at,
                duration_ms=1,
                status_code=204 if verdict is Verdict.DELIVERED else 500,
                response_headers={},
                response_body="",
                error=None,
            ),
            Outcome(verdict),
            now=at,
        )


def test_clean_up_deletes_old_deliveries_by_status_with_their_attempts_and_events(
    store: Store, database_url: str
) -> None:
    subscription = _subscribe(store, ordered=False)
    old_ok, new_ok, old_failed, mid_failed, open_ = (
        [_event(n, name=name)] for n, name in enumerate(("a", "b", "c", "d", "e"))
    )
    _record(store, old_ok + new_ok + old_failed + mid_failed + open_, subscription)
    _finish(store, old_ok, Verdict.DELIVERED, NOW - timedelta(days=31))
    _finish(store, new_ok, Verdict.DELIVERED, NOW - timedelta(days=29))
    _finish(store, old_failed, Verdict.FAILED, NOW - timedelta(days=91))
    _finish(store, mid_failed, Verdict.FAILED, NOW - timedelta(days=60))
    deleted = store.clean_up(
        now=NOW, delivered_for=timedelta(days=30), failed_for=timedelta(days=90), batch=1
    )
    assert deleted == 2
    with psycopg.connect(database_url) as conn:
        left = {r[0] for r in conn.execute("SELECT event_id FROM deliveries").fetchall()}
        events = {r[0] for r in conn.execute("SELECT id FROM events").fetchall()}
        attempts = conn.execute("SELECT count(*) FROM attempts").fetchone()
    assert left == {new_ok[0].id, mid_failed[0].id, open_[0].id}
    assert events == left
    assert attempts == (2,)


def test_events_no_subscription_wanted_are_kept_for_the_retention_then_cleaned(
    store: Store, database_url: str
) -> None:
    old, recent = _event(1, name="old"), _event(2, name="recent")
    assert (
        store.record_events([(e, encode_domain_event(e), []) for e in (old, recent)], now=NOW) == 0
    )
    with psycopg.connect(database_url) as conn:
        for event, age in ((old, 31), (recent, 29)):
            conn.execute(
                "UPDATE events SET received_at = %s WHERE id = %s",
                (NOW - timedelta(days=age), event.id),
            )
    store.clean_up(
        now=NOW, delivered_for=timedelta(days=30), failed_for=timedelta(days=90), batch=1
    )
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT id FROM events").fetchall() == [(recent.id,)]


def test_only_one_clean_up_runs_at_a_time(store: Store, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (0x48455243,))
        assert (
            store.clean_up(
                now=NOW, delivered_for=timedelta(days=1), failed_for=timedelta(days=1), batch=10
            )
            is None
        )
        # Released here: a closed connection's locks go only once its server process has ended.
        other.execute("SELECT pg_advisory_unlock(%s)", (0x48455243,))
    assert (
        store.clean_up(
            now=NOW, delivered_for=timedelta(days=1), failed_for=timedelta(days=1), batch=10
        )
        == 0
    )


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
                store.check_secrets()
            assert store.last_error is None
        finally:
            store.close()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _foreign(n: int, *, source: str = "https://ci.example.com/p") -> CloudEvent:
    attributes = {"id": f"deploy-{n}", "source": source, "type": "com.example.app.deployed"}
    value = json.dumps({"specversion": "1.0", **attributes}).encode()
    return decode_cloudevent(value, key=b"app-7")


def test_a_foreign_event_without_time_is_stored_at_its_arrival_and_sent_as_read(
    store: Store,
) -> None:
    subscription = _subscribe(store)
    event = _foreign(1)
    assert store.record_events([(event, event.body, [subscription])], now=NOW) == 1
    [due] = store.claim_due(now=NOW, limit=10, lease_s=60)
    assert (due.event_id, due.body) == ("deploy-1", event.body)
    assert due.event_time == NOW


def test_replay_matches_stored_foreign_events_on_their_source(store: Store) -> None:
    events = [_foreign(1), _foreign(2, source="https://other.example.com/")]
    store.record_events([(e, e.body, []) for e in events], now=NOW)
    wanted = store.create_subscription(
        url="http://127.0.0.1:9/hooks",
        secrets=[SECRET],
        filter=SubscriptionFilter(event_types=("com.example.*",), sources=("https://ci.*",)),
        ordered=True,
    )
    subscription = store.subscription(wanted)
    assert subscription is not None
    assert store.replay(subscription, since=NOW - timedelta(hours=1), until=None, now=NOW) == 1
    assert [d["event_id"] for d in store.deliveries()] == ["deploy-1"]


def test_an_id_stored_as_another_sources_gets_nothing_stored_and_is_returned(
    store: Store,
) -> None:
    subscription = _subscribe(store)
    first, other, repeat = (
        _foreign(1),
        _foreign(1, source="https://other.example.com/"),
        _foreign(1),
    )
    assert store.record_batch([(first, first.body, [subscription])], now=NOW).taken == {}
    stored = store.record_batch(
        [(repeat, repeat.body, [subscription]), (other, other.body, [subscription])], now=NOW
    )
    assert (stored.created, stored.taken) == (0, {1: "https://ci.example.com/p"})
    assert len(store.deliveries()) == 1
    [due] = store.claim_due(now=NOW, limit=10, lease_s=60)
    assert due.body == first.body
