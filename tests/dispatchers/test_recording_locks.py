"""The subscription rows recording attempts locks (issue 14), against a real PostgreSQL server: in
id order, as every statement locking several subscriptions does, so two replicas recording
opposite outcomes for two flapping subscriptions cannot deadlock; and none for a success to a
healthy subscription. Deterministic: a third transaction holds the first row in id order while the
recorders line up behind it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import psycopg
import pytest

from dispatchers.matching import SubscriptionFilter
from dispatchers.model import AttemptRecord, DueDelivery, Recorded, ValuesRefusedError
from dispatchers.outcomes import Outcome, Verdict
from dispatchers.postgres import Store
from herald_contracts import DomainEvent, encode_domain_event
from tests.support import wait_until

NOW = datetime(2026, 8, 20, 9, 0, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DELIVERED = Outcome(Verdict.DELIVERED)
FAILED = Outcome(Verdict.FAILED)


def _event(n: int) -> DomainEvent:
    return DomainEvent(
        id=f"event-{n}",
        source="/clusters/c/namespaces/billing/rollouts/payments",
        type="dev.herald.rollout.step_advanced",
        subject="payments",
        time="2026-08-20T09:00:00Z",
        data={"cluster": "c", "namespace": "billing", "name": "payments", "step_index": n},
        key=f"c/billing/Rollout/payments-{n}",
    )


def _attempt(due: DueDelivery, outcome: Outcome) -> tuple[AttemptRecord, Outcome]:
    failed = outcome.verdict is not Verdict.DELIVERED
    record = AttemptRecord(
        delivery_id=due.id,
        claim=due.claim,
        started_at=NOW,
        duration_ms=3,
        status_code=500 if failed else 204,
        response_headers=None,
        response_body=None,
        error=None,
    )
    return record, outcome


class Flapping:
    """Two subscriptions (`low` < `high` in id order), both failing, each with deliveries claimed:
    `due[sub][n]` is the delivery of event n."""

    def __init__(self, store: Store) -> None:
        subs = sorted(
            store.subscriptions.create(
                url="http://127.0.0.1:9/hooks",
                secrets=[SECRET],
                filter=SubscriptionFilter(),
                ordered=False,
            )
            for _ in range(2)
        )
        self.low, self.high = subs
        events = [_event(n) for n in range(3)]
        store.events.record_events([(e, encode_domain_event(e), subs) for e in events], now=NOW)
        self.due: dict[uuid.UUID, dict[int, DueDelivery]] = {sub: {} for sub in subs}
        for d in store.queue.claim_due(now=NOW, limit=50, lease_s=600):
            self.due[d.subscription_id][int(d.event_id.rsplit("-", 1)[1])] = d
        # Both failing: a recovery must write (lock) the row.
        store.queue.record_attempts([_attempt(self.due[sub][0], FAILED) for sub in subs], now=NOW)


@pytest.fixture
def flapping(store: Store) -> Flapping:
    return Flapping(store)


@pytest.fixture
def low_held(database_url: str, flapping: Flapping) -> Iterator[psycopg.Connection[object]]:
    """Another transaction holding the `low` subscription's row until it rolls back."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT 1 FROM subscriptions WHERE id = %s FOR NO KEY UPDATE", (flapping.low,))
        yield conn
        conn.rollback()


