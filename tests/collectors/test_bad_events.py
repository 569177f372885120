"""Events a collector cannot publish as they are, against the real broker (default 1 MB record limit)
and the simulated API server, with `python -m collectors` as a real process: an Event bigger than a
Kafka record (a kubelet probe failure quoting a megabyte of output), one too big even with its
message shortened, and objects that are not core/v1 Events. Each is handled once; the Events around
it are published within seconds; nothing loops."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from herald_dev import infra
from herald_dev.fakekube import FakeKube
from herald_dev.processes import ServiceProcess
from tests.collectors.test_collector_faults import FAST
from tests.conftest import Topics
from tests.support import TopicReader, http_get, rollout_event, wait_until

PROBE_OUTPUT = "".join(
    f"{i:07d} GET /healthz 500: upstream connect error or disconnect/reset before headers\n"
    for i in range(14_000)
)  # about 1.2 MB
MARKER = re.compile(r" \[shortened by Herald from (\d+) bytes\]$")


def unhealthy_event(message: str, **extra: Any) -> dict[str, Any]:
    """A kubelet `Unhealthy` Event about a Pod, created without eventTime (no message limit)."""
    event = rollout_event(
        "Unhealthy",
        message,
        component="kubelet",
        reporting="kubelet",
        involved={"kind": "Pod", "namespace": "billing", "name": "payments-7c9d", "uid": "p1"},
    )
    event["type"] = "Warning"
    event.update(extra)
    return event


def big_and_around(fake: FakeKube, big: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """A RolloutAborted, the big Event, a RolloutCompleted, all in namespace billing."""
    aborted = fake.apply(
        "ADDED", rollout_event("RolloutAborted", "Rollout aborted update to revision 3")
    )
    stored = fake.apply("ADDED", big)
    completed = fake.apply(
        "ADDED",
        rollout_event("RolloutCompleted", "Rollout completed update to revision 4 (6f8d5): done"),
    )
    return aborted, stored, completed


def uids(values: list[dict[str, Any]]) -> list[str]:
    return [v["object"]["metadata"]["uid"] for v in values]


def metric(port: int, name: str, **labels: str) -> float:
    """A counter's value from /metrics (0 when absent)."""
    _, text = http_get(port, "/metrics")
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    series = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(series):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def reader(kafka: str, topics: Topics) -> Iterator[TopicReader]:
    r = TopicReader(kafka, topics.raw)
    yield r
    r.close()


def _start(
    services: Callable[..., ServiceProcess], topics: Topics, kubeconfig: Path
) -> tuple[ServiceProcess, int]:
    port = infra.free_port()
    process = services(
        "collectors",
        {
            **topics.env(),
            **FAST,
            "HERALD_CLUSTER_NAME": "prod-eu",
            "HERALD_KUBECONFIG": str(kubeconfig),
            "HERALD_METRICS_PORT": str(port),
        },
    )
    return process, port


def test_an_event_bigger_than_a_kafka_record_is_published_shortened_between_its_neighbours(
    fake_kube: FakeKube,
    kubeconfig: Path,
    topics: Topics,
    reader: TopicReader,
    services: Callable[..., ServiceProcess],
) -> None:
    collector, port = _start(services, topics, kubeconfig)
    wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout_s=30)
    message = f"Liveness probe failed: {PROBE_OUTPUT}"
    aborted, big, completed = big_and_around(fake_kube, unhealthy_event(message))

    assert reader.read_until(lambda v: completed["metadata"]["uid"] in uids(v), timeout_s=15)
    reader.read_until(lambda v: False, timeout_s=2)  # a repeat would come now
    published = uids(reader.values)
    assert published.count(aborted["metadata"]["uid"]) == 1
    assert published.count(completed["metadata"]["uid"]) == 1
    assert published.count(big["metadata"]["uid"]) == 1
    [record] = [
        v for v in reader.values if v["object"]["metadata"]["uid"] == big["metadata"]["uid"]
    ]
    shortened = record["object"]["message"]
    original_bytes = len(message.encode())
    assert shortened.startswith("Liveness probe failed: 0000000 GET /healthz 500")
    assert message.startswith(MARKER.sub("", shortened))
    marked = MARKER.search(shortened)
    assert marked is not None
    assert marked.group(1) == str(original_bytes)
    assert len(shortened.encode()) <= 65_536
    annotations = record["object"]["metadata"]["annotations"]
    assert annotations["herald.dev/original-message-bytes"] == str(original_bytes)
    assert metric(port, "herald_collector_messages_shortened_total", cluster="prod-eu") == 1
    restarts = metric(
        port, "herald_collector_watch_restarts_total", cluster="prod-eu", cause="publish_failed"
    )
    assert restarts == 0
    assert collector.alive


