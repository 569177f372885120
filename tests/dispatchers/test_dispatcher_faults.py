"""The dispatcher as a real process under faults: killed with -9 mid-delivery, Postgres restarted
while delivering. After recovery every delivery ends delivered, each (event, subscription) pair has
exactly one delivery row, and a repeated send carries the same webhook-id."""

from __future__ import annotations

import dataclasses
import json
import secrets
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dispatchers.matching import SubscriptionFilter
from dispatchers.postgres import Store
from herald_contracts import DomainEvent, domain_record_headers, encode_domain_event
from herald_dev import infra
from herald_dev.processes import ServiceProcess
from herald_dev.receiver import Received, Receiver, Reply
from tests.conftest import Topics
from tests.support import (
    WEBHOOK_SECRET,
    consume,
    domain_event,
    http_get,
    produce,
    produce_domain_events,
    wait_until,
)

SECRET = WEBHOOK_SECRET


def _events(count: int) -> list[DomainEvent]:
    return [domain_event(n, name=f"svc-{n % 10}") for n in range(count)]


def _env(topics: Topics, kafka: str, database_url: str) -> dict[str, str]:
    return {
        **topics.env(),
        "HERALD_KAFKA_BOOTSTRAP": kafka,
        "HERALD_DATABASE_URL": database_url,
        "HERALD_DISPATCHER_GROUP_ID": f"faults-{uuid.uuid4().hex[:8]}",
        "HERALD_ALLOW_PRIVATE_NETWORKS": "true",
        "HERALD_DISPATCHER_WORKERS": "4",
        "HERALD_DISPATCHER_LEASE_S": "4",
        "HERALD_HTTP_TOTAL_TIMEOUT_S": "2",
        "HERALD_RETRY_SCHEDULE_S": "0,1,1,1,1,1,1,1,1,1,1,1",
        "HERALD_RETRY_JITTER": "0",
        "HERALD_LOG_FORMAT": "text",  # the assertions read the log as text (JSON escapes quotes)
    }


def _summary(database_url: str) -> tuple[dict[str, int], int, int]:
    """(deliveries by status, delivery rows, distinct (event, subscription) pairs)."""
    with psycopg.connect(database_url) as conn:
        by_status = dict(
            conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status").fetchall()
        )
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (event_id, subscription_id)) FROM deliveries"
        ).fetchone()
    assert row is not None
    return by_status, row[0], row[1]


def _attempts(database_url: str, ids: set[str]) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT d.event_id, a.attempt_number, a.status_code, a.error FROM attempts a"
            " JOIN deliveries d ON d.id = a.delivery_id WHERE d.event_id = ANY(%s)",
            (list(ids),),
        ).fetchall()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(secret=SECRET)
    r.serve()
    yield r
    r.stop()


@pytest.mark.timeout(180)
def test_kill_9_while_sending_and_with_deliveries_recorded_but_unsent_loses_nothing(
    kafka: str,
    topics: Topics,
    store: Store,
    database_url: str,
    receiver: Receiver,
    services: Callable[..., ServiceProcess],
) -> None:
    gate = threading.Event()

    def hold(_: Received) -> Reply:
        gate.wait(120)  # the first requests hang: sent, but their results never recorded
        return Reply(status=204)

    receiver.respond = hold
    subscription = store.subscriptions.create(
        url=receiver.url, secrets=[SECRET], filter=SubscriptionFilter(), ordered=True
    )
    events = _events(40)
    produce_domain_events(kafka, topics.domain, events)
    # Long enough for the held requests to be still in flight when the dispatcher is killed.
    env = {
        **_env(topics, kafka, database_url),
        "HERALD_DISPATCHER_LEASE_S": "10",
        "HERALD_HTTP_TOTAL_TIMEOUT_S": "5",
    }
    first = services("dispatchers", env)
    # A subscription not yet proven healthy gets one worker: one request is held in flight.
    assert wait_until(lambda: len(receiver.received) >= 1, timeout_s=60)
    assert wait_until(lambda: _summary(database_url)[1] == 40, timeout_s=30)  # all recorded
    in_flight = {r.headers["webhook-id"] for r in receiver.received}
    first.kill()
    receiver.respond = None
    gate.set()
    services("dispatchers", env)
    assert wait_until(lambda: _summary(database_url)[0] == {"delivered": 40}, timeout_s=90), (
        _summary(database_url)
    )
    _, rows, pairs = _summary(database_url)
    assert rows == pairs == 40
    received = Counter(r.headers["webhook-id"] for r in receiver.received if r.verified)
    assert set(received) == {e.id for e in events}
    assert {i for i, n in received.items() if n > 1} == in_flight, (  # re-sent, the same id
        [(r.headers["webhook-id"], r.verified, r.reason) for r in receiver.received],
        _attempts(database_url, in_flight),
    )
    assert subscription  # every row belongs to the one subscription (the pairs above)


