"""Receivers that misbehave, through the real sending loop, HTTP sender and Postgres, on fake time.

Each test runs real HTTP receivers on 127.0.0.1; time (the wall clock stored in Postgres and the
breakers' clock) is a fake that the test moves, so retry schedules are checked without sleeping.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from dispatchers import metrics
from dispatchers.addresses import AddressPolicy
from dispatchers.breaker import BreakerPolicy, Breakers
from dispatchers.http import HttpSender
from dispatchers.matching import SubscriptionFilter
from dispatchers.memory import MemoryStore
from dispatchers.model import DueDelivery, Stores
from dispatchers.outcomes import Outcome, RetryAfterBounds, Verdict
from dispatchers.sending import SendingLoop
from herald_contracts import encode_domain_event
from herald_dev.receiver import Receiver, Reply
from tests.dispatchers.stores import memory_unless_postgres_asked
from tests.support import WEBHOOK_SECRET, domain_event

SECRET = WEBHOOK_SECRET
NEW_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
SCHEDULE = (0, 5, 60)
ALL_PRIVATE = AddressPolicy(all_private=True)  # the receivers listen on 127.0.0.1


class FakeTime:
    def __init__(self) -> None:
        self.wall = datetime.now(UTC).replace(microsecond=0)
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.wall

    def clock(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


@pytest.fixture
def time_() -> FakeTime:
    return FakeTime()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for r in started:
        r.stop()


def _receiver(receivers: list[Receiver], respond: Any = None, secret: str = SECRET) -> Receiver:
    # Fake time runs ahead of the receiver's clock: accept any timestamp.
    r = Receiver(secret=secret, respond=respond, tolerance_s=float("inf"))
    r.serve()
    receivers.append(r)
    return r


def _loop(
    store: Stores,
    time_: FakeTime,
    *,
    policy: AddressPolicy = ALL_PRIVATE,
    read_timeout_s: float = 2.0,
    total_timeout_s: float = 10.0,
    breakers: Breakers | None = None,
) -> SendingLoop:
    return SendingLoop(
        store=store.queue,
        sender=HttpSender(
            connect_timeout_s=1,
            read_timeout_s=read_timeout_s,
            total_timeout_s=total_timeout_s,
            user_agent="test",
            policy=policy,
        ),
        now=time_.now,
        clock=time_.clock,
        retry_schedule_s=SCHEDULE,
        retry_jitter=0.0,
        retry_after=RetryAfterBounds(min_s=1, max_s=3600),
        disable_after=timedelta(days=5),
        breakers=breakers or Breakers(BreakerPolicy(max_in_flight=4)),
    )


def _subscribe(store: Stores, url: str, *, secrets: tuple[str, ...] = (SECRET,)) -> uuid.UUID:
    return store.subscriptions.create(
        url=url, secrets=list(secrets), filter=SubscriptionFilter(), ordered=False
    )


def _deliver(store: Stores, subscription: uuid.UUID, time_: FakeTime, count: int = 1) -> None:
    events = [domain_event(n) for n in range(count)]
    store.events.record_events(
        [(e, encode_domain_event(e), [subscription]) for e in events], now=time_.now()
    )


def _rows(database_url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, args).fetchall()


def _deliveries(store: Stores, *columns: str) -> list[tuple[Any, ...]]:
    """These columns of every delivery, in the order stored (the in-memory store's rows)."""
    assert isinstance(store, MemoryStore)
    rows = sorted(store.tables.deliveries.values(), key=lambda d: d.seq)
    return [tuple(getattr(d, c) for c in columns) for d in rows]


def _attempts(
    store: Stores, *columns: str, subscription: uuid.UUID | None = None
) -> list[tuple[Any, ...]]:
    """These columns of every attempt (of one subscription's deliveries), in the order made."""
    assert isinstance(store, MemoryStore)
    rows = sorted(store.tables.deliveries.values(), key=lambda d: d.seq)
    return [
        tuple(a[c] for c in columns)
        for d in rows
        if subscription in (None, d.subscription_id)
        for a in d.attempts
    ]


@pytest.fixture
def store(request: pytest.FixtureRequest) -> Stores:
    return memory_unless_postgres_asked(request)


def test_a_500_is_retried_on_the_schedule_and_fails_after_the_last_try(
    store: Stores, time_: FakeTime, receivers: list[Receiver]
) -> None:
    receiver = _receiver(receivers, lambda r: Reply(status=500))
    _deliver(store, _subscribe(store, receiver.url), time_)
    loop = _loop(store, time_)
    assert loop.run_once() == 1
    time_.advance(4.9)
    assert loop.run_once() == 0  # the second try is 5 s after the first
    time_.advance(0.1)
    assert loop.run_once() == 1
    time_.advance(59)
    assert loop.run_once() == 0
    time_.advance(1)
    assert loop.run_once() == 1
    time_.advance(10_000)
    assert loop.run_once() == 0  # three tries: the schedule's length
    assert _deliveries(store, "status", "attempt_count") == [("failed", 3)]
    codes = _attempts(store, "status_code")
    assert codes == [(500,), (500,), (500,)]
    assert len(receiver.received) == 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # the same id each time


def test_a_410_disables_the_subscription_and_nothing_more_is_sent(
    store: Stores, time_: FakeTime, receivers: list[Receiver]
) -> None:
    receiver = _receiver(receivers, lambda r: Reply(status=410))
    subscription = _subscribe(store, receiver.url)
    _deliver(store, subscription, time_, count=3)
    loop = _loop(store, time_)
    loop.claim_batch = 1
    assert loop.run_once() == 1
    time_.advance(100)
    assert loop.run_once() == 0
    found = store.subscriptions.get(subscription)
    assert found is not None
    assert not found.enabled
    assert found.disabled_reason == "the endpoint answered 410 Gone"


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds_sets_the_next_try(
    status: int, store: Stores, time_: FakeTime, receivers: list[Receiver]
) -> None:
    receiver = _receiver(
        receivers, lambda r: Reply(status=status, headers=(("Retry-After", "30"),))
    )
    _deliver(store, _subscribe(store, receiver.url), time_)
    loop = _loop(store, time_)
    loop.run_once()
    [(next_at,)] = _deliveries(store, "next_attempt_at")
    assert next_at == time_.now() + timedelta(seconds=30)
    time_.advance(29)
    assert loop.run_once() == 0
    time_.advance(1)
    assert loop.run_once() == 1


def test_retry_after_as_a_date_is_honoured_and_bounded(
    store: Stores, time_: FakeTime, receivers: list[Receiver]
) -> None:
    far = format_datetime(time_.now() + timedelta(days=3), usegmt=True)
    receiver = _receiver(receivers, lambda r: Reply(status=503, headers=(("Retry-After", far),)))
    _deliver(store, _subscribe(store, receiver.url), time_)
    _loop(store, time_).run_once()
    [(next_at,)] = _deliveries(store, "next_attempt_at")
    assert next_at == time_.now() + timedelta(seconds=3600)  # at most HERALD_RETRY_AFTER_MAX_S


def test_a_receiver_that_hangs_past_the_timeout_is_a_failed_attempt(
    store: Stores, time_: FakeTime, receivers: list[Receiver]
) -> None:
    receiver = _receiver(receivers, lambda r: Reply(delay_s=3))
    _deliver(store, _subscribe(store, receiver.url), time_)
    _loop(store, time_, read_timeout_s=0.5).run_once()
    [(code, error, ms)] = _attempts(store, "status_code", "error", "duration_ms")
    assert code is None
    assert "ReadTimeout" in error
    assert 400 <= ms < 2500
    assert _deliveries(store, "status") == [("retrying",)]


@pytest.fixture
def trickler() -> Iterator[str]:
    """A receiver that answers one byte of its headers every 0.1 s: no single wait is long."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not stop.wait(0.1):
                    conn.sendall(b"a")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hooks"
    stop.set()
    server.close()
    thread.join(5)


def test_a_receiver_trickling_its_answer_is_cut_off_at_the_total_timeout(
    store: Stores, time_: FakeTime, trickler: str
) -> None:
    _deliver(store, _subscribe(store, trickler), time_)
    _loop(store, time_, read_timeout_s=2.0, total_timeout_s=1.0).run_once()
    [(code, error, ms)] = _attempts(store, "status_code", "error", "duration_ms")
    assert code is None
    assert "TotalTimeout" in error
    assert 900 <= ms < 2000
    assert _deliveries(store, "status") == [("retrying",)]


def test_a_receiver_that_closes_the_connection_is_a_failed_attempt(
    store: Stores, time_: FakeTime, receivers: list[Receiver]
) -> None:
    receiver = _receiver(receivers, lambda r: Reply(close=True))
    _deliver(store, _subscribe(store, receiver.url), time_)
    results: list[Any] = []
    loop = _loop(store, time_)
    loop.on_attempt = lambda delivery, result, outcome: results.append(result)
    loop.run_once()
    [(code, error)] = _attempts(store, "status_code", "error")
    assert code is None
    assert "ConnectionError" in error
    assert [r.permanent for r in results] == [False]  # a later try may well get through


def test_a_slow_receiver_within_the_timeout_gets_its_delivery(
    store: Stores, time_: FakeTime, receivers: list[Receiver]
) -> None:
    receiver = _receiver(receivers, lambda r: Reply(delay_s=0.4))
    _deliver(store, _subscribe(store, receiver.url), time_)
    _loop(store, time_).run_once()
    [(code, ms)] = _attempts(store, "status_code", "duration_ms")
    assert code == 204
    assert ms >= 400
    assert _deliveries(store, "status") == [("delivered",)]


def test_a_redirect_is_not_followed_and_counts_as_a_failure(
    store: Stores, time_: FakeTime, receivers: list[Receiver]
) -> None:
    target = _receiver(receivers)
    redirecting = _receiver(
        receivers, lambda r: Reply(status=302, headers=(("Location", target.url),))
    )
    _deliver(store, _subscribe(store, redirecting.url), time_)
    _loop(store, time_).run_once()
    assert target.received == []
    assert _attempts(store, "status_code") == [(302,)]
    assert _deliveries(store, "status") == [("retrying",)]


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(AddressPolicy(), id="public-only"),
        pytest.param(AddressPolicy.parse("10.0.0.0/8, localhost.example"), id="loopback-unlisted"),
    ],
)
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_delivery_refused_by_policy_fails_at_once_with_the_reason_and_is_never_retried(
    host: str,
    policy: AddressPolicy,
    store: Stores,
    time_: FakeTime,
    receivers: list[Receiver],
) -> None:
    receiver = _receiver(receivers)
    url = receiver.url.replace("127.0.0.1", host)
    _deliver(store, _subscribe(store, url), time_)
    verdicts: list[tuple[Verdict, bool]] = []

    def observe(delivery: DueDelivery, result: Any, outcome: Outcome) -> None:
        verdicts.append((outcome.verdict, result.permanent))
        metrics.observe_attempt(delivery, result, outcome, now=time_.now())

    def refused_count() -> float:
        found = REGISTRY.get_sample_value(
            "herald_dispatcher_deliveries_total", {"outcome": "refused"}
        )
        return found or 0.0

    before = refused_count()
    loop = _loop(store, time_, policy=policy)
    loop.on_attempt = observe
    assert loop.run_once() == 1
    time_.advance(10_000)
    assert loop.run_once() == 0  # not retried: the schedule had two more tries
    assert receiver.received == []
    assert verdicts == [(Verdict.REFUSED, True)]  # the HTTP edge says no try can change it
    assert refused_count() == before + 1
    [(code, error)] = _attempts(store, "status_code", "error")
    assert code is None
    assert "refused to connect" in error
    assert "loopback" in error
    [(status, count, last_error)] = _deliveries(store, "status", "attempt_count", "last_error")
    assert (status, count) == ("failed", 1)
    assert "loopback" in last_error


def test_a_receiver_in_a_listed_cidr_gets_its_delivery(
    store: Stores, time_: FakeTime, receivers: list[Receiver]
) -> None:
    receiver = _receiver(receivers)
    _deliver(store, _subscribe(store, receiver.url), time_)
    _loop(store, time_, policy=AddressPolicy.parse("127.0.0.1/32")).run_once()
    assert len(receiver.received) == 1
    assert _deliveries(store, "status") == [("delivered",)]


def test_a_stored_url_that_can_never_be_delivered_to_fails_at_once(
    store: Stores, time_: FakeTime
) -> None:
    """A URL stored before the check existed (or written to the table by hand)."""
    _deliver(store, _subscribe(store, "ftp://hooks.example.com/h"), time_)
    _loop(store, time_).run_once()
    [(status, count, last_error)] = _deliveries(store, "status", "attempt_count", "last_error")
    assert (status, count) == ("failed", 1)
    assert "only http and https" in last_error


def test_an_open_breaker_holds_a_failing_subscription_without_spending_tries_and_not_others(
    store: Stores, time_: FakeTime, receivers: list[Receiver]
) -> None:
    failing = _receiver(receivers, lambda r: Reply(status=500))
    healthy = _receiver(receivers)
    bad, good = _subscribe(store, failing.url), _subscribe(store, healthy.url)
    _deliver(store, bad, time_, count=12)
    breakers = Breakers(BreakerPolicy(min_attempts=10, failure_ratio=0.7, pause_s=30))
    loop = _loop(store, time_, breakers=breakers)
    loop.claim_batch = 10
    # A failing endpoint gets one attempt per claimed batch (the rest goes back untried).
    assert [loop.run_once() for _ in range(10)] == [1] * 10  # ten tries fail: the breaker opens
    assert breakers.held(time_.clock()) == {bad}
    time_.advance(10)  # the failed ones are due again (5 s), but held
    _deliver(store, good, time_, count=3)  # due after the twelve held ones
    # Only the healthy subscription's (the held ones are not even claimed): one first, as it is
    # new to this dispatcher, then the other two together.
    assert [loop.run_once(), loop.run_once()] == [1, 2]
    assert len(failing.received) == 10
    assert len(healthy.received) == 3
    [(bad_attempts,)] = [(len(_attempts(store, "status_code", subscription=bad)),)]
    assert bad_attempts == 10
    time_.advance(20)  # 30 s after opening: one probe
    failing.respond = lambda r: Reply(status=204)
    loop.claim_batch = 1
    assert loop.run_once() == 1
    assert breakers.held(time_.clock()) == set()  # the probe succeeded: closed
    loop.claim_batch = 20
    assert loop.run_once() == 11
    assert sorted(Counter(_deliveries(store, "status")).items()) == [(("delivered",), 15)]


def test_a_subscription_failing_for_days_is_disabled_with_the_reason_and_a_success_resets_it(
    store: Stores, time_: FakeTime, receivers: list[Receiver]
) -> None:
    receiver = _receiver(receivers, lambda r: Reply(status=500))
    subscription = _subscribe(store, receiver.url)
    loop = _loop(store, time_)
    _deliver(store, subscription, time_)
    loop.run_once()
    time_.advance(4 * 86400)
    receiver.respond = None  # a success
    _deliver(store, subscription, time_)
    loop.run_once()
    time_.advance(2 * 86400)  # 6 days after the first failure, but 2 after the success
    receiver.respond = lambda r: Reply(status=500)
    _deliver(store, subscription, time_)
    loop.run_once()
    found = store.subscriptions.get(subscription)
    assert found is not None
    assert found.enabled
    time_.advance(5 * 86400 + 1)
    _deliver(store, subscription, time_)
    loop.run_once()
    found = store.subscriptions.get(subscription)
    assert found is not None
    assert not found.enabled
    assert found.disabled_reason is not None
    assert found.disabled_reason.startswith("every attempt has failed since")


def test_after_a_rotation_both_secrets_sign_until_the_grace_period_ends(
    store: Stores, time_: FakeTime, receivers: list[Receiver]
) -> None:
    old_side = _receiver(receivers, secret=SECRET)
    subscription = _subscribe(store, old_side.url)
    assert store.subscriptions.rotate_secret(
        subscription, NEW_SECRET, now=time_.now(), grace=timedelta(hours=1)
    )
    new_side = _receiver(receivers, secret=NEW_SECRET)
    loop = _loop(store, time_)
    for receiver in (old_side, new_side):
        _point(store, subscription, receiver.url)
        _deliver(store, subscription, time_)
        loop.run_once()
        [request] = receiver.received
        assert request.verified, request.reason
        assert len(request.headers["webhook-signature"].split(" ")) == 2
    time_.advance(3601)
    _point(store, subscription, old_side.url)
    old_side.respond = None
    _deliver(store, subscription, time_)
    due = store.queue.claim_due(now=time_.now(), limit=10, lease_s=60)
    assert [d.secrets for d in due] == [(NEW_SECRET,)]


def _point(store: Stores, subscription: uuid.UUID, url: str) -> None:
    assert store.subscriptions.update(subscription, now=datetime.now(UTC), url=url)


def test_an_unreachable_receiver_does_not_block_the_other_workers(
    store: Stores, time_: FakeTime, receivers: list[Receiver]
) -> None:
    """Bulkheads: a subscription not yet proven healthy gets one worker; the others stay free."""
    hanging = _receiver(receivers, lambda r: Reply(delay_s=1.5))
    healthy = _receiver(receivers)
    slow, fast = _subscribe(store, hanging.url), _subscribe(store, healthy.url)
    _deliver(store, slow, time_, count=8)
    breakers = Breakers(BreakerPolicy(max_in_flight=4))
    loops = [_loop(store, time_, breakers=breakers) for _ in range(4)]
    for loop in loops:
        loop.claim_batch = 1
    threads = [threading.Thread(target=loop.run_once) for loop in loops[:2]]
    for t in threads:
        t.start()
    hanging.wait_for(1, timeout_s=5)  # one worker is stuck on the slow receiver
    _deliver(store, fast, time_, count=2)
    assert loops[2].run_once() == 1  # the others are free, and skip the slow subscription
    assert loops[3].run_once() == 1
    assert len(healthy.received) == 2
    for t in threads:
        t.join()
    assert len(hanging.received) == 1


def test_a_delivery_already_claimed_but_held_by_the_breaker_is_given_back_untried(
    store: Stores, time_: FakeTime, receivers: list[Receiver]
) -> None:
    receiver = _receiver(receivers)
    subscription = _subscribe(store, receiver.url)
    _deliver(store, subscription, time_)
    breakers = Breakers(BreakerPolicy(max_in_flight=1))
    assert breakers.begin(subscription, time_.clock())  # another worker has the only slot
    loop = _loop(store, time_, breakers=breakers)
    loop.breakers = _Blind(breakers)  # claims without asking `held` first: the race
    assert loop.run_once() == 0
    assert receiver.received == []
    assert _deliveries(store, "status", "attempt_count", "claimed_until") == [("pending", 0, None)]


class _Blind(Breakers):
    def __init__(self, inner: Breakers) -> None:
        self.__dict__.update(inner.__dict__)

    def held(self, now: float) -> set[Any]:
        return set()


def test_tls_certificates_are_verified(store: Stores, time_: FakeTime, tmp_path: Path) -> None:
    """A receiver with a self-signed certificate: the attempt fails on verification, nothing sent."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    receiver = Receiver(secret=SECRET, tolerance_s=float("inf"))
    receiver.serve()
    assert receiver._server is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    receiver._server.socket = context.wrap_socket(receiver._server.socket, server_side=True)
    try:
        _deliver(store, _subscribe(store, receiver.url.replace("http://", "https://")), time_)
        _loop(store, time_).run_once()
        [(code, error)] = _attempts(store, "status_code", "error")
        assert code is None
        assert "CERTIFICATE_VERIFY_FAILED" in error
        assert receiver.received == []
    finally:
        receiver.stop()


@pytest.fixture
def answering() -> Iterator[Any]:
    """Start a receiver that answers every request with the given raw bytes; returns its URL."""
    servers: list[socket.socket] = []

    def start(answer: bytes) -> str:
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)

        def serve() -> None:
            with contextlib.suppress(OSError):
                while True:
                    conn, _ = server.accept()
                    with conn:
                        conn.recv(65536)
                        conn.sendall(answer)

        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{server.getsockname()[1]}/hooks"

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize(
    ("answer", "body", "header"),
    [
        pytest.param(
            b"HTTP/1.1 500 Oops\r\nContent-Length: 7\r\n\r\nerr\x00or!",
            "err\ufffdor!",
            None,
            id="nul-in-the-body",
        ),
        pytest.param(
            b"HTTP/1.1 500 Oops\r\nContent-Length: 2\r\nX-Debug: a\x00b\r\n\r\nno",
            "no",
            "a\ufffdb",
            id="nul-in-a-header",
        ),
        pytest.param(
            b"HTTP/1.1 500 Oops\r\nContent-Length: 3\r\nX-Debug: caf\xe9\r\n\r\n\xff\xfe!",
            "\ufffd\ufffd!",
            "caf\xe9",
            id="not-utf-8",
        ),
    ],
)
def test_an_answer_postgres_cannot_hold_is_recorded_with_those_characters_replaced(
    store: Stores,
    time_: FakeTime,
    answering: Any,
    database_url: str,
    answer: bytes,
    body: str,
    header: str | None,
) -> None:
    """A NUL in what a receiver answers made the attempt's insert fail: the worker, then the
    dispatcher, stopped, and every restart stopped again at the next attempt there. Any receiver
    could stop every subscription's deliveries."""
    _deliver(store, _subscribe(store, answering(answer)), time_)
    assert _loop(store, time_).run_once() == 1
    [(code, stored_body, headers)] = _rows(
        database_url, "SELECT status_code, response_body, response_headers FROM attempts"
    )
    assert (code, stored_body) == (500, body)
    if header is not None:
        assert headers["X-Debug"] == header
    assert _rows(database_url, "SELECT status FROM deliveries") == [("retrying",)]


def test_an_event_id_that_cannot_be_a_header_is_a_failed_attempt_not_a_failed_worker(
    store: Stores, time_: FakeTime, receivers: list[Receiver]
) -> None:
    """An event stored before the intake refused such ids: `http.client` raised while encoding the
    `webhook-id` header, out of the worker, which stopped the dispatcher on every restart."""
    receiver = _receiver(receivers)
    subscription = _subscribe(store, receiver.url)
    event = domain_event(1, event_id="\u4e8b\u4ef6-1")
    store.events.record_events(
        [(event, encode_domain_event(event), [subscription])], now=time_.now()
    )
    assert _loop(store, time_).run_once() == 1
    assert receiver.received == []
    [(code, error)] = _attempts(store, "status_code", "error")
    assert code is None
    assert "UnicodeEncodeError" in error
    assert _deliveries(store, "status") == [("retrying",)]
