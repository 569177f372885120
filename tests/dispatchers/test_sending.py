"""The sending loop: signed POSTs to a real HTTP receiver, every attempt recorded, on the in-memory
store (the store's own behaviour is the contract suite's, `test_store_contract.py`)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from dispatchers.addresses import AddressPolicy
from dispatchers.http import HttpResult, HttpSender
from dispatchers.matching import SubscriptionFilter
from dispatchers.model import (
    AttemptRecord,
    Claimed,
    DueDelivery,
    Recorded,
    StoreError,
    Stores,
    ValuesRefusedError,
)
from dispatchers.outcomes import Outcome, Verdict
from dispatchers.postgres import Store
from dispatchers.sending import Doorbell, GroupedAttempts, SendingLoop, Wake
from herald_contracts import DomainEvent, encode_domain_event
from herald_dev import infra
from herald_dev.receiver import Receiver
from tests.dispatchers.stores import memory_unless_postgres_asked
from tests.support import wait_until

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
EVENT = DomainEvent(
    id="e-1",
    source="/clusters/c/namespaces/billing/rollouts/payments",
    type="dev.herald.rollout.completed",
    subject="payments",
    time="2026-08-20T09:00:00Z",
    data={"cluster": "c", "namespace": "billing", "name": "payments", "revision": 2},
    key="c/billing/Rollout/payments",
)


@pytest.fixture
def store(request: pytest.FixtureRequest) -> Stores:
    return memory_unless_postgres_asked(request)


def _logged(store: Stores) -> tuple[dict[str, Any], dict[str, Any]]:
    """The one delivery as shown, and its one attempt."""
    [listed] = store.log.deliveries()
    shown = store.log.delivery(uuid.UUID(listed["id"]))
    assert shown is not None
    [attempt] = shown["attempts"]
    return shown, attempt


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(secret=SECRET)
    r.serve()
    yield r
    r.stop()


def _loop(store: Stores) -> SendingLoop:
    return SendingLoop(
        store=store.queue,
        sender=HttpSender(
            connect_timeout_s=1,
            read_timeout_s=2,
            total_timeout_s=10,
            user_agent="test",
            policy=AddressPolicy(all_private=True),
        ),
        now=lambda: datetime.now(UTC),
        retry_schedule_s=(0, 5, 300),
        retry_jitter=0.0,
    )


def _deliver_to(store: Stores, url: str) -> None:
    subscription = store.subscriptions.create(
        url=url, secrets=[SECRET], filter=SubscriptionFilter(), ordered=True
    )
    store.events.record_events(
        [(EVENT, encode_domain_event(EVENT), [subscription])], now=datetime.now(UTC)
    )


def test_delivery_is_signed_and_recorded(store: Stores, receiver: Receiver) -> None:
    _deliver_to(store, receiver.url)
    assert _loop(store).run_once() == 1
    [request] = receiver.received
    assert request.verified, request.reason
    assert request.headers["content-type"] == "application/cloudevents+json"
    assert request.headers["webhook-id"] == EVENT.id
    assert json.loads(request.body) == EVENT.to_cloudevent()
    delivery, attempt = _logged(store)
    assert (delivery["status"], delivery["attempt_count"]) == ("delivered", 1)
    assert (attempt["attempt_number"], attempt["status_code"], attempt["error"]) == (1, 204, None)


def test_a_failing_endpoint_is_retried_later_with_the_response_recorded(
    store: Stores, receiver: Receiver
) -> None:
    receiver.status = 503
    _deliver_to(store, receiver.url)
    loop = _loop(store)
    assert loop.run_once() == 1
    assert loop.run_once() == 0  # the retry is 5 s away
    delivery, attempt = _logged(store)
    status, next_at = delivery["status"], datetime.fromisoformat(delivery["next_attempt_at"])
    code, headers = attempt["status_code"], attempt["response_headers"]
    assert status == "retrying"
    assert 4 < (next_at - datetime.now(UTC)).total_seconds() <= 5
    assert code == 503
    assert "Content-Length" in headers


def test_an_unreachable_endpoint_records_the_error(store: Stores) -> None:
    port = infra.free_port()  # nothing listens there
    _deliver_to(store, f"http://127.0.0.1:{port}/hooks")
    assert _loop(store).run_once() == 1
    _, attempt = _logged(store)
    code, error = attempt["status_code"], attempt["error"]
    assert code is None
    assert "ConnectionError" in error


class _ThreeSecondSender:
    """Answers 204 after three seconds of a fake clock."""

    def __init__(self) -> None:
        self.clock = 0.0
        self.posted = 0

    def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> HttpResult:
        self.clock += 3
        self.posted += 1
        return HttpResult(status_code=204, headers={}, body="", error=None, duration_ms=3000)


def test_no_attempt_starts_that_could_outlast_the_lease_of_its_claim(store: Stores) -> None:
    """Another worker may claim a delivery once its lease runs out: the rest of a batch goes back
    before an attempt could end past 0.9 of the lease."""
    sender = _ThreeSecondSender()
    subscription = store.subscriptions.create(
        url="http://127.0.0.1:9/hooks", secrets=[SECRET], filter=SubscriptionFilter(), ordered=False
    )
    loop = SendingLoop(
        store=store.queue,
        sender=sender,
        now=lambda: datetime.now(UTC),
        clock=lambda: sender.clock,
        retry_schedule_s=(0, 5),
        retry_jitter=0.0,
        claim_batch=10,
        lease_s=10,
        attempt_budget_s=4,
        slow_attempt_s=100,
    )
    events = [replace(EVENT, id=f"e-{n}") for n in range(6)]
    store.events.record_events(
        [(e, encode_domain_event(e), [subscription]) for e in events[:1]], now=datetime.now(UTC)
    )
    assert loop.run_once() == 1  # the endpoint proves healthy: no more one-at-a-time
    store.events.record_events(
        [(e, encode_domain_event(e), [subscription]) for e in events[1:]], now=datetime.now(UTC)
    )
    # Claimed at 3 with a 10 s lease: attempts start at 3 and 6 (ending by 9 at the latest), one
    # starting at 9 could end at 13, past the lease.
    assert loop.run_once() == 2
    assert sender.posted == 3
    assert (
        len(store.queue.claim_due(now=datetime.now(UTC), limit=10, lease_s=60)) == 3
    )  # given back


def test_a_subscriptions_own_headers_go_with_the_signed_webhook(
    store: Stores, receiver: Receiver
) -> None:
    subscription = store.subscriptions.create(
        url=receiver.url,
        secrets=[SECRET],
        filter=SubscriptionFilter(),
        ordered=True,
        headers=[("Authorization", "Bearer 0123456789abcdef"), ("X-Team", "payments")],
    )
    store.events.record_events(
        [(EVENT, encode_domain_event(EVENT), [subscription])], now=datetime.now(UTC)
    )
    assert _loop(store).run_once() == 1
    [request] = receiver.received
    assert request.verified, request.reason
    assert request.headers["authorization"] == "Bearer 0123456789abcdef"
    assert request.headers["x-team"] == "payments"
    assert request.headers["content-type"] == "application/cloudevents+json"


class _RefusingStore:
    """A store whose database answers but refuses what the claim reads (a row stored before a
    check existed, e.g. a time past year 9999 that Postgres holds and psycopg cannot read back)."""

    def __init__(self) -> None:
        self.claims = 0

    def claim(self, **_: object) -> None:
        self.claims += 1
        raise ValuesRefusedError("timestamp too large (after year 10K)")


def test_a_claim_the_database_refuses_stops_no_worker_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _RefusingStore()
    loop = SendingLoop(
        store=store,  # type: ignore[arg-type]
        sender=HttpSender(connect_timeout_s=1, read_timeout_s=1, total_timeout_s=2, user_agent="t"),
        now=lambda: datetime.now(UTC),
        retry_schedule_s=(0,),
        retry_jitter=0.0,
    )
    worker = threading.Thread(target=loop.run, daemon=True)
    worker.start()
    wait_until(lambda: "refused a claim" in caplog.text, timeout_s=10)
    assert worker.is_alive()  # the worker waits and tries again; it does not end the dispatcher
    loop.stop.set()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert caplog.text.count("refused a claim") == 1
    assert store.claims >= 1


class _KilledAfter:
    """A sender whose process is killed (`kill -9`: no `finally` runs) as it starts attempt
    number `fatal`: every attempt before it reached its receiver (204)."""

    def __init__(self, fatal: int) -> None:
        self.fatal = fatal
        self.posted = 0

    def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> HttpResult:
        self.posted += 1
        if self.posted == self.fatal:
            os.kill(os.getpid(), signal.SIGKILL)
        return HttpResult(status_code=204, headers={}, body="", error=None, duration_ms=1)


def _send_and_die(database_url: str, subscription: str) -> None:
    """In a process of its own: one delivery proves the endpoint healthy (an untried endpoint is
    tried alone), then a batch of three is claimed and the process dies as its second attempt
    starts."""
    store = Store.open(database_url)
    loop = SendingLoop(
        store=store.queue,
        sender=_KilledAfter(fatal=3),
        now=lambda: datetime.now(UTC),
        retry_schedule_s=(0, 5),
        retry_jitter=0.0,
        claim_batch=10,
    )
    events = [replace(EVENT, id=f"e-{n}") for n in range(4)]
    sub = uuid.UUID(subscription)
    store.events.record_events(
        [(events[0], encode_domain_event(events[0]), [sub])], now=datetime.now(UTC)
    )
    assert loop.run_once() == 1
    store.events.record_events(
        [(e, encode_domain_event(e), [sub]) for e in events[1:]], now=datetime.now(UTC)
    )
    loop.run_once()


def test_a_dispatcher_killed_between_two_attempts_of_a_batch_has_recorded_the_first(
    store: Stores, database_url: str
) -> None:
    # Attempts used to be recorded together after the whole batch: a kill -9 during the second
    # attempt lost the record of the first, which its receiver had seen.
    subscription = store.subscriptions.create(
        url="http://127.0.0.1:9/hooks", secrets=[SECRET], filter=SubscriptionFilter(), ordered=False
    )
    process = multiprocessing.get_context("spawn").Process(
        target=_send_and_die, args=(database_url, str(subscription))
    )
    process.start()
    process.join(timeout=60)
    assert process.exitcode == -signal.SIGKILL
    with psycopg.connect(database_url) as conn:
        attempts = conn.execute(
            "SELECT e.id, a.status_code FROM attempts a JOIN deliveries d ON d.id = a.delivery_id"
            " JOIN events e ON e.id = d.event_id ORDER BY a.started_at"
        ).fetchall()
        statuses = dict(
            conn.execute(
                "SELECT e.id, d.status FROM deliveries d JOIN events e ON e.id = d.event_id"
            ).fetchall()
        )
    assert [code for _, code in attempts] == [204, 204]
    assert attempts[0][0] == "e-0"
    [(second, _)] = attempts[1:]
    assert statuses[second] == "delivered"
    # The attempt the kill interrupted, and the one not started, are sent after the lease.
    assert sorted(s for e, s in statuses.items() if e not in ("e-0", second)) == [
        "pending",
        "pending",
    ]


@dataclass
class _MemoryStore:
    """Claims what `due` holds (all of it, as one batch) and logs what is recorded and released."""

    due: list[DueDelivery] = field(default_factory=list)
    recorded: list[tuple[AttemptRecord, Outcome]] = field(default_factory=list)
    released: list[DueDelivery] = field(default_factory=list)
    gone: set[uuid.UUID] = field(default_factory=set)
    """Subscriptions an attempt disables (as a 410 Gone would)."""
    claims: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(
        self, *, now: datetime, limit: int, lease_s: float, held: Sequence[uuid.UUID] = ()
    ) -> Claimed:
        with self.lock:
            self.claims += 1
            taken, self.due = self.due[:limit], self.due[limit:]
        return Claimed(taken, {})

    def release(self, claimed: Sequence[DueDelivery]) -> None:
        self.released += claimed

    def record_attempts(
        self,
        attempts: Sequence[tuple[AttemptRecord, Outcome]],
        *,
        now: datetime,
        disable_after: timedelta = timedelta(days=5),
    ) -> Recorded:
        self.recorded += attempts
        subscriptions = {self.subscription_of[a.delivery_id] for a, _ in attempts}
        return Recorded(disabled=dict.fromkeys(subscriptions & self.gone, "410 Gone"), late=0)

    subscription_of: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)


def _due(store: _MemoryStore, subscription: uuid.UUID, n: int) -> list[DueDelivery]:
    made = [
        DueDelivery(
            id=uuid.uuid4(),
            event_id=f"e-{i}",
            subscription_id=subscription,
            url="http://127.0.0.1:9/hooks",
            secrets=(SECRET,),
            body=b"{}",
            attempt_number=1,
            round_attempt=1,
            claim=uuid.uuid4(),
        )
        for i in range(n)
    ]
    store.subscription_of.update({d.id: subscription for d in made})
    return made


class _Answering:
    """Answers `status`, and notes how many attempts were recorded as each one starts."""

    def __init__(self, store: _MemoryStore, status: int = 204) -> None:
        self.store, self.status = store, status
        self.recorded_before: list[int] = []

    def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> HttpResult:
        self.recorded_before.append(len(self.store.recorded))
        return HttpResult(status_code=self.status, headers={}, body="", error=None, duration_ms=1)


def _memory_loop(store: _MemoryStore, sender: _Answering, **options: Any) -> SendingLoop:
    loop = SendingLoop(
        store=store,
        sender=sender,
        now=lambda: datetime.now(UTC),
        retry_schedule_s=(0, 5),
        retry_jitter=0.0,
        **options,
    )
    loop.breakers.end(SUBSCRIPTION, success=True, now=0)  # a healthy endpoint: not tried alone
    return loop


SUBSCRIPTION = uuid.UUID("00000000-0000-4000-8000-000000000001")


def test_each_attempt_is_recorded_before_the_next_one_starts() -> None:
    store = _MemoryStore()
    store.due = _due(store, SUBSCRIPTION, 5)
    sender = _Answering(store)
    assert _memory_loop(store, sender).run_once() == 5
    assert sender.recorded_before == [0, 1, 2, 3, 4]
    assert [a.delivery_id for a, _ in store.recorded] == list(store.subscription_of)


def test_a_subscription_an_attempt_disables_gets_no_more_attempts_from_that_batch() -> None:
    store = _MemoryStore(gone={SUBSCRIPTION})
    other = uuid.UUID("00000000-0000-4000-8000-000000000002")
    disabled, kept = _due(store, SUBSCRIPTION, 3), _due(store, other, 2)
    store.due = [disabled[0], kept[0], disabled[1], kept[1], disabled[2]]
    sender = _Answering(store, status=410)
    loop = _memory_loop(store, sender)
    loop.breakers.end(other, success=True, now=0)
    assert loop.run_once() == 3
    assert [a.delivery_id for a, _ in store.recorded] == [disabled[0].id, kept[0].id, kept[1].id]
    assert store.released == [disabled[1], disabled[2]]  # untried, for when it is enabled again


@contextmanager
def _running(*loops: SendingLoop) -> Iterator[list[threading.Thread]]:
    """The loops' workers running (one stop for all); stopped, woken and joined on leaving."""
    for loop in loops[1:]:
        loop.stop = loops[0].stop
    workers = [threading.Thread(target=loop.run, daemon=True) for loop in loops]
    for worker in workers:
        worker.start()
    try:
        yield workers
    finally:
        loops[0].stop.set()
        loops[0].doorbell.ring()
        for worker in workers:
            worker.join(timeout=10)


