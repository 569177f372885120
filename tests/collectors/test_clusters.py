"""Several clusters in one collector, driven by the cluster file: live reload, bad files, bad
kubeconfigs, health and metrics, and the replay command; `python -m collectors` as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from herald_dev import infra
from herald_dev.fakekube import FakeKube
from herald_dev.processes import ServiceProcess
from tests.collectors.test_collector_faults import FAST, add_events
from tests.conftest import Topics
from tests.support import TopicReader, http_get, rollout_event, wait_until


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[dict[str, tuple[FakeKube, Path]]]:
    fakes = {}
    for name in ("alpha", "beta", "gamma"):
        fake = FakeKube(bookmark_interval_s=0.5)
        fake.serve()
        fakes[name] = (fake, fake.write_kubeconfig(tmp_path / f"{name}.kubeconfig"))
    yield fakes
    for fake, _ in fakes.values():
        fake.stop()


def _start_collector(
    services: Callable[..., ServiceProcess],
    topics: Topics,
    cluster_file: Path,
    env: dict[str, str] | None = None,
) -> int:
    """`python -m collectors` on a cluster file; returns the port of its metrics and health."""
    port = infra.free_port()
    services(
        "collectors",
        {
            **topics.env(),
            **FAST,
            "HERALD_CLUSTERS_FILE": str(cluster_file),
            "HERALD_METRICS_PORT": str(port),
            **(env or {}),
        },
    )
    return port


def _write(path: Path, entries: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps({"clusters": entries}))  # JSON is YAML


def _clusters_in(values: list[dict[str, Any]]) -> set[str]:
    return {v["cluster"] for v in values}


def test_cluster_file_edits_apply_without_a_restart(
    clusters: dict[str, tuple[FakeKube, Path]],
    topics: Topics,
    kafka: str,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    (alpha, alpha_config), (beta, beta_config) = clusters["alpha"], clusters["beta"]
    add_events(alpha, 5, prefix="a")
    add_events(beta, 5, prefix="b")
    cluster_file = tmp_path / "clusters.yaml"
    _write(cluster_file, [{"name": "alpha", "kubeconfig": str(alpha_config)}])
    port = _start_collector(services, topics, cluster_file)
    reader = TopicReader(kafka, topics.raw)
    try:
        assert reader.read_until(lambda v: len(v) >= 5, timeout_s=30)
        assert _clusters_in(reader.values) == {"alpha"}

        _write(
            cluster_file,
            [
                {"name": "alpha", "kubeconfig": str(alpha_config)},
                {"name": "beta", "kubeconfig": str(beta_config)},
            ],
        )
        assert reader.read_until(lambda v: len(v) >= 10, timeout_s=30)  # beta added

        _write(
            cluster_file,
            [
                {"name": "alpha", "kubeconfig": str(alpha_config), "enabled": False},
                {"name": "beta", "kubeconfig": str(beta_config)},
            ],
        )
        wait_until(
            lambda: json.loads(http_get(port, "/readyz")[1])["clusters"] == ["beta"], timeout_s=30
        )
        add_events(alpha, 3, prefix="a-after-disable")  # alpha is no longer watched
        cluster_file.write_text("clusters: [")  # a broken edit: the previous configuration stays
        wait_until(
            lambda: "herald_collector_config_errors_total 1.0" in http_get(port, "/metrics")[1],
            timeout_s=30,
        )
        add_events(beta, 3, prefix="b-after-error")
        assert reader.read_until(
            lambda v: sum(1 for x in v if x["cluster"] == "beta") >= 8, timeout_s=30
        )
        assert sum(1 for x in reader.values if x["cluster"] == "alpha") == 5
        status, body = http_get(port, "/readyz")
        assert status == 200, body
        assert json.loads(body)["clusters"] == ["beta"]
    finally:
        reader.close()


def test_unreachable_and_misconfigured_clusters_show_in_the_metrics_and_the_collector_is_ready(
    clusters: dict[str, tuple[FakeKube, Path]],
    topics: Topics,
    kafka: str,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    """Readiness is not decided by the clusters: one that is down (or misconfigured) would
    otherwise stall every rollout of the collectors. It shows in the metrics, by cluster."""
    (alpha, alpha_config), (gamma, gamma_config) = clusters["alpha"], clusters["gamma"]
    beta, beta_config = clusters["beta"]
    beta.stop()  # an API server that is down: connection refused
    add_events(alpha, 4, prefix="a")
    add_events(gamma, 4, prefix="g")
    broken = tmp_path / "broken.kubeconfig"
    broken.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    cluster_file = tmp_path / "clusters.yaml"
    _write(
        cluster_file,
        [
            {"name": "alpha", "kubeconfig": str(alpha_config)},
            {"name": "down", "kubeconfig": str(beta_config)},
            {"name": "broken", "kubeconfig": str(broken)},
            {
                "name": "gamma",
                "kubeconfig": str(gamma_config),
                "namespaces": ["billing", "shop"],
                "exclude": {"reasons": ["ScalingReplicaSet"]},
            },
        ],
    )
    gamma.apply(
        "ADDED",
        rollout_event("ScalingReplicaSet", "Scaled up ReplicaSet x (revision 2) from 0 to 1"),
    )
    # The Event watch of a cluster that is down starts once its owner caches gave up waiting.
    port = _start_collector(services, topics, cluster_file, {"HERALD_OWNER_SYNC_TIMEOUT_S": "1"})
    reader = TopicReader(kafka, topics.raw)
    try:
        assert reader.read_until(lambda v: len(v) >= 8, timeout_s=30)
        assert _clusters_in(reader.values) == {"alpha", "gamma"}
        assert not any(v["object"]["reason"] == "ScalingReplicaSet" for v in reader.values)
        wait_until(
            lambda: (
                'herald_collector_watch_restarts_total{cause="config",cluster="broken"}'
                in (text := http_get(port, "/metrics")[1])
                and 'herald_collector_watch_restarts_total{cause="connection",cluster="down"}'
                in text
            ),
            timeout_s=30,
        )
        status, body = http_get(port, "/readyz")
        assert status == 200, body
        assert json.loads(body)["not_in_contact"] == ["broken/*", "down/*"]
        assert http_get(port, "/healthz")[0] == 200
        metrics = http_get(port, "/metrics")[1]
        assert (
            'herald_collector_events_published_total{cluster="gamma",watch_type="ADDED"} 4.0'
            in metrics
        )
        assert (
            'herald_collector_events_dropped_total{cluster="gamma",reason="filtered"} 1.0'
            in metrics
        )
        assert 'herald_collector_seconds_since_contact{cluster="alpha",scope="*"}' in metrics
        assert 'herald_collector_event_lag_seconds{cluster="gamma",scope="billing"}' in metrics
    finally:
        reader.close()


def test_replay_publishes_a_file_exactly_as_the_watcher_would(
    topics: Topics,
    kafka: str,
    infra_env: dict[str, str],
    tmp_path: Path,
) -> None:
    events = [
        rollout_event("RolloutResumed", "Rollout is resumed", count=2),
        rollout_event("RolloutPaused", "Rollout is paused (CanaryPauseStep)"),
    ]
    lines = [
        json.dumps(events[0]),
        json.dumps({**events[1], "_cluster": "staging", "_watch_type": "MODIFIED"}),
        "{oops",
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "collectors", "replay", str(path), "--cluster", "prod-eu"],
        env={**infra_env, **topics.env(), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1  # one line was unusable, and said so
    assert f"{path}:3: not JSON" in result.stderr
    assert "2 published" in result.stdout
    reader = TopicReader(kafka, topics.raw)
    try:
        assert reader.read_until(lambda v: len(v) >= 2, timeout_s=30)
    finally:
        reader.close()
    first, second = reader.values
    assert (first["cluster"], first["watch_type"]) == ("prod-eu", "ADDED")
    assert (second["cluster"], second["watch_type"]) == ("staging", "MODIFIED")
    assert "managedFields" not in first["object"]["metadata"]
    assert "_cluster" not in second["object"]
