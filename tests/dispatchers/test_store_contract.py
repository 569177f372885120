"""The store's contract: every test runs against both stores, in memory and in PostgreSQL (a fresh
database per test), through the ports only (`dispatchers.model`); the few looks behind them go
through `tests/dispatchers/stores.py`. Postgres' own faults are `test_store_postgres.py`'s."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from dispatchers.matching import SubscriptionFilter
from dispatchers.model import AttemptRecord, DueDelivery, Stores
from dispatchers.outcomes import Outcome, Verdict
from herald_contracts import CloudEvent, DomainEvent, decode_cloudevent, encode_domain_event
from tests.dispatchers.stores import Backend

NOW = datetime(2026, 8, 20, 9, 0, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def store(backend: Backend) -> Stores:
    return backend.store


def _attempts(store: Stores) -> list[tuple[str, str, int, int, int | None, str | None]]:
    """Every attempt logged, with its delivery: (event id, status, attempt count, attempt number,
    status code, error), by event id and attempt number."""
    return sorted(
        (
            d["event_id"],
            d["status"],
            d["attempt_count"],
            a["attempt_number"],
            a["status_code"],
            a["error"],
        )
        for listed in store.log.deliveries(limit=1000)
        for d in [store.log.delivery(uuid.UUID(listed["id"]))]
        if d is not None
        for a in d["attempts"]
    )


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
    store: Stores, *, ordered: bool = True, rate_limit_per_s: float | None = None
) -> uuid.UUID:
    return store.subscriptions.create(
        url="http://127.0.0.1:9/hooks",
        secrets=[SECRET],
        filter=SubscriptionFilter(),
        ordered=ordered,
        rate_limit_per_s=rate_limit_per_s,
    )


def _record(store: Stores, events: list[DomainEvent], subscription: uuid.UUID) -> int:
    return store.events.record_events(
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


def test_each_event_and_subscription_pair_gets_exactly_one_delivery(store: Stores) -> None:
    subscription = _subscribe(store)
    assert _record(store, [_event(1), _event(2)], subscription) == 2
    assert _record(store, [_event(1), _event(2)], subscription) == 0  # a redelivered batch
    assert len(store.log.deliveries()) == 2


def test_the_stored_body_is_the_exact_bytes_read(store: Stores) -> None:
    subscription = _subscribe(store)
    event = _event(1)
    body = b'{"specversion":"1.0",  "id":"event-payments-1"}'  # odd spacing survives
    store.events.record_events([(event, body, [subscription])], now=NOW)
    [due] = store.queue.claim_due(now=NOW, limit=10, lease_s=60)
    assert due.body == body


def test_a_claimed_delivery_is_not_claimed_again_until_its_lease_runs_out(store: Stores) -> None:
    _record(store, [_event(1)], _subscribe(store, ordered=False))
    assert len(store.queue.claim_due(now=NOW, limit=10, lease_s=60)) == 1
    assert store.queue.claim_due(now=NOW + timedelta(seconds=30), limit=10, lease_s=60) == []
    [again] = store.queue.claim_due(now=NOW + timedelta(seconds=61), limit=10, lease_s=60)
    assert again.attempt_number == 1


def test_an_attempt_recorded_after_its_claim_passed_on_is_logged_and_moves_nothing(
    store: Stores,
) -> None:
    """A worker whose lease ran out while it sent: another worker claimed the delivery again.
    Whichever records first, both attempts are logged, numbered in turn, and only the current
    claim decides the delivery's state."""
    _record(store, [_event(1), _event(2)], _subscribe(store, ordered=False))
    first = {d.event_id: d for d in store.queue.claim_due(now=NOW, limit=10, lease_s=60)}
    later = NOW + timedelta(seconds=61)
    second = {d.event_id: d for d in store.queue.claim_due(now=later, limit=10, lease_s=60)}
    one, two = "event-payments-1", "event-payments-2"
    # Event 1: the late worker records first (a failure), then the current holder (a success).
    late = store.queue.record_attempts(
        [(_attempt(first[one], None), Outcome(Verdict.RETRY, later))], now=later
    )
    assert late.late == 1
    current = store.queue.record_attempts(
        [(_attempt(second[one], 204), Outcome(Verdict.DELIVERED))], now=later
    )
    assert current.late == 0
    # Event 2: the current holder records first (a success), then the late worker (a failure).
    store.queue.record_attempt(_attempt(second[two], 204), Outcome(Verdict.DELIVERED), now=later)
    store.queue.record_attempt(_attempt(first[two], None), Outcome(Verdict.RETRY, later), now=later)
    rows = [row[:5] for row in _attempts(store)]
    assert rows == [
        (one, "delivered", 2, 1, None),
        (one, "delivered", 2, 2, 204),
        (two, "delivered", 2, 1, 204),
        (two, "delivered", 2, 2, None),
    ]
    assert store.queue.claim_due(now=later + timedelta(hours=1), limit=10, lease_s=60) == []