def test_an_idle_worker_claims_at_once_when_the_doorbell_rings() -> None:
    store = _MemoryStore()
    sender = _Answering(store)
    loop = _memory_loop(store, sender, idle_poll_s=3600.0)  # without the bell: an hour
    with _running(loop) as [worker]:
        wait_until(lambda: store.claims >= 1, timeout_s=10)
        with store.lock:
            store.due = _due(store, SUBSCRIPTION, 1)
        loop.doorbell.ring(1)
        wait_until(lambda: len(store.recorded) == 1, timeout_s=30)
    assert not worker.is_alive()


def test_a_ring_between_reading_the_doorbell_and_waiting_is_not_missed() -> None:
    bell = Doorbell()
    seen = bell.rung
    bell.ring(1)  # no one waiting yet (the worker is still claiming)
    assert bell.wait(seen, timeout_s=3600.0)
    assert not bell.wait(bell.rung, timeout_s=0.01)


def _waiters(bell: Doorbell, count: int) -> tuple[list[threading.Thread], list[Wake | None]]:
    """`count` threads waiting for the bell (each waits an hour at most); what each woke with."""
    rung, woke = bell.rung, []
    threads = [
        threading.Thread(target=lambda: woke.append(bell.wait(rung, 3600.0))) for _ in range(count)
    ]
    for thread in threads:
        thread.start()
    wait_until(lambda: bell.waiting == count, timeout_s=10)
    return threads, woke


