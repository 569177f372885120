"""The whole pipeline under faults, on real parts: a simulated cluster feeds Events steadily, bad
records are mixed in at every stage, and meanwhile each service is killed with -9 and restarted, the
Kafka broker is restarted and Postgres is restarted, in an order and at moments drawn at random (the
seed is printed; set HERALD_FAULT_SEED to replay one). At the end every webhook the Events call for
has arrived with a valid signature, nothing else arrived, each (event, subscription) has exactly one
delivery row and all are delivered, every bad record is in the dead-letter topic with the stage that
set it aside, and no service stopped by itself.

Bad inputs mixed in:
- in the cluster: an Argo CD failure message quoting a U+0000 (shared case nul-in-message), a kubelet
  Event with a 1.1 MB message (bigger than a Kafka record: published shortened), and objects that are
  not core/v1 Events (a Rollout Event whose `lastTimestamp` is not a time, an Event whose reason and
  message are not strings: the collector sets them aside);
- on the raw topic: bytes that are not JSON, JSON that is not a raw record, a tombstone, a record with
  a `collected_at` that is not a time (all dead-lettered), and a raw record from another producer whose
  Event's `lastTimestamp` is not a time (delivered, its time taken from `firstTimestamp`);
- on the domain topic: bytes that are not JSON, a CloudEvent with a `time` that is not a time, a
  Herald event whose `data` is not an object.
"""

from __future__ import annotations

import json
import os
import random
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
from confluent_kafka import Consumer

from collectors.events import event_problem
from dispatchers.matching import SubscriptionFilter
from dispatchers.postgres import Store
from herald_contracts import RawRecord, WatchType, encode_raw_record
from herald_dev import infra
from herald_dev.fakekube import FakeKube
from herald_dev.processes import ServiceProcess
from herald_dev.receiver import Receiver
from processors.interpreting import interpret
from tests.conftest import Topics
from tests.support import ROLLOUT, WEBHOOK_SECRET, produce, rollout_event, wait_until

CLUSTER = "prod-eu"
ROLLOUTS = 40
STEPS = (
    ("RolloutUpdated", "Rollout updated to revision 2"),
    ("RolloutStepCompleted", "Rollout step 1/2 completed (setWeight: 50)"),
    ("RolloutStepCompleted", "Rollout step 2/2 completed (pause: 10s)"),
    ("RolloutCompleted", "Rollout completed update to revision 2 (6f8b9c7d5): Completed all steps"),
)
NUL_MESSAGE = (
    "Sync operation to 4e1d9c2b7a6f5e4d3c2b1a09f8e7d6c5b4a39281 failed: ComparisonError: "
    "decrypt: unexpected byte \u0000 at offset 0 (PK\u0003\u0004\u0000\u0000...)"
)
BAD_RAW = [
    (b"bad-raw-0", b"\xff\xfe not JSON"),
    (b"bad-raw-1", b'{"cluster": "prod-eu", "watch_type": "ADDED"}'),
    (b"bad-raw-2", None),
    (
        b"bad-raw-3",
        json.dumps(
            {
                "cluster": CLUSTER,
                "watch_type": "ADDED",
                "collected_at": "yesterday",
                "object": {"metadata": {"uid": "u"}, "involvedObject": {}},
            }
        ).encode(),
    ),
]
_CLOUD_EVENT = {
    "specversion": "1.0",
    "id": "bad-domain",
    "source": f"/clusters/{CLUSTER}/namespaces/billing/rollouts/payments",
    "subject": "payments",
    "datacontenttype": "application/json",
    "data": {},
}
BAD_DOMAIN = [
    (b"bad-domain-0", b"not JSON at all"),
    (
        b"bad-domain-1",
        json.dumps(
            {**_CLOUD_EVENT, "type": "dev.herald.rollout.completed", "time": "20 Aug 2026"}
        ).encode(),
    ),
    (
        b"bad-domain-2",
        json.dumps(
            {
                **_CLOUD_EVENT,
                "type": "dev.herald.rollout.completed",
                "data": ["not", "an", "object"],
            }
        ).encode(),
    ),
]


def _application_event(message: str) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "argocd",
            "annotations": {"dest-server": "https://kubernetes.default.svc"},
        },
        "involvedObject": {
            "kind": "Application",
            "namespace": "argocd",
            "name": "edge-gateway",
            "apiVersion": "argoproj.io/v1alpha1",
        },
        "reason": "OperationCompleted",
        "message": message,
        "source": {"component": "argocd-application-controller"},
        "type": "Warning",
    }