def _waiting_for_locks(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


def _recording(
    store: Store, attempts: list[tuple[AttemptRecord, Outcome]], out: list[object]
) -> threading.Thread:
    def record() -> None:
        try:
            out.append(store.queue.record_attempts(attempts, now=NOW))
        except Exception as e:  # noqa: BLE001 - asserted on by the test
            out.append(e)

    thread = threading.Thread(target=record, daemon=True)
    thread.start()
    return thread


def _failing_since(database_url: str) -> dict[uuid.UUID, datetime | None]:
    with psycopg.connect(database_url) as conn:
        return dict(conn.execute("SELECT id, failing_since FROM subscriptions").fetchall())


def test_recording_locks_its_subscriptions_in_id_order(
    store: Store, database_url: str, flapping: Flapping, low_held: psycopg.Connection[object]
) -> None:
    out: list[object] = []
    # Recovers `high`, fails `low`: it must wait for `low` before it takes `high`.
    recorder = _recording(
        store,
        [
            _attempt(flapping.due[flapping.high][1], DELIVERED),
            _attempt(flapping.due[flapping.low][1], FAILED),
        ],
        out,
    )
    wait_until(lambda: _waiting_for_locks(database_url) == 1, timeout_s=30)
    with psycopg.connect(database_url) as probe:
        # Free while the recorder waits for the lower row (before, it held it already).
        probe.execute(
            "SELECT 1 FROM subscriptions WHERE id = %s FOR NO KEY UPDATE NOWAIT",
            (flapping.high,),
        )
        probe.rollback()
    low_held.rollback()
    recorder.join(timeout=30)
    assert not recorder.is_alive()
    assert [type(r) for r in out] == [Recorded]
    streaks = _failing_since(database_url)
    assert streaks[flapping.high] is None
    assert streaks[flapping.low] == NOW


def test_two_recorders_of_opposite_outcomes_for_two_subscriptions_both_commit(
    store: Store, database_url: str, flapping: Flapping, low_held: psycopg.Connection[object]
) -> None:
    """Before, each locked its recovered subscription first: the first recorder, holding `low`
    once it was let go, waited for `high`, which the second held while waiting for `low`."""
    out: list[object] = []
    first = _recording(
        store,
        [
            _attempt(flapping.due[flapping.low][1], DELIVERED),
            _attempt(flapping.due[flapping.high][1], FAILED),
        ],
        out,
    )
    wait_until(lambda: _waiting_for_locks(database_url) == 1, timeout_s=30)
    second = _recording(
        store,
        [
            _attempt(flapping.due[flapping.high][2], DELIVERED),
            _attempt(flapping.due[flapping.low][2], FAILED),
        ],
        out,
    )
    wait_until(lambda: _waiting_for_locks(database_url) == 2, timeout_s=30)
    low_held.rollback()
    for recorder in (first, second):
        recorder.join(timeout=30)
        assert not recorder.is_alive()
    assert [type(r) for r in out] == [Recorded, Recorded]  # no deadlock aborted either


def test_a_success_to_a_healthy_subscription_locks_no_subscription(
    store: Store, database_url: str, flapping: Flapping, low_held: psycopg.Connection[object]
) -> None:
    low_held.rollback()
    store.queue.record_attempts([_attempt(flapping.due[flapping.low][1], DELIVERED)], now=NOW)
    out: list[object] = []
    # `low` is healthy again; its row is held by another transaction: a success need not wait.
    low_held.execute("SELECT 1 FROM subscriptions WHERE id = %s FOR NO KEY UPDATE", (flapping.low,))
    recorder = _recording(store, [_attempt(flapping.due[flapping.low][2], DELIVERED)], out)
    recorder.join(timeout=30)
    assert not recorder.is_alive()
    assert [type(r) for r in out] == [Recorded]


def test_attempts_with_values_postgres_refuses_record_nothing_and_the_store_goes_on(
    store: Store, database_url: str, flapping: Flapping
) -> None:
    """Refused in the pipelined transaction: raised as `ValuesRefusedError` (what the grouping
    retries alone), the whole transaction rolled back, the connection fit to use again."""
    good = _attempt(flapping.due[flapping.low][1], DELIVERED)
    bad_record, outcome = _attempt(flapping.due[flapping.high][1], DELIVERED)
    bad = (replace(bad_record, duration_ms=2**40), outcome)  # past Postgres' integer
    with pytest.raises(ValuesRefusedError):
        store.queue.record_attempts([good, bad], now=NOW)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM attempts").fetchone()
    assert row == (2,)  # the two of the set-up only
    for sub, n in [(flapping.low, 1), (flapping.high, 1), (flapping.low, 2)]:
        attempt = _attempt(flapping.due[sub][n], DELIVERED)
        assert store.queue.record_attempts([attempt], now=NOW) == Recorded(disabled={}, late=0)