def test_a_ring_for_n_deliveries_tells_each_idle_worker_it_wakes_its_share() -> None:
    bell = Doorbell()
    threads, woke = _waiters(bell, 3)
    bell.ring(7)  # 7 deliveries, 3 idle workers: 3 each (the last finds 1)
    for thread in threads:
        thread.join(timeout=10)
    assert woke == [Wake(3)] * 3
    assert bell.waiting == 0


def test_a_ring_wakes_no_more_workers_than_deliveries_and_the_rest_wait_on() -> None:
    bell = Doorbell()
    threads, woke = _waiters(bell, 3)
    bell.ring(2)
    wait_until(lambda: len(woke) == 2, timeout_s=10)
    assert woke == [Wake(1)] * 2
    assert bell.waiting == 1
    bell.ring()
    for thread in threads:
        thread.join(timeout=10)
    assert woke[2] == Wake(None)


def test_a_ring_just_after_one_that_woke_every_worker_wakes_no_one_and_changes_no_share() -> None:
    bell = Doorbell()
    threads, woke = _waiters(bell, 4)
    bell.ring(8)
    bell.ring(1)  # before the woken workers run: they are no longer waiting
    for thread in threads:
        thread.join(timeout=10)
    assert woke == [Wake(2)] * 4


def test_a_worker_that_was_claiming_when_the_bell_rang_claims_a_whole_batch_at_once() -> None:
    bell = Doorbell()
    seen = bell.rung
    bell.ring(1)  # no one waiting yet (the worker is still claiming)
    assert bell.wait(seen, timeout_s=3600.0) == Wake(None)
    assert bell.wait(bell.rung, timeout_s=0.01) is None
    assert bell.waiting == 0