def _pod_event(reason: Any, message: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "billing"},
        "involvedObject": {"kind": "Pod", "namespace": "billing", "name": "payments-7d9f-abcde"},
        "reason": reason,
        "message": message,
        "source": {"component": "kubelet"},
        "type": "Warning",
    }


def _feed(fake: FakeKube, *, seconds: float, stop: threading.Event) -> threading.Thread:
    """Play ROLLOUTS rollouts (each its STEPS, a noise Event between steps) over about `seconds`,
    with the cluster's bad Events among them."""
    oddities = {
        ROLLOUTS // 4: _application_event(NUL_MESSAGE),
        ROLLOUTS // 2: _pod_event("Unhealthy", "Liveness probe failed: " + "x" * 1_100_000),
        3 * ROLLOUTS // 4: _pod_event(["Unhealthy"], {"text": "not a string"}),
    }
    pause = seconds / (ROLLOUTS * len(STEPS))

    def run() -> None:
        for i in range(ROLLOUTS):
            involved = {
                "kind": "Rollout",
                "namespace": "billing",
                "name": f"svc-{i}",
                "uid": str(uuid.uuid4()),
                "apiVersion": "argoproj.io/v1alpha1",
            }
            for step, (reason, message) in enumerate(STEPS):
                event = rollout_event(reason, message, involved=involved)
                event["metadata"] = {"namespace": "billing"}  # the API server names it
                if i == ROLLOUTS // 3 and step == 1:
                    event["lastTimestamp"] = "not a time"
                fake.apply("ADDED", event)
                fake.apply("ADDED", _pod_event("Pulled", f"Successfully pulled image for svc-{i}"))
                if stop.wait(pause):
                    return
            if i in oddities:
                fake.apply("ADDED", oddities[i])

    thread = threading.Thread(target=run, name="feed", daemon=True)
    thread.start()
    return thread


def _foreign_raw_record() -> RawRecord:
    """A raw record another producer wrote: a core/v1 Event whose `lastTimestamp` is not a time."""
    event = rollout_event(
        "RolloutCompleted",
        "Rollout completed update to revision 3 (7a9c8d6e4): Completed all steps",
        involved={**ROLLOUT, "name": "foreign", "uid": str(uuid.uuid4())},
        last_timestamp="last Tuesday",
    )
    return RawRecord(CLUSTER, WatchType.ADDED, "2026-08-20T09:20:00Z", event)


def _expected(fake: FakeKube, *extra: RawRecord) -> dict[tuple[str, int], str]:
    """(Event uid, occurrence) -> domain event type, for every core/v1 Event the cluster holds
    (what is not one the collector sets aside) and the `extra` records, by the pure interpreter
    the processors run (each Event is one occurrence; there are no aborts)."""
    expected = {}
    records = [
        RawRecord(CLUSTER, WatchType.ADDED, "2026-08-20T09:00:00Z", event)
        for event in fake.events()
        if event_problem(event) is None
    ]
    for record in [*records, *extra]:
        for domain in interpret(record, last_n=None).events:
            data = domain.data
            expected[(data["source_event_uid"], data["source_event_count"])] = domain.type
    return expected


class _DeadLetters:
    """Everything the dead-letter topic holds, by key: the stages that set each record aside."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"test-dead-letters-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        self._consumer.subscribe([topic])
        self.stages: dict[bytes | None, list[str]] = {}

    def read(self) -> dict[bytes | None, list[str]]:
        for message in self._consumer.consume(num_messages=1000, timeout=0.5):
            if message.error() is None:
                headers = dict(message.headers() or [])
                stage = (headers.get("herald.stage") or b"").decode()
                self.stages.setdefault(message.key(), []).append(stage)
        return self.stages

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[dict[str, Any]]:
    pid, bootstrap, home = infra.start_kafka(tmp_path / "kafka")
    broker = {"pid": pid, "bootstrap": bootstrap, "home": home}
    yield broker
    infra.stop_kafka(broker["pid"])


@pytest.fixture
def private_postgres() -> Iterator[tuple[str, str]]:
    _, url, home = infra.start_postgres()
    yield url, home
    infra.pg_ctl(home, "stop")
    shutil.rmtree(home, ignore_errors=True)


def _subscribe(url: str, receiver_url: str, event_types: tuple[str, ...] = ()) -> None:
    store = Store.open(url)
    try:
        store.migrate()
        store.subscriptions.create(
            url=receiver_url,
            secrets=[WEBHOOK_SECRET],
            filter=SubscriptionFilter(event_types=event_types),
            ordered=True,
        )
    finally:
        store.close()


def _deliveries(url: str) -> tuple[dict[str, int], int, int]:
    """(deliveries by status, rows, distinct (event, subscription) pairs); ({}, -1, -1) while the
    database is away."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            by_status = dict(
                conn.execute("SELECT status, count(*) FROM deliveries GROUP BY 1").fetchall()
            )
            row = conn.execute(
                "SELECT count(*), count(DISTINCT (event_id, subscription_id)) FROM deliveries"
            ).fetchone()
    except psycopg.OperationalError:
        return {}, -1, -1
    assert row is not None
    return by_status, row[0], row[1]


