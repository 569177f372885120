"""Events a collector cannot publish as they are, against the real broker and the simulated API server,
with `python -m collectors` as a real process: objects that are not core/v1 Events. Each is handled
once; the Events around it are published within seconds; nothing loops."""

from __future__ import annotations

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