class _LimitsSeen(_MemoryStore):
    """Which thread claimed with which limit, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.limits: list[tuple[int, int]] = []

    def claim(
        self, *, now: datetime, limit: int, lease_s: float, held: Sequence[uuid.UUID] = ()
    ) -> Claimed:
        with self.lock:
            self.limits.append((threading.get_ident(), limit))
        return super().claim(now=now, limit=limit, lease_s=lease_s, held=held)


def test_deliveries_stored_while_workers_idle_are_shared_among_them_not_sent_by_one() -> None:
    store = _LimitsSeen()
    sender = _Answering(store)
    bell = Doorbell()
    loops = [_memory_loop(store, sender, idle_poll_s=3600.0, doorbell=bell) for _ in range(4)]
    with _running(*loops) as workers:
        wait_until(lambda: bell.waiting == 4, timeout_s=10)  # each claimed nothing, and waits
        with store.lock:
            store.due = _due(store, SUBSCRIPTION, 8)
            before = len(store.limits)
        bell.ring(8)
        wait_until(lambda: len(store.recorded) == 8, timeout_s=30)
        # and each woken worker has claimed (one slow to run may find the others sent it all)
        wait_until(lambda: len({t for t, _ in store.limits[before:]}) == 4, timeout_s=30)
    firsts: dict[int, int] = {}
    for thread, limit in store.limits[before:]:
        firsts.setdefault(thread, limit)
    assert firsts == {worker.ident: 2 for worker in workers}  # 8 over 4: each asked for 2 first
    assert all(limit == loops[0].claim_batch for _, limit in store.limits[:before])


def test_a_share_larger_than_a_claim_batch_is_claimed_a_batch_at_a_time() -> None:
    store = _LimitsSeen()
    sender = _Answering(store)
    loop = _memory_loop(store, sender, idle_poll_s=3600.0, claim_batch=3)
    with _running(loop):
        wait_until(lambda: loop.doorbell.waiting == 1, timeout_s=10)
        with store.lock:
            store.due = _due(store, SUBSCRIPTION, 8)
            before = len(store.limits)
        loop.doorbell.ring(8)  # one idle worker: its share is all 8
        wait_until(lambda: len(store.recorded) == 8, timeout_s=30)
    assert {limit for _, limit in store.limits[before:]} == {3}


class _SlowRecorder:
    """Records each call's attempts; the first call waits until `go` is set."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[list[uuid.UUID]] = []
        self.go = threading.Event()
        self.error = error

    def record_attempts(
        self,
        attempts: Sequence[tuple[AttemptRecord, Outcome]],
        *,
        now: datetime,
        disable_after: timedelta = timedelta(days=5),
    ) -> Recorded:
        self.calls.append([a.delivery_id for a, _ in attempts])
        if len(self.calls) == 1:
            self.go.wait(30)
        if self.error is not None:
            raise self.error
        return Recorded(disabled={}, late=len(attempts))