@pytest.mark.timeout(600)
def test_the_pipeline_loses_nothing_and_never_stops_under_bad_records_kills_and_restarts(
    private_kafka: dict[str, Any],
    private_postgres: tuple[str, str],
    fake_kube: FakeKube,
    kubeconfig: Path,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("HERALD_FAULT_SEED") or random.randrange(1_000_000))
    print(f"HERALD_FAULT_SEED={seed}")
    rng = random.Random(seed)
    bootstrap = private_kafka["bootstrap"]
    database_url, postgres_home = private_postgres
    suffix = uuid.uuid4().hex[:8]
    topics = Topics(
        raw=f"pipeline.{suffix}.raw",
        domain=f"pipeline.{suffix}.domain",
        dead_letters=f"pipeline.{suffix}.dead",
        checkpoints=f"pipeline.{suffix}.checkpoints",
    )
    infra.create_topics(bootstrap, topics.env(), partitions=3)
    every, completed = Receiver(secret=WEBHOOK_SECRET), Receiver(secret=WEBHOOK_SECRET)
    every.serve()
    completed.serve()
    _subscribe(database_url, every.url)
    _subscribe(database_url, completed.url, ("rollout.completed",))
    env = {
        **topics.env(),
        "HERALD_KAFKA_BOOTSTRAP": bootstrap,
        "HERALD_DATABASE_URL": database_url,
        "HERALD_LOG_FORMAT": "text",
        # collector
        "HERALD_CLUSTER_NAME": CLUSTER,
        "HERALD_KUBECONFIG": str(kubeconfig),
        "HERALD_CHECKPOINT_INTERVAL_S": "0.2",
        "HERALD_WATCH_TIMEOUT_S": "5",
        "HERALD_READ_TIMEOUT_S": "5",
        "HERALD_CONNECT_TIMEOUT_S": "1",
        "HERALD_BACKOFF_BASE_S": "0.1",
        "HERALD_BACKOFF_MAX_S": "2",
        # processor
        "HERALD_PROCESSOR_APP_ID": f"pipeline-processors-{suffix}",
        "HERALD_PROCESSOR_DATA_DIR": str(tmp_path / "processor-data"),
        "HERALD_PROCESSOR_SESSION_TIMEOUT_S": "6",
        "HERALD_PROCESSOR_COMMIT_STALL_S": "8",
        "HERALD_PROCESSOR_RECOVERY_STALL_S": "30",
        # dispatcher
        "HERALD_DISPATCHER_GROUP_ID": f"pipeline-dispatchers-{suffix}",
        "HERALD_DISPATCHER_SESSION_TIMEOUT_S": "6",  # as the processor's: a killed one's share moves
        "HERALD_ALLOW_PRIVATE_NETWORKS": "true",  # the receivers listen on 127.0.0.1
        "HERALD_DISPATCHER_WORKERS": "4",
        "HERALD_DISPATCHER_LEASE_S": "4",
        "HERALD_HTTP_TOTAL_TIMEOUT_S": "2",
        "HERALD_RETRY_SCHEDULE_S": "0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1",
        "HERALD_RETRY_JITTER": "0",
    }
    running = {
        module: services(module, env) for module in ("collectors", "processors", "dispatchers")
    }
    stop_feed = threading.Event()
    dead_letters: _DeadLetters | None = None

    def restart(module: str) -> None:
        running[module].kill()
        running[module] = services(module, env)

    def restart_kafka() -> None:
        infra.stop_kafka(private_kafka["pid"])
        _pause(rng, 2, 5)
        private_kafka["pid"] = infra.launch_kafka(Path(private_kafka["home"]), bootstrap)

    def restart_postgres() -> None:
        infra.pg_ctl(postgres_home, "stop")
        _pause(rng, 2, 5)
        infra.pg_ctl(postgres_home, "start")

    faults: dict[str, Callable[[], None]] = {
        "kill -9 collector": lambda: restart("collectors"),
        "kill -9 processor": lambda: restart("processors"),
        "kill -9 dispatcher": lambda: restart("dispatchers"),
        "restart Kafka": restart_kafka,
        "restart Postgres": restart_postgres,
    }
    order = list(faults)
    rng.shuffle(order)
    try:
        feeding = _feed(fake_kube, seconds=40, stop=stop_feed)
        foreign = _foreign_raw_record()
        produce(
            bootstrap,
            topics.raw,
            [*BAD_RAW[:2], (foreign.key.encode(), encode_raw_record(foreign))],
        )
        produce(bootstrap, topics.domain, BAD_DOMAIN[:1])
        for number, fault in enumerate(order):
            _pause(rng, 3, 8)
            print(f"{time.strftime('%H:%M:%S')} fault: {fault}")
            faults[fault]()
            if number == 2:
                produce(bootstrap, topics.raw, BAD_RAW[2:])
                produce(bootstrap, topics.domain, BAD_DOMAIN[1:])
        feeding.join(timeout=120)
        assert not feeding.is_alive(), "the feed did not finish"

        expected = _expected(fake_kube, foreign)
        # The rollouts' steps but the one set aside, the NUL failure, the foreign record.
        assert len(expected) == ROLLOUTS * len(STEPS) + 1
        wanted_completed = {k for k, t in expected.items() if t == "dev.herald.rollout.completed"}

        def arrived(receiver: Receiver) -> Counter[tuple[str, int]]:
            return Counter(
                (r.event["data"]["source_event_uid"], r.event["data"]["source_event_count"])
                for r in list(receiver.received)
                if r.verified
            )

        def everything_arrived() -> bool:
            return set(arrived(every)) >= set(expected) and set(arrived(completed)) >= (
                wanted_completed
            )

        if not wait_until_or_false(everything_arrived, timeout_s=240):
            missing = set(expected) - set(arrived(every))
            pytest.fail(
                f"seed {seed}: {len(missing)} of {len(expected)} events never arrived, e.g."
                f" {[expected[m] for m in sorted(missing)[:5]]}; deliveries"
                f" {_deliveries(database_url)}"
            )
        assert all(r.verified for r in [*every.received, *completed.received]), [
            r.reason for r in every.received if not r.verified
        ]
        assert set(arrived(every)) == set(expected)  # nothing invented
        assert set(arrived(completed)) == wanted_completed  # the filter held
        # Repeats (kill -9 mid-send, redelivery) carry the same webhook-id as the first send.
        ids = {
            (r.event["data"]["source_event_uid"], r.headers["webhook-id"]) for r in every.received
        }
        assert len(ids) == len(expected)
        nul = next(
            r
            for r in every.received
            if r.event["data"].get("source_reason") == "OperationCompleted"
        )
        assert "\u0000" in nul.event["data"]["source_message"]  # sent as read: `\u0000` in JSON
        [late] = {r.body: r for r in every.received if r.event["subject"] == "foreign"}.values()
        assert late.event["time"] == late.event["data"]["observed_at"] == "2026-08-20T09:14:27Z"

        total = len(expected) + len(wanted_completed)
        summary = wait_until(
            lambda: (s := _deliveries(database_url))[0] == {"delivered": total} and s,
            timeout_s=60,
        )
        assert summary[1] == summary[2] == total  # one delivery row per (event, subscription)

        dead_letters = _DeadLetters(bootstrap, topics.dead_letters)
        stages = wait_until(
            lambda: (s := dead_letters.read()).keys() >= {k for k, _ in BAD_RAW + BAD_DOMAIN} and s,
            timeout_s=60,
        )
        for key, _ in BAD_RAW:
            assert set(stages[key]) == {"processors"}, (key, stages[key])
        for key, _ in BAD_DOMAIN:
            assert set(stages[key]) == {"dispatchers"}, (key, stages[key])
        for module, process in running.items():
            assert process.alive, f"{module} stopped by itself:\n{process.log_tail()}"
    finally:
        stop_feed.set()
        if dead_letters is not None:
            dead_letters.close()
        for process in running.values():
            process.stop()
        every.stop()
        completed.stop()


def wait_until_or_false(condition: Callable[[], bool], *, timeout_s: float) -> bool:
    try:
        wait_until(condition, timeout_s=timeout_s, interval_s=0.5)
    except AssertionError:
        return False
    return True


def _pause(rng: random.Random, low_s: float, high_s: float) -> None:
    """A random moment between faults (not a wait for an effect: the schedule itself)."""
    threading.Event().wait(rng.uniform(low_s, high_s))