def test_an_event_too_big_even_shortened_is_set_aside_once_and_the_checkpoint_moves_past_it(
    fake_kube: FakeKube,
    kubeconfig: Path,
    topics: Topics,
    reader: TopicReader,
    kafka: str,
    services: Callable[..., ServiceProcess],
) -> None:
    collector, port = _start(services, topics, kubeconfig)
    wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout_s=30)
    huge = unhealthy_event("Liveness probe failed: timeout")
    huge["metadata"]["annotations"] = {"example.com/probe-dump": PROBE_OUTPUT}
    aborted, big, completed = big_and_around(fake_kube, huge)

    assert reader.read_until(lambda v: completed["metadata"]["uid"] in uids(v), timeout_s=15)
    reader.read_until(lambda v: False, timeout_s=2)
    assert big["metadata"]["uid"] not in uids(reader.values)
    assert uids(reader.values).count(aborted["metadata"]["uid"]) == 1
    set_aside = metric(
        port, "herald_collector_events_set_aside_total", cluster="prod-eu", reason="too_large"
    )
    assert set_aside == 1
    restarts = metric(
        port, "herald_collector_watch_restarts_total", cluster="prod-eu", cause="publish_failed"
    )
    assert restarts == 0
    # The checkpoint moved past it: a restarted collector does not meet it again.
    past = int(completed["metadata"]["resourceVersion"])
    checkpoints = TopicReader(kafka, topics.checkpoints)
    try:
        assert checkpoints.read_until(
            lambda v: any(int(c["resource_version"]) >= past for c in v), timeout_s=15
        )
    finally:
        checkpoints.close()
    assert collector.stop() == 0
    logged = [
        line
        for line in collector.log_path.read_text().splitlines()
        if big["metadata"]["uid"] in line
    ]
    assert len(logged) == 1, logged
    assert "set aside Event prod-eu/billing/" in logged[0]
    assert "bytes" in logged[0]


def test_objects_that_are_not_core_v1_events_are_set_aside_and_the_stream_goes_on(
    fake_kube: FakeKube,
    kubeconfig: Path,
    topics: Topics,
    reader: TopicReader,
    services: Callable[..., ServiceProcess],
) -> None:
    collector, port = _start(services, topics, kubeconfig)
    wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout_s=30)
    before = fake_kube.apply("ADDED", rollout_event("RolloutPaused", "Rollout is paused (x)"))
    fake_kube.apply("ADDED", {**rollout_event("RolloutResumed", "m"), "reason": 42})
    fake_kube.apply("ADDED", {**rollout_event("RolloutResumed", "m"), "lastTimestamp": "soon"})
    after = fake_kube.apply("ADDED", rollout_event("RolloutResumed", "Rollout is resumed"))
    assert reader.read_until(lambda v: after["metadata"]["uid"] in uids(v), timeout_s=15)
    reader.read_until(lambda v: False, timeout_s=1)
    assert uids(reader.values) == [before["metadata"]["uid"], after["metadata"]["uid"]]
    assert (
        metric(
            port,
            "herald_collector_events_set_aside_total",
            cluster="prod-eu",
            reason="not_an_event",
        )
        == 2
    )
    assert collector.alive
    text = collector.log_path.read_text()
    assert text.count("that is not a core/v1 Event (reason is a number, not a string)") == 1
    assert text.count("lastTimestamp must be an RFC 3339 date-time, not 'soon'") == 1


def test_replay_of_a_file_with_an_oversized_event_publishes_the_others_and_names_its_line(
    topics: Topics, kafka: str, infra_env: dict[str, str], reader: TopicReader, tmp_path: Path
) -> None:
    huge = unhealthy_event("Liveness probe failed: timeout")
    huge["metadata"]["annotations"] = {"example.com/probe-dump": PROBE_OUTPUT}
    lines = [
        rollout_event("RolloutAborted", "Rollout aborted update to revision 3"),
        unhealthy_event(f"Liveness probe failed: {PROBE_OUTPUT}"),
        huge,
        {**rollout_event("RolloutResumed", "m"), "firstTimestamp": 1700000000},
        rollout_event("RolloutCompleted", "Rollout completed update to revision 4 (6f8d5): done"),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = subprocess.run(
        [sys.executable, "-m", "collectors", "replay", str(path), "--cluster", "prod-eu"],
        env={**infra_env, **topics.env(), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1
    assert f"{path}:2: message shortened from" in result.stderr
    assert re.search(
        rf"{re.escape(str(path))}:3: not published: the record takes \d+ bytes", result.stderr
    )
    assert (
        f"{path}:4: not a core/v1 Event: firstTimestamp must be an RFC 3339 date-time"
        in result.stderr
    )
    assert "3 published (1 shortened)" in result.stdout
    assert reader.read_until(lambda v: len(v) >= 3, timeout_s=30)
    reader.read_until(lambda v: False, timeout_s=1)
    # Different objects, so different partitions: no order across them to compare.
    assert sorted(v["object"]["reason"] for v in reader.values) == [
        "RolloutAborted",
        "RolloutCompleted",
        "Unhealthy",
    ]