def test_giving_back_a_claim_that_passed_on_leaves_the_new_claim_alone(store: Stores) -> None:
    _record(store, [_event(1)], _subscribe(store, ordered=False))
    [stale] = store.queue.claim_due(now=NOW, limit=10, lease_s=60)
    later = NOW + timedelta(seconds=61)
    [current] = store.queue.claim_due(now=later, limit=10, lease_s=60)
    store.queue.release([stale])
    assert store.queue.claim_due(now=later, limit=10, lease_s=60) == []  # still held by `current`
    store.queue.release([current])
    assert len(store.queue.claim_due(now=later, limit=10, lease_s=60)) == 1


def test_a_rate_limited_subscription_is_claimed_no_faster_than_its_rate(store: Stores) -> None:
    limited = _subscribe(store, ordered=False, rate_limit_per_s=2)
    free = _subscribe(store, ordered=False)
    events = [_event(n, name=f"svc-{n}") for n in range(10)]
    store.events.record_events(
        [(e, encode_domain_event(e), [limited, free]) for e in events], now=NOW
    )

    def claim(at: datetime) -> list[uuid.UUID]:
        return [d.subscription_id for d in store.queue.claim_due(now=at, limit=50, lease_s=60)]

    first = claim(NOW)
    assert (first.count(limited), first.count(free)) == (2, 10)  # a full bucket: 1 s worth
    assert claim(NOW) == []
    assert claim(NOW + timedelta(seconds=0.4)) == []
    assert claim(NOW + timedelta(seconds=0.5)) == [limited]
    assert claim(NOW + timedelta(seconds=1.0)) == [limited]
    assert claim(NOW + timedelta(seconds=60)) == [limited, limited]  # never above one second's


def test_claims_given_back_return_their_tokens(store: Stores) -> None:
    limited = _subscribe(store, ordered=False, rate_limit_per_s=3)
    _record(store, [_event(n, name=f"svc-{n}") for n in range(5)], limited)
    claimed = store.queue.claim_due(now=NOW, limit=50, lease_s=60)
    assert len(claimed) == 3
    store.queue.release(claimed[:2])
    assert len(store.queue.claim_due(now=NOW, limit=50, lease_s=60)) == 2


def test_ordered_subscription_holds_later_events_about_the_same_object(store: Stores) -> None:
    subscription = _subscribe(store, ordered=True)
    _record(store, [_event(1), _event(2), _event(1, name="orders")], subscription)
    claimed = store.queue.claim_due(now=NOW, limit=10, lease_s=60)
    assert sorted(d.event_id for d in claimed) == ["event-orders-1", "event-payments-1"]
    first = next(d for d in claimed if d.event_id == "event-payments-1")
    store.queue.record_attempt(_attempt(first, 204), Outcome(Verdict.DELIVERED), now=NOW)
    [second] = store.queue.claim_due(now=NOW, limit=10, lease_s=60)
    assert second.event_id == "event-payments-2"


def test_unordered_subscription_sends_everything_at_once(store: Stores) -> None:
    _record(store, [_event(1), _event(2)], _subscribe(store, ordered=False))
    assert len(store.queue.claim_due(now=NOW, limit=10, lease_s=60)) == 2