@pytest.mark.timeout(180)
def test_postgres_restarted_while_delivering_loses_nothing_and_needs_no_help(
    kafka: str,
    topics: Topics,
    receiver: Receiver,
    services: Callable[..., ServiceProcess],
) -> None:
    _, url, home = infra.start_postgres()
    try:
        store = Store.open(url)
        store.migrate()
        store.subscriptions.create(
            url=receiver.url, secrets=[SECRET], filter=SubscriptionFilter(), ordered=False
        )
        store.close()
        receiver.respond = lambda r: Reply(status=204, delay_s=0.02)
        events = _events(400)
        port = infra.free_port()
        env = {**_env(topics, kafka, url), "HERALD_METRICS_PORT": str(port)}
        services("dispatchers", env)
        produce_domain_events(kafka, topics.domain, events[:200])
        assert wait_until(lambda: len(receiver.received) >= 50, timeout_s=60)
        assert http_get(port, "/readyz")[0] == 200
        infra.pg_ctl(home, "stop")
        produce_domain_events(kafka, topics.domain, events[200:])
        # Not ready while the database is unreachable, but alive: nothing to restart.
        _, body = wait_until(lambda: (r := http_get(port, "/readyz"))[0] == 503 and r, timeout_s=10)
        assert json.loads(body)["database"] != "ok"
        assert http_get(port, "/healthz")[0] == 200
        time.sleep(3)
        infra.pg_ctl(home, "start")
        assert wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout_s=30)
        assert wait_until(lambda: _summary(url)[0] == {"delivered": 400}, timeout_s=120), _summary(
            url
        )
        _, rows, pairs = _summary(url)
        assert rows == pairs == 400
        assert {r.headers["webhook-id"] for r in receiver.received if r.verified} == {
            e.id for e in events
        }
    finally:
        infra.pg_ctl(home, "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.timeout(120)
def test_two_replicas_share_the_work_and_send_each_delivery_once(
    kafka: str,
    topics: Topics,
    store: Store,
    database_url: str,
    receiver: Receiver,
    services: Callable[..., ServiceProcess],
) -> None:
    store.subscriptions.create(
        url=receiver.url, secrets=[SECRET], filter=SubscriptionFilter(), ordered=False
    )
    events = _events(300)
    env = _env(topics, kafka, database_url)
    services("dispatchers", env)
    services("dispatchers", env)
    produce_domain_events(kafka, topics.domain, events)
    assert wait_until(lambda: _summary(database_url)[0] == {"delivered": 300}, timeout_s=90)
    _, rows, pairs = _summary(database_url)
    assert rows == pairs == 300
    received = Counter(r.headers["webhook-id"] for r in receiver.received if r.verified)
    assert set(received) == {e.id for e in events}
    assert max(received.values()) == 1  # leases kept the replicas from sending one twice


@pytest.mark.timeout(150)
def test_a_worker_failing_unexpectedly_stops_the_dispatcher_with_an_error_and_loses_nothing(
    kafka: str,
    topics: Topics,
    store: Store,
    database_url: str,
    receiver: Receiver,
    services: Callable[..., ServiceProcess],
) -> None:
    """Crash-only: a failure that is not the database being unreachable (here the schema drifted
    under the dispatcher) stops the whole process with a non-zero exit and the reason, rather than
    leaving it running without that worker; once fixed, a new process delivers everything."""
    store.subscriptions.create(
        url=receiver.url, secrets=[SECRET], filter=SubscriptionFilter(), ordered=False
    )
    events = _events(20)
    env = _env(topics, kafka, database_url)
    first = services("dispatchers", env)
    produce_domain_events(kafka, topics.domain, events[:10])
    assert wait_until(lambda: _summary(database_url)[0] == {"delivered": 10}, timeout_s=60)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE attempts RENAME COLUMN error TO error_text")
    produce_domain_events(kafka, topics.domain, events[10:])
    assert wait_until(lambda: not first.alive, timeout_s=60)
    assert first.stop() not in (0, None)
    log_text = first.log_tail(300)
    assert "failed; stopping the dispatcher" in log_text
    assert 'column "error" of relation "attempts" does not exist' in log_text
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE attempts RENAME COLUMN error_text TO error")
    services("dispatchers", env)
    assert wait_until(lambda: _summary(database_url)[0] == {"delivered": 20}, timeout_s=60), (
        _summary(database_url)
    )
    assert {r.headers["webhook-id"] for r in receiver.received if r.verified} == {
        e.id for e in events
    }


@pytest.mark.timeout(120)
def test_a_rate_limit_holds_across_replicas_and_slows_no_other_subscription(
    kafka: str,
    topics: Topics,
    store: Store,
    database_url: str,
    services: Callable[..., ServiceProcess],
) -> None:
    """4 messages a second at most, shared by two dispatchers: 16 events take at least 3 s (a
    full bucket of 4, then 12 at 4 a second), while an unlimited subscription gets them all."""
    limited, free = Receiver(secret=SECRET), Receiver(secret=SECRET)
    for r in (limited, free):
        r.serve()
    try:
        for receiver, rate in ((limited, 4.0), (free, None)):
            store.subscriptions.create(
                url=receiver.url,
                secrets=[SECRET],
                filter=SubscriptionFilter(),
                ordered=False,
                rate_limit_per_s=rate,
            )
        events = _events(16)
        env = _env(topics, kafka, database_url)
        services("dispatchers", env)
        services("dispatchers", env)
        produce_domain_events(kafka, topics.domain, events)
        assert wait_until(lambda: _summary(database_url)[0] == {"delivered": 32}, timeout_s=60)
        for receiver in (limited, free):
            assert {r.headers["webhook-id"] for r in receiver.received if r.verified} == {
                e.id for e in events
            }
        times = sorted(r.at for r in limited.received)
        # The last claim comes 3 s after the first at the earliest; the first send may lag its
        # claim a little. (Unlimited, the 16 take a fraction of a second.)
        assert times[-1] - times[0] >= 2.5, times
    finally:
        for r in (limited, free):
            r.stop()


def _stays_alive(dispatcher: ServiceProcess, port: int, *, seconds: float) -> None:
    """The process runs on and /healthz answers 200 for `seconds`, checked twice a second: a
    dependency that is away is waited for, not a reason to exit or be restarted."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert dispatcher.alive, dispatcher.log_tail()
        assert http_get(port, "/healthz")[0] == 200
        time.sleep(0.5)  # the time a condition must hold, not waiting for an effect


@pytest.mark.timeout(150)
def test_a_record_it_cannot_store_does_not_stop_the_dispatcher_and_the_nul_case_is_delivered(
    kafka: str,
    topics: Topics,
    store: Store,
    database_url: str,
    receiver: Receiver,
    services: Callable[..., ServiceProcess],
) -> None:
    """The shared case nul-in-message: an Argo CD sync failure quoting U+0000, then an ordinary
    event. The insert used to fail, the dispatcher exited, and every restart died on the same
    batch. Between them here, a record with an id too large for Postgres's index (which passed for
    an outage and held everything behind it). The receiver gets both events, signed, the first with
    the valid escape \\u0000 in its body; the bad one is set aside and counted; the process runs on."""
    store.subscriptions.create(
        url=receiver.url, secrets=[SECRET], filter=SubscriptionFilter(), ordered=True
    )
    failure = domain_event(1, name="edge-gateway", catalogue="application.operation_completed")
    failure.data["source_message"] = "decrypt: unexpected byte \x00 at offset 0 (PK\x03\x04\x00)"
    completed = domain_event(2, name="checkout", catalogue="rollout.completed")
    too_large = dataclasses.replace(domain_event(3), id=secrets.token_hex(4000))
    port = infra.free_port()
    dispatcher = services(
        "dispatchers", {**_env(topics, kafka, database_url), "HERALD_METRICS_PORT": str(port)}
    )
    produce_domain_events(kafka, topics.domain, (failure, too_large, completed))
    assert wait_until(lambda: len(receiver.received) >= 2, timeout_s=60)
    bodies = {r.headers["webhook-id"]: r.body for r in receiver.received if r.verified}
    assert bodies == {
        failure.id: encode_domain_event(failure),
        completed.id: encode_domain_event(completed),
    }
    assert b"\\u0000" in bodies[failure.id]
    assert wait_until(
        lambda: (
            'herald_dispatcher_dead_letters_total{kind="refused_by_database"} 1.0'
            in http_get(port, "/metrics")[1]
        ),
        timeout_s=10,
    )
    assert dispatcher.alive
    assert http_get(port, "/readyz")[0] == 200
    assert dispatcher.log_tail(300).count("set aside") == 1


@pytest.mark.timeout(180)
def test_a_dispatcher_started_while_its_database_is_down_waits_for_it_and_then_delivers(
    kafka: str,
    topics: Topics,
    receiver: Receiver,
    services: Callable[..., ServiceProcess],
) -> None:
    """A database that is down is a dependency to wait for, not a bad setting: the dispatcher used
    to exit at start ("cannot connect"). It stays up, alive but not ready, and delivers once the
    database answers."""
    _, url, home = infra.start_postgres()
    try:
        store = Store.open(url)
        store.migrate()
        store.subscriptions.create(
            url=receiver.url, secrets=[SECRET], filter=SubscriptionFilter(), ordered=False
        )
        store.close()
        infra.pg_ctl(home, "stop")
        port = infra.free_port()
        dispatcher = services(
            "dispatchers",
            {
                **_env(topics, kafka, url),
                "HERALD_METRICS_PORT": str(port),
                "HERALD_BACKOFF_MAX_S": "2",
            },
        )
        events = _events(20)
        produce_domain_events(kafka, topics.domain, events)
        _, body = wait_until(lambda: (r := http_get(port, "/readyz"))[0] == 503 and r, timeout_s=30)
        assert json.loads(body)["database"] != "ok"
        assert http_get(port, "/healthz")[0] == 200
        # Still waiting after several tries (a backoff of at most 2 s here), not exited.
        assert wait_until(lambda: "waiting for the database" in dispatcher.log_tail(), timeout_s=45)
        _stays_alive(dispatcher, port, seconds=6)
        infra.pg_ctl(home, "start")
        assert wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout_s=60)
        assert wait_until(lambda: _summary(url)[0] == {"delivered": 20}, timeout_s=60), _summary(
            url
        )
    finally:
        infra.pg_ctl(home, "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.timeout(240)
def test_kafka_away_is_waited_for_not_ready_but_alive_and_nothing_is_lost(
    receiver: Receiver, services: Callable[..., ServiceProcess], tmp_path: Path, database_url: str
) -> None:
    """Kafka stopped under a running dispatcher for about 10 s: /readyz says so (503, "kafka"), /healthz
    stays 200, the process runs on, and once Kafka is back every event is delivered, a record set
    aside meanwhile included in the dead-letter topic."""
    pid, bootstrap, home = infra.start_kafka(tmp_path / "private-kafka")
    try:
        topics = Topics(
            raw="outage.raw", domain="outage.domain", dead_letters="outage.dead", checkpoints="cp"
        )
        infra.create_topics(bootstrap, topics.env(), partitions=3)
        store = Store.open(database_url)
        store.subscriptions.create(
            url=receiver.url, secrets=[SECRET], filter=SubscriptionFilter(), ordered=False
        )
        store.close()
        port = infra.free_port()
        dispatcher = services(
            "dispatchers",
            {
                **_env(topics, bootstrap, database_url),
                "HERALD_METRICS_PORT": str(port),
                "HERALD_BACKOFF_MAX_S": "2",
            },
        )
        events = _events(30)
        produce_domain_events(bootstrap, topics.domain, events[:10])
        assert wait_until(lambda: len(receiver.received) >= 10, timeout_s=60)
        assert http_get(port, "/readyz")[0] == 200
        infra.stop_kafka(pid)
        _, body = wait_until(lambda: (r := http_get(port, "/readyz"))[0] == 503 and r, timeout_s=30)
        assert json.loads(body)["kafka"] != "ok"
        assert json.loads(body)["database"] == "ok"
        _stays_alive(dispatcher, port, seconds=6)  # several tries (a backoff of at most 2 s)
        pid = infra.launch_kafka(Path(home), bootstrap)
        produce(
            bootstrap,
            topics.domain,
            [(e.key.encode(), encode_domain_event(e)) for e in events[10:]]
            + [(b"c/billing/Rollout/svc-1", b"not json")],
            headers=domain_record_headers(),
        )
        assert wait_until(lambda: _summary(database_url)[0] == {"delivered": 30}, timeout_s=90), (
            _summary(database_url)
        )
        assert wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout_s=30)
        (dead,) = consume(bootstrap, topics.dead_letters, count=1, timeout_s=30)
        assert dead.value == b"not json"
        assert dispatcher.alive
    finally:
        infra.stop_kafka(pid)
