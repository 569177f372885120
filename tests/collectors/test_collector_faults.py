"""Faults a collector must survive without losing an Event, each against the real broker and the
simulated API server, with `python -m collectors` as a real process. Every test counts: every Event
the simulated cluster holds must be in the raw topic, and duplicates must stay bounded."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from herald_dev import infra
from herald_dev.fakekube import FakeKube
from herald_dev.processes import ServiceProcess
from tests.conftest import Topics
from tests.support import TopicReader, http_get, occurrence, rollout_event, wait_until

FAST = {
    "HERALD_CHECKPOINT_INTERVAL_S": "0.2",
    "HERALD_WATCH_TIMEOUT_S": "5",
    "HERALD_READ_TIMEOUT_S": "5",
    "HERALD_CONNECT_TIMEOUT_S": "1",
    "HERALD_LIST_PAGE_SIZE": "100",
    "HERALD_CLUSTERS_RELOAD_S": "0.3",
    "HERALD_LOG_FORMAT": "text",
    "HERALD_BACKOFF_BASE_S": "0.1",
    "HERALD_BACKOFF_MAX_S": "1",
}


def add_events(fake: FakeKube, count: int, *, prefix: str = "e") -> list[dict[str, Any]]:
    return [
        fake.apply(
            "ADDED",
            rollout_event(
                "RolloutStepCompleted", f"{prefix} {i}", name=f"{prefix}-{uuid.uuid4().hex[:12]}"
            ),
        )
        for i in range(count)
    ]


def feed(fake: FakeKube, count: int, *, per_second: float, prefix: str = "fed") -> threading.Thread:
    """Add `count` Events in a background thread at about `per_second`."""

    def run() -> None:
        for i in range(count):
            add_events(fake, 1, prefix=f"{prefix}{i}")
            time.sleep(1 / per_second)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def held(fake: FakeKube) -> set[tuple[str, int]]:
    return {occurrence(e) for e in fake.events()}


def published(values: list[dict[str, Any]]) -> Counter[tuple[str, int]]:
    return Counter(occurrence(v["object"]) for v in values)


def all_published(fake: FakeKube) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda values: held(fake) <= set(published(values))


@pytest.fixture
def reader(kafka: str, topics: Topics) -> Iterator[TopicReader]:
    r = TopicReader(kafka, topics.raw)
    yield r
    r.close()


def _collector_env(topics: Topics, kubeconfig: Path, **extra: str) -> dict[str, str]:
    return {
        **topics.env(),
        **FAST,
        "HERALD_CLUSTER_NAME": "prod-eu",
        "HERALD_KUBECONFIG": str(kubeconfig),
        **extra,
    }


def test_kill_9_while_publishing_loses_nothing(
    fake_kube: FakeKube,
    kubeconfig: Path,
    topics: Topics,
    reader: TopicReader,
    services: Callable[..., ServiceProcess],
) -> None:
    add_events(fake_kube, 2000, prefix="listed")
    env = _collector_env(topics, kubeconfig)
    first = services("collectors", env)
    assert reader.read_until(lambda v: len(v) >= 2000, timeout_s=60)
    streaming = feed(fake_kube, 1500, per_second=1000)
    assert reader.read_until(lambda v: len(v) >= 2300, timeout_s=60)
    first.kill()  # kill -9, mid-stream
    streaming.join()
    services("collectors", env)
    assert reader.read_until(all_published(fake_kube), timeout_s=60)
    counts = published(reader.values)
    duplicates = sum(counts.values()) - len(counts)
    # At most what was published after the last checkpoint written before the kill (0.2 s apart)
    # plus what was in flight: far below the 3,500 Events, and no full relist.
    print(f"kill -9: {len(counts)} occurrences, {duplicates} duplicates")
    assert duplicates < 1000, duplicates


def test_kafka_down_for_12_seconds_loses_nothing_and_recovers_by_itself(
    fake_kube: FakeKube, kubeconfig: Path, services: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    state = tmp_path / "private-kafka"
    pid, bootstrap, home = infra.start_kafka(state)
    try:
        topics = Topics(
            raw="outage.raw",
            domain="outage.domain",
            dead_letters="outage.dead",
            checkpoints="outage.cp",
        )
        infra.create_topics(bootstrap, topics.env(), partitions=3)
        add_events(fake_kube, 200, prefix="before")
        services(
            "collectors",
            {**_collector_env(topics, kubeconfig), "HERALD_KAFKA_BOOTSTRAP": bootstrap},
        )
        reader = TopicReader(bootstrap, topics.raw)
        assert reader.read_until(lambda v: len(v) >= 200, timeout_s=60)
        reader.close()
        infra.stop_kafka(pid)
        # 12 s of Events while Kafka is away: past two watch timeouts and librdkafka's reconnect
        # backoff cap (10 s), with checkpoints refused throughout.
        feed(fake_kube, 300, per_second=25, prefix="during").join()
        pid = infra.launch_kafka(Path(home), bootstrap)
        add_events(fake_kube, 100, prefix="after")
        reader = TopicReader(bootstrap, topics.raw)
        try:
            assert reader.read_until(all_published(fake_kube), timeout_s=120)
            counts = published(reader.values)
            print(
                f"Kafka outage: {len(counts)} occurrences, {sum(counts.values()) - len(counts)} duplicates"
            )
            assert sum(counts.values()) - len(counts) <= 400  # at most the outage's Events twice
        finally:
            reader.close()
    finally:
        infra.stop_kafka(pid)


def test_api_server_restarts_and_errors_lose_nothing(
    fake_kube: FakeKube,
    kubeconfig: Path,
    topics: Topics,
    reader: TopicReader,
    services: Callable[..., ServiceProcess],
) -> None:
    add_events(fake_kube, 300, prefix="listed")
    services("collectors", _collector_env(topics, kubeconfig))
    assert reader.read_until(lambda v: len(v) >= 300, timeout_s=60)
    streaming = feed(fake_kube, 400, per_second=100)
    time.sleep(1)
    fake_kube.restart(down_s=2)  # API server restart mid-watch
    fake_kube.fail_next(500, count=2)
    fake_kube.fail_next(429, count=2)
    time.sleep(1)
    fake_kube.cut_watches()  # a stream cut without an error
    streaming.join()
    assert reader.read_until(all_published(fake_kube), timeout_s=60)
    counts = published(reader.values)
    assert sum(counts.values()) - len(counts) == 0  # resumed from the last version every time


def test_an_expired_checkpoint_relists_and_republishes_only_what_is_newer(
    fake_kube: FakeKube,
    kubeconfig: Path,
    topics: Topics,
    reader: TopicReader,
    services: Callable[..., ServiceProcess],
) -> None:
    add_events(fake_kube, 100, prefix="first")
    env = _collector_env(topics, kubeconfig)
    collector = services("collectors", env)
    assert reader.read_until(lambda v: len(v) >= 100, timeout_s=60)
    assert collector.stop() == 0  # SIGTERM: flush, then write the last checkpoint
    add_events(fake_kube, 50, prefix="while-stopped")
    fake_kube.compact()  # the checkpoint's resourceVersion is gone: the watch gets 410
    services("collectors", env)
    assert reader.read_until(all_published(fake_kube), timeout_s=60)
    time.sleep(1)
    reader.read_until(lambda v: False, timeout_s=1)
    counts = published(reader.values)
    assert sum(counts.values()) == 150  # the relist skipped the 100 already published


def _alive_and_live_for(collector: ServiceProcess, port: int, *, seconds: float) -> None:
    """Assert, for `seconds`, that the process stays up and /healthz answers 200."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert collector.alive, collector.log_tail()
        assert http_get(port, "/healthz")[0] == 200
        time.sleep(0.5)


