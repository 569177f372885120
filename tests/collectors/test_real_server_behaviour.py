"""`python -m collectors` against what a real kube-apiserver does and a simulation used not to: no
bookmarks for Events (a quiet watch carries nothing until its server-side timeout), an etcd wiped or
restored behind the same URL (resourceVersions start again below the checkpoint, and a watch from
the checkpoint waits silently), 403s while RBAC warms up after a restart. The simulated cluster runs
in its quiet mode (`FakeKube(bookmarks=False)`), with the default read timeout."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from herald_dev import infra
from herald_dev.fakekube import FakeKube
from herald_dev.processes import ServiceProcess
from tests.conftest import Topics
from tests.support import TopicReader, http_get, rollout_event, wait_until

WATCH_TIMEOUT_S = 3


@pytest.fixture
def raw(kafka: str, topics: Topics) -> Iterator[TopicReader]:
    reader = TopicReader(kafka, topics.raw)
    yield reader
    reader.close()


@pytest.fixture
def checkpoints(kafka: str, topics: Topics) -> Iterator[TopicReader]:
    reader = TopicReader(kafka, topics.checkpoints)
    yield reader
    reader.close()


def _collector(
    services: Callable[..., ServiceProcess], topics: Topics, kubeconfig: Path, **extra: str
) -> tuple[ServiceProcess, int]:
    port = infra.free_port()
    process = services(
        "collectors",
        {
            **topics.env(),
            "HERALD_CLUSTER_NAME": "prod-eu",
            "HERALD_KUBECONFIG": str(kubeconfig),
            "HERALD_WATCH_TIMEOUT_S": str(WATCH_TIMEOUT_S),  # HERALD_READ_TIMEOUT_S: the default
            "HERALD_CHECKPOINT_INTERVAL_S": "0.2",
            "HERALD_BACKOFF_BASE_S": "0.1",
            "HERALD_BACKOFF_MAX_S": "1",
            "HERALD_METRICS_PORT": str(port),
            **extra,
        },
    )
    return process, port


def _add(fake: FakeKube, message: str, *, namespace: str = "billing") -> dict[str, Any]:
    event = rollout_event("RolloutStepCompleted", message)
    event["metadata"]["namespace"] = namespace
    return fake.apply("ADDED", event)


def _uids(values: list[dict[str, Any]]) -> list[str]:
    return [v["object"]["metadata"]["uid"] for v in values]


def _metric(port: int, name: str, **labels: str) -> float | None:
    """A sample's value from /metrics, or None if there is none with these labels."""
    text = http_get(port, "/metrics")[1]
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            return float(match.group(2))
    return None


def _logged(collector: ServiceProcess, *, level: str) -> list[str]:
    """The collector's own log messages (not librdkafka's) at this level (JSON lines)."""
    messages = []
    for line in collector.log_path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(entry, dict)
            and entry.get("level") == level
            and not str(entry.get("logger", "")).startswith("collectors.librdkafka")
        ):
            messages.append(str(entry.get("message")))
    return messages


def _saved_positions(values: list[dict[str, Any]]) -> list[str]:
    """The resourceVersions of the checkpoint records read, in order."""
    return [v["resource_version"] for v in values]


def test_a_quiet_watch_ends_cleanly_keeps_the_collector_ready_and_moves_its_checkpoint(
    quiet_kube: FakeKube,
    quiet_kubeconfig: Path,
    topics: Topics,
    raw: TopicReader,
    checkpoints: TopicReader,
    services: Callable[..., ServiceProcess],
) -> None:
    first = _add(quiet_kube, "before")
    collector, port = _collector(
        services, topics, quiet_kubeconfig, HERALD_WATCH_NAMESPACE="billing"
    )
    assert raw.read_until(lambda v: len(v) == 1, timeout_s=60)
    for i in range(3):
        _add(quiet_kube, f"elsewhere {i}", namespace="shop")  # not watched: billing stays quiet
    # Several quiet watches: each ends at the server's timeout, cleanly. Ready all along, in
    # contact at each end, and the checkpoint moves to the server's version (4).
    deadline = time.monotonic() + 4 * WATCH_TIMEOUT_S
    while time.monotonic() < deadline:
        assert http_get(port, "/readyz")[0] == 200
        age = _metric(port, "herald_collector_seconds_since_contact", cluster="prod-eu")
        assert age is not None
        assert age < WATCH_TIMEOUT_S + 2
        time.sleep(0.5)
    assert checkpoints.read_until(lambda v: "4" in _saved_positions(v), timeout_s=10)
    assert _metric(port, "herald_collector_watch_restarts_total", cluster="prod-eu") is None
    # A compaction after the quiet spell: the watch resumes from 4, no relist.
    quiet_kube.compact()
    second = _add(quiet_kube, "after the compaction")
    assert raw.read_until(lambda v: len(v) >= 2, timeout_s=30)
    raw.read_until(lambda v: False, timeout_s=WATCH_TIMEOUT_S)  # a relist would repeat "before"
    assert _uids(raw.values) == [first["metadata"]["uid"], second["metadata"]["uid"]]
    assert _metric(port, "herald_collector_relists_total", cause="expired") == 0
    assert _logged(collector, level="warning") == []
    assert collector.stop() == 0