def test_a_retry_waits_for_its_time_and_counts_the_attempt(store: Stores) -> None:
    _record(store, [_event(1)], _subscribe(store))
    [due] = store.queue.claim_due(now=NOW, limit=10, lease_s=60)
    retry_at = NOW + timedelta(seconds=5)
    store.queue.record_attempt(_attempt(due, None), Outcome(Verdict.RETRY, retry_at), now=NOW)
    assert store.queue.claim_due(now=NOW + timedelta(seconds=4), limit=10, lease_s=60) == []
    [again] = store.queue.claim_due(now=retry_at, limit=10, lease_s=60)
    assert again.attempt_number == 2
    [listed] = store.log.deliveries()
    row = (listed["status"], listed["attempt_count"])
    attempts = [(a[3], a[4], a[5]) for a in _attempts(store)]
    assert row == ("retrying", 1)
    assert attempts == [(1, None, "ConnectTimeout")]


def test_410_gone_disables_the_subscription_with_the_reason(store: Stores) -> None:
    subscription = _subscribe(store)
    _record(store, [_event(1), _event(1, name="orders")], subscription)
    due = store.queue.claim_due(now=NOW, limit=1, lease_s=60)
    store.queue.record_attempt(_attempt(due[0], 410), Outcome(Verdict.GONE), now=NOW)
    [sub] = store.subscriptions.all()
    assert not sub.enabled
    assert sub.disabled_reason is not None
    assert "410" in sub.disabled_reason
    assert (
        store.queue.claim_due(now=NOW, limit=10, lease_s=60) == []
    )  # a disabled subscription waits