def _attempt(delivery: uuid.UUID) -> tuple[AttemptRecord, Outcome]:
    record = AttemptRecord(
        delivery_id=delivery,
        claim=uuid.uuid4(),
        started_at=datetime.now(UTC),
        duration_ms=1,
        status_code=204,
        response_headers={},
        response_body="",
        error=None,
    )
    return record, Outcome(Verdict.DELIVERED)


def _recording(grouped: GroupedAttempts, delivery: uuid.UUID, out: dict[uuid.UUID, object]) -> None:
    try:
        out[delivery] = grouped.record_attempts([_attempt(delivery)], now=datetime.now(UTC))
    except (StoreError, ValuesRefusedError) as e:
        out[delivery] = e


def test_attempts_recorded_while_a_transaction_runs_go_together_in_the_next_once_it_ends() -> None:
    store = _SlowRecorder()
    grouped = GroupedAttempts(store)  # type: ignore[arg-type]
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    returned: dict[uuid.UUID, object] = {}
    writer = threading.Thread(target=_recording, args=(grouped, first, returned))
    writer.start()
    wait_until(lambda: len(store.calls) == 1, timeout_s=10)
    others = [
        threading.Thread(target=_recording, args=(grouped, d, returned)) for d in (second, third)
    ]
    for t in others:
        t.start()
    wait_until(lambda: len(grouped._queued) == 2, timeout_s=10)
    assert returned == {}  # nobody goes on before the transaction holding its attempt ended
    store.go.set()
    for t in [writer, *others]:
        t.join(timeout=10)
    assert store.calls[0] == [first]
    assert sorted(store.calls[1]) == sorted([second, third])  # one transaction for both
    assert len(store.calls) == 2
    assert sum(r.late for r in returned.values() if isinstance(r, Recorded)) == 3  # once each