def test_an_etcd_wiped_behind_the_same_url_is_relisted_and_what_it_holds_is_published(
    quiet_kube: FakeKube,
    quiet_kubeconfig: Path,
    topics: Topics,
    raw: TopicReader,
    checkpoints: TopicReader,
    services: Callable[..., ServiceProcess],
) -> None:
    for i in range(5):
        _add(quiet_kube, f"before {i}")
    collector, port = _collector(services, topics, quiet_kubeconfig)
    assert raw.read_until(lambda v: len(v) == 5, timeout_s=60)
    assert checkpoints.read_until(lambda v: "5" in _saved_positions(v), timeout_s=30)
    quiet_kube.reset()  # the server's versions start again from 0, below the checkpoint
    created = [_add(quiet_kube, f"after the wipe {i}") for i in range(2)]
    # The open watch from 5 carries nothing; the next one finds the server at 2, behind it.
    assert raw.read_until(
        lambda v: {e["metadata"]["uid"] for e in created} <= set(_uids(v)), timeout_s=30
    )
    assert _metric(port, "herald_collector_relists_total", cause="server_behind") == 1.0
    [warning] = _logged(collector, level="warning")
    assert "resourceVersion 2" in warning
    assert "position 5" in warning
    # The checkpoint moved back to the server's version, and the watch goes on from there.
    assert checkpoints.read_until(lambda v: _saved_positions(v)[-1] == "2", timeout_s=30)
    later = _add(quiet_kube, "later")
    assert raw.read_until(lambda v: later["metadata"]["uid"] in _uids(v), timeout_s=30)
    assert collector.stop() == 0


def test_a_collector_started_on_a_checkpoint_newer_than_its_server_publishes_what_it_holds(
    quiet_kube: FakeKube,
    quiet_kubeconfig: Path,
    topics: Topics,
    raw: TopicReader,
    checkpoints: TopicReader,
    services: Callable[..., ServiceProcess],
) -> None:
    for i in range(4):
        _add(quiet_kube, f"before {i}")
    collector, _ = _collector(services, topics, quiet_kubeconfig)
    assert raw.read_until(lambda v: len(v) == 4, timeout_s=60)
    assert collector.stop() == 0  # the last checkpoint (4) is written
    quiet_kube.reset(to=1)  # etcd restored from a backup taken at 1
    restored = _add(quiet_kube, "after the restore")  # resourceVersion 2
    _collector(services, topics, quiet_kubeconfig)
    assert raw.read_until(lambda v: restored["metadata"]["uid"] in _uids(v), timeout_s=30)
    # Relisted without skipping what the server holds at or below the old checkpoint: the Event
    # the backup kept, and the one created since.
    assert _uids(raw.values)[4:] == [
        e["metadata"]["uid"]
        for e in sorted(quiet_kube.events(), key=lambda e: e["metadata"]["name"])
    ]


def test_sigterm_is_not_an_api_error(
    quiet_kube: FakeKube,
    quiet_kubeconfig: Path,
    topics: Topics,
    raw: TopicReader,
    services: Callable[..., ServiceProcess],
) -> None:
    _add(quiet_kube, "one")
    collector, port = _collector(
        services, topics, quiet_kubeconfig, HERALD_WATCH_TIMEOUT_S="300"
    )  # the watch is open when SIGTERM comes
    assert raw.read_until(lambda v: len(v) == 1, timeout_s=60)
    wait_until(lambda: http_get(port, "/readyz")[0] == 200)
    assert collector.stop() == 0
    log = collector.log_path.read_text()
    assert "collector stopped" in log
    assert "API error" not in log
    assert _logged(collector, level="warning") == []


def test_403s_while_a_restarted_api_server_warms_up_are_not_reported_as_forbidden(
    quiet_kube: FakeKube,
    quiet_kubeconfig: Path,
    topics: Topics,
    raw: TopicReader,
    services: Callable[..., ServiceProcess],
) -> None:
    _add(quiet_kube, "before")
    collector, port = _collector(services, topics, quiet_kubeconfig)
    assert raw.read_until(lambda v: len(v) == 1, timeout_s=60)
    quiet_kube.restart(down_s=1, forbidden=2)
    after = _add(quiet_kube, "after the restart")
    assert raw.read_until(lambda v: after["metadata"]["uid"] in _uids(v), timeout_s=30)
    assert _metric(port, "herald_collector_watch_restarts_total", cause="forbidden_while_starting")
    assert _metric(port, "herald_collector_watch_restarts_total", cause="http_403") is None
    assert not any("Forbidden" in m for m in _logged(collector, level="warning"))
    assert any("RBAC warms up" in m for m in _logged(collector, level="info"))
    assert collector.stop() == 0