def test_a_collector_started_while_kafka_is_down_waits_for_it_then_publishes(
    fake_kube: FakeKube, kubeconfig: Path, services: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    pid, bootstrap, home = infra.start_kafka(tmp_path / "private-kafka")
    try:
        topics = Topics(
            raw="late.raw", domain="late.domain", dead_letters="late.dead", checkpoints="late.cp"
        )
        # Not the checkpoint topic (its default name instead): the collector creates it, once
        # Kafka answers.
        infra.create_topics(
            bootstrap, {**topics.env(), "HERALD_CHECKPOINT_TOPIC": ""}, partitions=1
        )
        infra.stop_kafka(pid)
        add_events(fake_kube, 20, prefix="waiting")
        port = infra.free_port()
        collector = services(
            "collectors",
            {
                **_collector_env(topics, kubeconfig),
                "HERALD_KAFKA_BOOTSTRAP": bootstrap,
                "HERALD_METRICS_PORT": str(port),
            },
        )
        _, body = wait_until(
            lambda: (r := http_get(port, "/readyz"))[0] == 503 and "Kafka" in r[1] and r
        )
        assert "does not answer" in json.loads(body)["waiting_for"]
        _alive_and_live_for(collector, port, seconds=8)  # several attempts, each waited out
        pid = infra.launch_kafka(Path(home), bootstrap)
        reader = TopicReader(bootstrap, topics.raw)
        try:
            assert reader.read_until(all_published(fake_kube), timeout_s=60)
        finally:
            reader.close()
        wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout_s=30)
        assert "bad setting" not in collector.log_path.read_text()
        assert collector.stop() == 0
    finally:
        infra.stop_kafka(pid)