def test_a_failed_grouped_transaction_is_raised_to_every_worker_in_it() -> None:
    store = _SlowRecorder(error=StoreError("terminating connection due to administrator command"))
    grouped = GroupedAttempts(store)  # type: ignore[arg-type]
    deliveries = [uuid.uuid4() for _ in range(3)]
    returned: dict[uuid.UUID, object] = {}
    threads = [threading.Thread(target=_recording, args=(grouped, d, returned)) for d in deliveries]
    threads[0].start()
    wait_until(lambda: len(store.calls) == 1, timeout_s=10)
    for t in threads[1:]:
        t.start()
    wait_until(lambda: len(grouped._queued) == 2, timeout_s=10)
    store.go.set()
    for t in threads:
        t.join(timeout=10)
    assert len(store.calls) == 2  # the writer's, then the two others' together
    assert all(isinstance(returned[d], StoreError) for d in deliveries)


class _RefusingOne(_SlowRecorder):
    """Refuses (as Postgres refuses a value out of range) every transaction holding `bad`."""

    def __init__(self, bad: uuid.UUID) -> None:
        super().__init__()
        self.bad = bad

    def record_attempts(
        self,
        attempts: Sequence[tuple[AttemptRecord, Outcome]],
        *,
        now: datetime,
        disable_after: timedelta = timedelta(days=5),
    ) -> Recorded:
        super().record_attempts(attempts, now=now, disable_after=disable_after)
        if self.bad in self.calls[-1]:
            raise ValuesRefusedError('value "1099511627776" is out of range for type integer')
        return Recorded(disabled={}, late=0)


def test_values_refused_in_a_grouped_transaction_fail_only_the_worker_that_holds_them() -> None:
    first, second, bad, third = (uuid.uuid4() for _ in range(4))
    store = _RefusingOne(bad)
    grouped = GroupedAttempts(store)  # type: ignore[arg-type]
    returned: dict[uuid.UUID, object] = {}
    writer = threading.Thread(target=_recording, args=(grouped, first, returned))
    writer.start()
    wait_until(lambda: len(store.calls) == 1, timeout_s=10)
    others = [
        threading.Thread(target=_recording, args=(grouped, d, returned))
        for d in (second, bad, third)
    ]
    for t in others:
        t.start()
    wait_until(lambda: len(grouped._queued) == 3, timeout_s=10)
    store.go.set()
    for t in [writer, *others]:
        t.join(timeout=10)
    assert sorted(store.calls[1]) == sorted([second, bad, third])  # grouped, and refused
    assert sorted(map(tuple, store.calls[2:])) == sorted([(second,), (bad,), (third,)])  # alone
    assert isinstance(returned[bad], ValuesRefusedError)
    assert all(isinstance(returned[d], Recorded) for d in (first, second, third))


def test_a_refused_transaction_of_one_worker_is_not_tried_again() -> None:
    bad = uuid.uuid4()
    store = _RefusingOne(bad)
    store.go.set()
    grouped = GroupedAttempts(store)  # type: ignore[arg-type]
    returned: dict[uuid.UUID, object] = {}
    _recording(grouped, bad, returned)
    assert isinstance(returned[bad], ValuesRefusedError)
    assert store.calls == [[bad]]
