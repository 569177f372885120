"""The sending loop: signed POSTs to a real HTTP receiver, every attempt recorded, on the in-memory
store (the store's own behaviour is the contract suite's, `test_store_contract.py`)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from dispatchers.addresses import AddressPolicy
from dispatchers.http import HttpResult, HttpSender
from dispatchers.matching import SubscriptionFilter
from dispatchers.memory import MemoryStore
from dispatchers.model import ValuesRefusedError
from dispatchers.sending import SendingLoop
from herald_contracts import DomainEvent, encode_domain_event
from herald_dev import infra
from herald_dev.receiver import Receiver
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
def store(memory_store: MemoryStore) -> MemoryStore:
    return memory_store


def _logged(store: MemoryStore) -> tuple[dict[str, Any], dict[str, Any]]:
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


def _loop(store: MemoryStore) -> SendingLoop:
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


def _deliver_to(store: MemoryStore, url: str) -> None:
    subscription = store.subscriptions.create(
        url=url, secrets=[SECRET], filter=SubscriptionFilter(), ordered=True
    )
    store.events.record_events(
        [(EVENT, encode_domain_event(EVENT), [subscription])], now=datetime.now(UTC)
    )


def test_delivery_is_signed_and_recorded(store: MemoryStore, receiver: Receiver) -> None:
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
    store: MemoryStore, receiver: Receiver
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


def test_an_unreachable_endpoint_records_the_error(store: MemoryStore) -> None:
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


def test_no_attempt_starts_that_could_outlast_the_lease_of_its_claim(store: MemoryStore) -> None:
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
    store: MemoryStore, receiver: Receiver
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