def _finish(store: Stores, events: list[DomainEvent], verdict: Verdict, at: datetime) -> None:
    for due in store.queue.claim_due(now=NOW, limit=100, lease_s=60):
        if due.event_id not in {e.id for e in events}:
            store.queue.release([due])
            continue
        store.queue.record_attempt(
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
    store: Stores, backend: Backend
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
    deleted = store.housekeeping.clean_up(
        now=NOW, delivered_for=timedelta(days=30), failed_for=timedelta(days=90), batch=1
    )
    assert deleted == 2
    left = {d["event_id"] for d in store.log.deliveries()}
    events = backend.event_ids()
    attempts = (len(_attempts(store)),)
    assert left == {new_ok[0].id, mid_failed[0].id, open_[0].id}
    assert events == left
    assert attempts == (2,)


def test_events_no_subscription_wanted_are_kept_for_the_retention_then_cleaned(
    store: Stores, backend: Backend
) -> None:
    old, recent = _event(1, name="old"), _event(2, name="recent")
    assert (
        store.events.record_events(
            [(e, encode_domain_event(e), []) for e in (old, recent)], now=NOW
        )
        == 0
    )
    for event, age in ((old, 31), (recent, 29)):
        backend.receive_at(event.id, NOW - timedelta(days=age))
    store.housekeeping.clean_up(
        now=NOW, delivered_for=timedelta(days=30), failed_for=timedelta(days=90), batch=1
    )
    assert backend.event_ids() == {recent.id}


def test_only_one_clean_up_runs_at_a_time(store: Stores, backend: Backend) -> None:
    with backend.cleaning_elsewhere():
        assert (
            store.housekeeping.clean_up(
                now=NOW, delivered_for=timedelta(days=1), failed_for=timedelta(days=1), batch=10
            )
            is None
        )
    assert (
        store.housekeeping.clean_up(
            now=NOW, delivered_for=timedelta(days=1), failed_for=timedelta(days=1), batch=10
        )
        == 0
    )


def _foreign(n: int, *, source: str = "https://ci.example.com/p") -> CloudEvent:
    attributes = {"id": f"deploy-{n}", "source": source, "type": "com.example.app.deployed"}
    value = json.dumps({"specversion": "1.0", **attributes}).encode()
    return decode_cloudevent(value, key=b"app-7")


def test_a_foreign_event_without_time_is_stored_at_its_arrival_and_sent_as_read(
    store: Stores,
) -> None:
    subscription = _subscribe(store)
    event = _foreign(1)
    assert store.events.record_events([(event, event.body, [subscription])], now=NOW) == 1
    [due] = store.queue.claim_due(now=NOW, limit=10, lease_s=60)
    assert (due.event_id, due.body) == ("deploy-1", event.body)
    assert due.event_time == NOW


def test_replay_matches_stored_foreign_events_on_their_source(store: Stores) -> None:
    events = [_foreign(1), _foreign(2, source="https://other.example.com/")]
    store.events.record_events([(e, e.body, []) for e in events], now=NOW)
    wanted = store.subscriptions.create(
        url="http://127.0.0.1:9/hooks",
        secrets=[SECRET],
        filter=SubscriptionFilter(event_types=("com.example.*",), sources=("https://ci.*",)),
        ordered=True,
    )
    subscription = store.subscriptions.get(wanted)
    assert subscription is not None
    assert (
        store.events.replay(subscription, since=NOW - timedelta(hours=1), until=None, now=NOW) == 1
    )
    assert [d["event_id"] for d in store.log.deliveries()] == ["deploy-1"]


def test_an_id_stored_as_another_sources_gets_nothing_stored_and_is_returned(
    store: Stores,
) -> None:
    subscription = _subscribe(store)
    first, other, repeat = (
        _foreign(1),
        _foreign(1, source="https://other.example.com/"),
        _foreign(1),
    )
    assert store.events.record_batch([(first, first.body, [subscription])], now=NOW).taken == {}
    stored = store.events.record_batch(
        [(repeat, repeat.body, [subscription]), (other, other.body, [subscription])], now=NOW
    )
    assert (stored.created, stored.taken) == (0, {1: "https://ci.example.com/p"})
    assert len(store.log.deliveries()) == 1
    [due] = store.queue.claim_due(now=NOW, limit=10, lease_s=60)
    assert due.body == first.body


def test_replay_queues_one_objects_events_in_the_order_they_arrived(store: Stores) -> None:
    """Their times are the same second, so only the order the domain topic gave them can order
    them: an ordered subscription gets step 2 before step 10 (whose id sorts first)."""
    events = [_event(2), _event(10), _event(3)]  # as read, one object's steps
    store.events.record_events([(e, encode_domain_event(e), []) for e in events], now=NOW)
    wanted = _subscribe(store, ordered=True)
    subscription = store.subscriptions.get(wanted)
    assert subscription is not None
    queued = store.events.replay(
        subscription, since=NOW - timedelta(hours=1), until=None, now=NOW, page=2
    )
    assert queued == 3
    sent = []
    for _ in events:
        [due] = store.queue.claim_due(now=NOW, limit=10, lease_s=60)
        store.queue.record_attempt(_attempt(due, 204), Outcome(Verdict.DELIVERED), now=NOW)
        sent.append(due.event_id)
    assert sent == ["event-payments-2", "event-payments-10", "event-payments-3"]


# What the commands change (`dispatchers.cli`), on both stores.

OTHER_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


def test_disabling_keeps_the_reason_and_holds_the_deliveries_and_enabling_clears_it(
    store: Stores,
) -> None:
    subscription = _subscribe(store)
    _record(store, [_event(1)], subscription)
    assert store.subscriptions.set_enabled(subscription, enabled=False, reason="maint", now=NOW)
    found = store.subscriptions.get(subscription)
    assert found is not None
    assert (found.enabled, found.disabled_reason, found.updated_at) == (False, "maint", NOW)
    assert store.subscriptions.all(enabled_only=True) == []
    assert store.queue.claim_due(now=NOW, limit=10, lease_s=60) == []
    assert store.housekeeping.stats(now=NOW)["disabled_subscriptions"] == 1.0
    assert store.subscriptions.set_enabled(subscription, enabled=True, reason="x", now=NOW)
    found = store.subscriptions.get(subscription)
    assert found is not None
    assert (found.enabled, found.disabled_reason) == (True, None)
    assert len(store.queue.claim_due(now=NOW, limit=10, lease_s=60)) == 1
    assert not store.subscriptions.set_enabled(uuid.uuid4(), enabled=True, reason=None, now=NOW)


def test_an_update_changes_only_what_is_given(store: Stores) -> None:
    subscription = store.subscriptions.create(
        url="http://127.0.0.1:9/a",
        secrets=[SECRET],
        filter=SubscriptionFilter(event_types=("rollout.*",), clusters=("c",)),
        ordered=True,
        rate_limit_per_s=5,
        headers=[("X-Team", "payments")],
    )
    later = NOW + timedelta(minutes=1)
    assert store.subscriptions.update(
        subscription, now=later, url="http://127.0.0.1:9/b", namespaces=["billing"], ordered=False
    )
    found = store.subscriptions.get(subscription)
    assert found is not None
    assert (found.url, found.ordered, found.rate_limit_per_s) == ("http://127.0.0.1:9/b", False, 5)
    assert found.filter == SubscriptionFilter(
        event_types=("rollout.*",), clusters=("c",), namespaces=("billing",)
    )
    assert (found.headers, found.secrets, found.updated_at) == (
        (("X-Team", "payments"),),
        (SECRET,),
        later,
    )
    assert store.subscriptions.update(subscription, now=later, unlimited=True, headers=[])
    found = store.subscriptions.get(subscription)
    assert found is not None
    assert (found.rate_limit_per_s, found.headers) == (None, ())
    assert not store.subscriptions.update(uuid.uuid4(), now=later, url="http://127.0.0.1:9/c")


def test_a_rotated_secret_signs_alongside_the_old_one_until_the_grace_period_ends(
    store: Stores,
) -> None:
    subscription = _subscribe(store, ordered=False)
    grace = timedelta(hours=1)
    assert store.subscriptions.rotate_secret(subscription, OTHER_SECRET, now=NOW, grace=grace)
    found = store.subscriptions.get(subscription)
    assert found is not None
    assert found.secrets == (OTHER_SECRET,)
    _record(store, [_event(1), _event(2, name="orders")], subscription)
    [during] = store.queue.claim_due(now=NOW, limit=1, lease_s=60)
    assert during.secrets == (OTHER_SECRET, SECRET)
    [after] = store.queue.claim_due(now=NOW + grace, limit=1, lease_s=60)
    assert after.secrets == (OTHER_SECRET,)
    assert store.subscriptions.unopened(now=NOW) == {}
    assert store.subscriptions.check_secrets() == 2  # stored as given: no keyring


def test_a_redelivery_starts_a_new_round_of_tries_and_recover_requeues_the_failed_ones(
    store: Stores,
) -> None:
    subscription = _subscribe(store, ordered=False)
    _record(store, [_event(1), _event(2, name="orders")], subscription)
    for due in store.queue.claim_due(now=NOW, limit=10, lease_s=60):
        verdict = Verdict.DELIVERED if due.event_id == "event-payments-1" else Verdict.FAILED
        store.queue.record_attempt(_attempt(due, 204), Outcome(verdict), now=NOW)
    by_event = {d["event_id"]: d for d in store.log.deliveries()}
    delivered, failed = by_event["event-payments-1"], by_event["event-orders-2"]
    assert (delivered["status"], failed["status"]) == ("delivered", "failed")
    assert store.log.redeliver(uuid.UUID(delivered["id"]), now=NOW)
    assert not store.log.redeliver(uuid.uuid4(), now=NOW)
    [again] = store.queue.claim_due(now=NOW, limit=10, lease_s=60)
    assert (again.event_id, again.attempt_number, again.round_attempt) == ("event-payments-1", 2, 1)
    created = datetime.now(UTC)  # stamped by the store's own clock
    assert (
        store.log.recover(subscription, since=created + timedelta(hours=1), until=None, now=NOW)
        == 0
    )
    assert (
        store.log.recover(subscription, since=created - timedelta(hours=1), until=None, now=NOW)
        == 1
    )
    [recovered] = store.queue.claim_due(now=NOW, limit=10, lease_s=60)
    assert (recovered.event_id, recovered.attempt_number, recovered.round_attempt) == (
        "event-orders-2",
        2,
        1,
    )


def test_a_delivery_is_shown_with_its_event_and_every_attempt(store: Stores) -> None:
    subscription = _subscribe(store)
    _record(store, [_event(1)], subscription)
    [due] = store.queue.claim_due(now=NOW, limit=10, lease_s=60)
    store.queue.record_attempt(_attempt(due, 503), Outcome(Verdict.RETRY, NOW), now=NOW)
    shown = store.log.delivery(due.id)
    assert shown is not None
    assert (shown["id"], shown["subscription_id"], shown["event_type"]) == (
        str(due.id),
        str(subscription),
        "dev.herald.rollout.step_advanced",
    )
    assert (shown["status"], shown["attempt_count"], shown["last_status_code"]) == (
        "retrying",
        1,
        503,
    )
    assert shown["event"]["id"] == "event-payments-1"
    assert datetime.fromisoformat(shown["event_time"]) == datetime(2026, 8, 20, 9, tzinfo=UTC)
    [attempt] = shown["attempts"]
    assert (attempt["attempt_number"], attempt["status_code"], attempt["response_body"]) == (
        1,
        503,
        "nope",
    )
    assert attempt["response_headers"] == {"x": "y"}
    assert datetime.fromisoformat(attempt["started_at"]) == NOW
    assert store.log.delivery(uuid.uuid4()) is None


def test_the_log_is_found_by_subscription_status_event_and_object_newest_first(
    store: Stores,
) -> None:
    first, second = _subscribe(store), _subscribe(store)
    events = [_event(1), _event(2), _event(1, name="orders")]
    store.events.record_events(
        [(e, encode_domain_event(e), [first, second]) for e in events], now=NOW
    )

    def found(**by: object) -> list[tuple[str, str]]:
        rows = store.log.deliveries(**by)  # type: ignore[arg-type]
        return [(r["event_id"], r["subscription_id"]) for r in rows]

    assert len(found()) == 6
    assert found(limit=2) == [
        ("event-orders-1", str(second)),
        ("event-orders-1", str(first)),
    ]
    assert found(subscription_id=first, object_key="c/billing/Rollout/payments") == [
        ("event-payments-2", str(first)),
        ("event-payments-1", str(first)),
    ]
    assert found(event_id="event-payments-2") == [
        ("event-payments-2", str(second)),
        ("event-payments-2", str(first)),
    ]
    assert found(status="delivered") == []


def test_the_gauges_count_open_deliveries_and_the_oldest_due(store: Stores) -> None:
    subscription = _subscribe(store, ordered=False)
    _record(store, [_event(1), _event(2)], subscription)
    [due, _] = store.queue.claim_due(now=NOW, limit=10, lease_s=60)
    store.queue.record_attempt(
        _attempt(due, None), Outcome(Verdict.RETRY, NOW + timedelta(hours=1)), now=NOW
    )
    assert store.housekeeping.stats(now=NOW + timedelta(seconds=30)) == {
        "pending": 1.0,
        "retrying": 1.0,
        "oldest_due_age_s": 30.0,
        "disabled_subscriptions": 0.0,
    }


# The claim path's queue (issue 14): what Postgres parks or keeps waiting behind an object's head
# is only a cost there; here, what a claim may take, on both stores.


def _take(store: Stores, at: datetime = NOW) -> list[DueDelivery]:
    return store.queue.claim_due(now=at, limit=50, lease_s=60)


def _end(store: Stores, due: DueDelivery, outcome: Outcome, at: datetime = NOW) -> None:
    code = 204 if outcome.verdict is Verdict.DELIVERED else 400
    store.queue.record_attempt(_attempt(due, code), outcome, now=at)


def test_a_disabled_subscriptions_deliveries_are_claimed_again_once_it_is_enabled(
    store: Stores,
) -> None:
    subscription = _subscribe(store, ordered=False)
    _record(store, [_event(1), _event(2)], subscription)
    store.subscriptions.set_enabled(subscription, enabled=False, reason="maintenance", now=NOW)
    _record(store, [_event(3)], subscription)  # queued while disabled
    assert _take(store) == []
    store.subscriptions.set_enabled(subscription, enabled=True, reason=None, now=NOW)
    assert sorted(d.event_id for d in _take(store)) == [
        "event-payments-1",
        "event-payments-2",
        "event-payments-3",
    ]


def test_a_subscription_disabled_by_410_gone_keeps_its_open_deliveries_for_when_enabled(
    store: Stores,
) -> None:
    subscription = _subscribe(store, ordered=False)
    _record(store, [_event(1), _event(2, name="orders")], subscription)
    claimed = {d.event_id: d for d in _take(store)}
    store.queue.release([claimed["event-orders-2"]])
    _end(store, claimed["event-payments-1"], Outcome(Verdict.GONE))
    assert _take(store) == []
    store.subscriptions.set_enabled(subscription, enabled=True, reason=None, now=NOW)
    assert [d.event_id for d in _take(store)] == ["event-orders-2"]


def test_a_delivery_redelivered_for_a_disabled_subscription_waits_until_it_is_enabled(
    store: Stores,
) -> None:
    subscription = _subscribe(store, ordered=False)
    _record(store, [_event(1)], subscription)
    [due] = _take(store)
    _end(store, due, Outcome(Verdict.DELIVERED))
    store.subscriptions.set_enabled(subscription, enabled=False, reason="maintenance", now=NOW)
    assert store.log.redeliver(due.id, now=NOW)
    assert _take(store) == []
    store.subscriptions.set_enabled(subscription, enabled=True, reason=None, now=NOW)
    [again] = _take(store)
    assert again.id == due.id


def test_an_objects_later_events_wait_until_the_earlier_finishes_then_go_in_order(
    store: Stores,
) -> None:
    subscription = _subscribe(store, ordered=True)
    _record(store, [_event(1), _event(2)], subscription)
    _record(store, [_event(3)], subscription)  # another batch: queued behind the same head
    [first] = _take(store)
    assert first.event_id == "event-payments-1"
    retry_at = NOW + timedelta(seconds=5)
    _end(store, first, Outcome(Verdict.RETRY, retry_at))
    assert _take(store) == []  # event 2 waits while event 1 is open, due or not
    [retried] = _take(store, retry_at)
    assert retried.event_id == "event-payments-1"
    _end(store, retried, Outcome(Verdict.DELIVERED), retry_at)
    [second] = _take(store, retry_at)
    assert second.event_id == "event-payments-2"
    _end(store, second, Outcome(Verdict.FAILED), retry_at)  # failed for good: the next goes
    [third] = _take(store, retry_at)
    assert third.event_id == "event-payments-3"


def test_an_event_queued_after_its_objects_head_finished_is_the_new_head(store: Stores) -> None:
    subscription = _subscribe(store, ordered=True)
    _record(store, [_event(1)], subscription)
    [first] = _take(store)
    _end(store, first, Outcome(Verdict.DELIVERED))
    _record(store, [_event(1), _event(2)], subscription)  # a repeat of 1 (absorbed), then 2
    assert [d.event_id for d in _take(store)] == ["event-payments-2"]


def test_a_redelivered_earlier_event_goes_before_the_later_ones_still_open(store: Stores) -> None:
    subscription = _subscribe(store, ordered=True)
    _record(store, [_event(1), _event(2), _event(3)], subscription)
    [first] = _take(store)
    _end(store, first, Outcome(Verdict.DELIVERED))
    assert store.log.redeliver(first.id, now=NOW)  # event 2 was next: it waits again
    [again] = _take(store)
    assert again.event_id == "event-payments-1"
    _end(store, again, Outcome(Verdict.DELIVERED))
    assert [d.event_id for d in _take(store)] == ["event-payments-2"]


def test_recovered_failures_go_again_in_order(store: Stores) -> None:
    subscription = _subscribe(store, ordered=True)
    _record(store, [_event(1), _event(2)], subscription)
    for _ in range(2):
        [due] = _take(store)
        _end(store, due, Outcome(Verdict.FAILED))
    since = datetime.now(UTC) - timedelta(hours=1)  # created_at is the store's own clock
    assert store.log.recover(subscription, since=since, until=None, now=NOW) == 2
    [first] = _take(store)
    assert first.event_id == "event-payments-1"
    _end(store, first, Outcome(Verdict.DELIVERED))
    assert [d.event_id for d in _take(store)] == ["event-payments-2"]


def test_a_subscription_made_unordered_sends_what_was_waiting(store: Stores) -> None:
    subscription = _subscribe(store, ordered=True)
    _record(store, [_event(1), _event(2)], subscription)
    assert store.subscriptions.update(subscription, now=NOW, ordered=False)
    assert len(_take(store)) == 2


def test_a_subscription_made_ordered_holds_an_objects_later_open_events(store: Stores) -> None:
    subscription = _subscribe(store, ordered=False)
    _record(store, [_event(1), _event(2), _event(1, name="orders")], subscription)
    assert store.subscriptions.update(subscription, now=NOW, ordered=True)
    claimed = _take(store)
    assert sorted(d.event_id for d in claimed) == ["event-orders-1", "event-payments-1"]
    for due in claimed:
        _end(store, due, Outcome(Verdict.DELIVERED))
    assert [d.event_id for d in _take(store)] == ["event-payments-2"]


def test_replay_queues_behind_the_objects_head_in_order(store: Stores) -> None:
    subscription = _subscribe(store, ordered=True)
    _record(store, [_event(1)], subscription)
    late = _subscribe(store, ordered=True)
    store.events.record_events(  # stored, wanted by no subscription then
        [(e, encode_domain_event(e), []) for e in [_event(2), _event(3)]], now=NOW
    )
    found = store.subscriptions.get(late)
    assert found is not None
    assert store.events.replay(found, since=NOW - timedelta(hours=1), until=None, now=NOW) == 3
    sent: list[str] = []
    while due := [d for d in _take(store) if d.subscription_id == late]:
        assert len(due) == 1  # one at a time: the object's head
        sent.append(due[0].event_id)
        _end(store, due[0], Outcome(Verdict.DELIVERED))
    assert sent == ["event-payments-1", "event-payments-2", "event-payments-3"]


def test_only_a_first_delivery_from_consumption_is_flagged_first(store: Stores) -> None:
    """Its first round, retries included; not a redelivery, a recovery or a replay (the end-to-end
    latency observes first deliveries only)."""
    subscription = _subscribe(store, ordered=False)
    _record(store, [_event(1), _event(2, name="orders")], subscription)
    claimed = {d.event_id: d for d in _take(store)}
    first = claimed["event-payments-1"]
    assert first.first_delivery
    assert claimed["event-orders-2"].first_delivery
    retry_at = NOW + timedelta(seconds=5)
    _end(store, first, Outcome(Verdict.RETRY, retry_at))
    _end(store, claimed["event-orders-2"], Outcome(Verdict.FAILED))
    [retried] = _take(store, retry_at)
    assert retried.first_delivery  # a retry of the first round: still its first delivery
    _end(store, retried, Outcome(Verdict.DELIVERED), retry_at)
    assert store.log.redeliver(first.id, now=retry_at)
    since = datetime.now(UTC) - timedelta(hours=1)
    assert store.log.recover(subscription, since=since, until=None, now=retry_at) == 1
    again = _take(store, retry_at)
    assert sorted(d.event_id for d in again) == ["event-orders-2", "event-payments-1"]
    assert not any(d.first_delivery for d in again)
    late = _subscribe(store, ordered=False)
    found = store.subscriptions.get(late)
    assert found is not None
    store.events.replay(found, since=NOW - timedelta(hours=1), until=None, now=retry_at)
    replayed = [d for d in _take(store, retry_at) if d.subscription_id == late]
    assert len(replayed) == 2
    assert not any(d.first_delivery for d in replayed)
