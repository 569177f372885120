"""`python -m processors` as a real process around its lifetime: started while Kafka is down, probed
for readiness from its first moment, and stopped whatever state Faust is in (issue 9)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from herald_contracts import RawRecord, WatchType, encode_raw_record
from herald_dev import infra
from herald_dev.processes import ServiceProcess
from tests.conftest import Topics
from tests.support import consume, http_get, produce, rollout_event, wait_until


def _completed(name: str) -> tuple[bytes, bytes]:
    involved = {
        "kind": "Rollout",
        "namespace": "billing",
        "name": name,
        "uid": f"uid-{name}",
        "apiVersion": "argoproj.io/v1alpha1",
    }
    event = rollout_event(
        "RolloutCompleted",
        "Rollout completed update to revision 2 (6f8b9c7d5): Completed all 2 canary steps",
        involved=involved,
    )
    record = RawRecord(
        cluster="prod-eu",
        watch_type=WatchType.ADDED,
        collected_at="2026-08-20T09:16:54Z",
        object=event,
    )
    return record.key.encode(), encode_raw_record(record)


def _env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    return {
        "HERALD_PROCESSOR_APP_ID": f"lifecycle-{uuid.uuid4().hex[:8]}",
        "HERALD_PROCESSOR_DATA_DIR": str(tmp_path / f"data-{uuid.uuid4().hex[:6]}"),
        "HERALD_METRICS_PORT": str(port),
        **extra,
    }


@pytest.fixture
def stopped_broker(tmp_path: Path) -> Iterator[tuple[str, Path, list[int]]]:
    """A private broker, formatted and then stopped: (bootstrap, home, pids to stop at the end)."""
    pid, bootstrap, home = infra.start_kafka(tmp_path / "broker")
    infra.stop_kafka(pid)
    pids: list[int] = []
    try:
        yield bootstrap, Path(home), pids
    finally:
        for started in pids:
            infra.stop_kafka(started)


@pytest.mark.timeout(240)
def test_a_processor_started_before_kafka_waits_unready_then_processes(
    stopped_broker: tuple[str, Path, list[int]],
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    bootstrap, home, pids = stopped_broker
    suffix = uuid.uuid4().hex[:8]
    topics = Topics(
        raw=f"later.{suffix}.raw",
        domain=f"later.{suffix}.domain",
        dead_letters=f"later.{suffix}.dead",
        checkpoints=f"later.{suffix}.checkpoints",
    )
    port = infra.free_port()
    processor = services(
        "processors",
        {**topics.env(), **_env(tmp_path, port), "HERALD_KAFKA_BOOTSTRAP": bootstrap},
    )

    # Kafka down: alive (not a bad setting), live, not ready, and saying why.
    def waiting_for() -> str:
        status, body = http_get(port, "/readyz")
        return str(json.loads(body).get("waiting_for", "")) if status == 503 else ""

    wait_until(lambda: "does not answer" in waiting_for(), timeout_s=60)
    assert bootstrap in waiting_for()
    assert http_get(port, "/healthz")[0] == 200
    # Asked again later, it still waits, and is still there.
    wait_until(lambda: processor.log_tail(200).count("waiting for Kafka") >= 2, timeout_s=60)
    assert processor.alive
    assert http_get(port, "/healthz")[0] == 200

    pids.append(infra.launch_kafka(home, bootstrap))
    # Kafka up, the raw topic missing: still waiting, now for the topic, by name.
    wait_until(lambda: "must be created" in waiting_for(), timeout_s=60)
    assert topics.raw in waiting_for()

    infra.create_topics(bootstrap, topics.env(), partitions=3)
    produce(bootstrap, topics.raw, [_completed("payments")])
    [domain] = consume(bootstrap, topics.domain, count=1, timeout_s=90)
    assert json.loads(domain.value or b"")["type"] == "dev.herald.rollout.completed"
    wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout_s=30)
    assert "bad setting" not in processor.log_tail(200)


@pytest.mark.timeout(60)
def test_sigterm_while_waiting_for_kafka_ends_the_processor_at_once(
    services: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    port = infra.free_port()
    processor = services(
        "processors",
        {**_env(tmp_path, port), "HERALD_KAFKA_BOOTSTRAP": f"127.0.0.1:{infra.free_port()}"},
    )
    wait_until(lambda: "waiting_for" in http_get(port, "/readyz")[1], timeout_s=30)
    sent = time.monotonic()
    assert processor.stop(timeout_s=15) == 0
    assert time.monotonic() - sent < 10


def _probe_until(port: int, done: threading.Event) -> None:
    """What a Kubernetes readiness probe does, only more often."""
    while not done.is_set():
        http_get(port, "/readyz")
        time.sleep(0.01)


@pytest.mark.timeout(240)
def test_a_processor_probed_for_readiness_from_its_first_moment_becomes_ready(
    kafka: str, topics: Topics, services: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """Issue 9: a readiness probe that came before Faust bound its table manager to the worker's
    event loop left the worker waiting after `[^---Recovery]: Starting...` for good."""
    for start in range(3):
        port = infra.free_port()
        probing = threading.Event()
        prober = threading.Thread(target=_probe_until, args=(port, probing))
        prober.start()
        try:
            processor = services("processors", {**topics.env(), **_env(tmp_path, port)})
            wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout_s=60)  # noqa: B023
        finally:
            probing.set()
            prober.join()
        assert processor.stop() == 0, f"start {start + 1}"


@pytest.mark.timeout(240)
def test_sigterm_ends_a_processor_whose_broker_froze_within_the_stop_timeout(
    services: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """A broker that stops answering (SIGSTOP: connections open, nothing said) leaves Faust's clean
    stop waiting on requests; the stop timeout ends the process anyway."""
    pid, bootstrap, _ = infra.start_kafka(tmp_path / "broker")
    frozen = False
    try:
        suffix = uuid.uuid4().hex[:8]
        topics = Topics(
            raw=f"frozen.{suffix}.raw",
            domain=f"frozen.{suffix}.domain",
            dead_letters=f"frozen.{suffix}.dead",
            checkpoints=f"frozen.{suffix}.checkpoints",
        )
        infra.create_topics(bootstrap, topics.env(), partitions=3)
        port = infra.free_port()
        processor = services(
            "processors",
            {
                **topics.env(),
                **_env(tmp_path, port, HERALD_PROCESSOR_STOP_TIMEOUT_S="5"),
                "HERALD_KAFKA_BOOTSTRAP": bootstrap,
            },
        )
        produce(bootstrap, topics.raw, [_completed("payments")])
        consume(bootstrap, topics.domain, count=1, timeout_s=90)
        wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout_s=30)
        os.kill(pid, signal.SIGSTOP)
        frozen = True
        sent = time.monotonic()
        code = processor.stop(timeout_s=60)
        took = time.monotonic() - sent
        assert took < 15, (code, took, processor.log_tail(30))
        assert code is not None
    finally:
        if frozen:
            os.kill(pid, signal.SIGCONT)
        infra.stop_kafka(pid)


@pytest.mark.timeout(300)
def test_a_worker_left_recovering_restarts_itself_then_processes_once_kafka_answers(
    services: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """The broker stops answering (SIGSTOP) just as Faust starts recovering its tables: the worker
    stays unready, the watchdog thread restarts it in place after the recovery-stall limit, and the
    new process waits for Kafka and processes once the broker answers again."""
    pid, bootstrap, _ = infra.start_kafka(tmp_path / "broker")
    frozen = False
    try:
        suffix = uuid.uuid4().hex[:8]
        topics = Topics(
            raw=f"stuck.{suffix}.raw",
            domain=f"stuck.{suffix}.domain",
            dead_letters=f"stuck.{suffix}.dead",
            checkpoints=f"stuck.{suffix}.checkpoints",
        )
        infra.create_topics(bootstrap, topics.env(), partitions=3)
        produce(bootstrap, topics.raw, [_completed("payments")])
        port = infra.free_port()
        processor = services(
            "processors",
            {
                **topics.env(),
                **_env(tmp_path, port, HERALD_PROCESSOR_RECOVERY_STALL_S="10"),
                "HERALD_KAFKA_BOOTSTRAP": bootstrap,
            },
        )
        wait_until(
            lambda: "[^---Recovery]: Starting" in processor.log_tail(200),
            timeout_s=60,
            interval_s=0.01,
        )
        os.kill(pid, signal.SIGSTOP)
        frozen = True
        assert http_get(port, "/readyz")[0] != 200
        wait_until(
            lambda: "restarting the worker in place" in processor.log_tail(400), timeout_s=60
        )
        assert processor.alive
        os.kill(pid, signal.SIGCONT)
        frozen = False
        [domain] = consume(bootstrap, topics.domain, count=1, timeout_s=120)
        assert json.loads(domain.value or b"")["type"] == "dev.herald.rollout.completed"
        wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout_s=60)
        # Stopped while its broker still answers (after it, the stop would wait out its timeout).
        assert processor.stop() == 0
    finally:
        if frozen:
            os.kill(pid, signal.SIGCONT)
        infra.stop_kafka(pid)