def test_a_kafka_outage_that_fills_the_producer_queue_stops_no_loop_and_loses_nothing(
    fake_kube: FakeKube, kubeconfig: Path, services: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    pid, bootstrap, home = infra.start_kafka(tmp_path / "private-kafka")
    try:
        topics = Topics(
            raw="full.raw", domain="full.domain", dead_letters="full.dead", checkpoints="full.cp"
        )
        infra.create_topics(bootstrap, topics.env(), partitions=1)
        cluster_file = tmp_path / "clusters.yaml"
        cluster_file.write_text(
            json.dumps(
                {
                    "clusters": [
                        {
                            "name": "prod-eu",
                            "kubeconfig": str(kubeconfig),
                            "namespaces": ["billing", "shop"],
                        }
                    ]
                }
            )
        )
        port = infra.free_port()
        collector = services(
            "collectors",
            {
                **topics.env(),
                **FAST,
                "HERALD_CLUSTERS_FILE": str(cluster_file),
                "HERALD_KAFKA_BOOTSTRAP": bootstrap,
                "HERALD_METRICS_PORT": str(port),
                "HERALD_KAFKA_QUEUE_MAX_MESSAGES": "5",
            },
        )
        add_events(fake_kube, 10, prefix="before")
        reader = TopicReader(bootstrap, topics.raw)
        assert reader.read_until(lambda v: len(v) >= 10, timeout_s=60)
        reader.close()
        infra.stop_kafka(pid)
        # Billing's records fill the producer's queue while shop's watch, idle, moves its checkpoint
        # with every bookmark: writing it finds the queue full.
        add_events(fake_kube, 30, prefix="during")
        wait_until(
            lambda: (
                not collector.alive
                or "cannot write checkpoints now" in collector.log_path.read_text()
            ),
            timeout_s=30,
        )
        _alive_and_live_for(collector, port, seconds=3)
        pid = infra.launch_kafka(Path(home), bootstrap)
        add_events(fake_kube, 5, prefix="after")
        reader = TopicReader(bootstrap, topics.raw)
        try:
            assert reader.read_until(all_published(fake_kube), timeout_s=120)
        finally:
            reader.close()
        assert collector.alive
        wait_until(lambda: "checkpoints written again" in collector.log_path.read_text())
        assert collector.stop() == 0
    finally:
        infra.stop_kafka(pid)
