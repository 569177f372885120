"""Collector replicas sharing clusters through Leases on a real kube-apiserver (`kubectl scale`).

Two `python -m collectors` processes, each with the collector's own RBAC identity, hold their
Leases in a namespace of the real server (Role: get, list, watch, create, update, delete on
leases, and nothing more), and watch four "clusters" that are that same server under four names. Starting the
second replica is `kubectl scale --replicas=2`; killing it (-9) is a node lost; a third one started
and stopped (SIGTERM) is a scale up and down; two replicas of two Lease groups in one namespace are
two releases side by side. What is watched by
whom is read from the Lease objects, from each replica's metrics (`herald_collector_leases_held`)
and /readyz (`clusters`: the watches running), every 0.1 s, and from what reaches the raw topic.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from collectors.leases import DEFAULT_GROUP as GROUP
from collectors.leases import cluster_lease_name, member_lease_name
from herald_dev.helm import default_objects, the_one
from herald_dev.infra import free_port
from herald_dev.processes import ServiceProcess
from herald_dev.realkube import RealKube
from tests.conftest import Topics
from tests.realkube.kube import FAST, EventWriter, core_event, create, metric, new_namespace
from tests.support import TopicReader, http_get, wait_until

CLUSTERS = ("alpha", "beta", "Gamma_Prod.eu", "delta")
DURATION_S, RENEW_DEADLINE_S, RETRY_PERIOD_S = 3, 2.0, 0.5
MARGIN_S = DURATION_S - RENEW_DEADLINE_S
"""The longest two replicas could both watch a cluster: a replica that cannot renew stops its
watch by the renew deadline, and another takes the Lease over after the whole duration."""


def _grant_leases(kube: RealKube, namespace: str) -> None:
    """What docs/collectors.md says the collector needs, in the Lease namespace, and no more (the
    chart grants the same in its release namespace: tests/realkube/test_chart_rbac.py)."""
    deployment = the_one(default_objects(), "Deployment", "collector")
    account = {
        "name": deployment["spec"]["template"]["spec"]["serviceAccountName"],
        "namespace": deployment["metadata"]["namespace"],
    }
    with kube.admin() as api:
        rbac = client.RbacAuthorizationV1Api(api)
        rbac.create_namespaced_role(
            namespace,
            {
                "metadata": {"name": "herald-collector-leases"},
                "rules": [
                    {
                        "apiGroups": ["coordination.k8s.io"],
                        "resources": ["leases"],
                        "verbs": ["get", "list", "watch", "create", "update", "delete"],
                    }
                ],
            },
        )
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": "herald-collector-leases"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "herald-collector-leases",
                },
                "subjects": [
                    {
                        "kind": "ServiceAccount",
                        "name": account["name"],
                        "namespace": account["namespace"],
                    }
                ],
            },
        )


def _lease_names(kube: RealKube, namespace: str) -> set[str]:
    with kube.admin() as api:
        leases = client.CoordinationV1Api(api).list_namespaced_lease(namespace)
    return {lease.metadata.name for lease in leases.items}


def _holders(kube: RealKube, namespace: str, group: str = GROUP) -> dict[str, str]:
    with kube.admin() as api:
        leases = client.CoordinationV1Api(api).list_namespaced_lease(namespace)
    by_name = {lease.metadata.name: lease.spec.holder_identity or "" for lease in leases.items}
    return {c: by_name.get(cluster_lease_name(group, c), "") for c in CLUSTERS}


def _lease(kube: RealKube, namespace: str, cluster: str) -> Any:
    with kube.admin() as api:
        return client.CoordinationV1Api(api).read_namespaced_lease(
            cluster_lease_name(GROUP, cluster), namespace
        )


def _running(port: int) -> set[str] | None:
    """The clusters whose watches run in that replica; None if it does not answer."""
    try:
        _, body = http_get(port, "/readyz")
        return set(json.loads(body)["clusters"])
    except (OSError, ValueError, KeyError):
        return None


def _leases_held(port: int) -> set[str]:
    _, text = http_get(port, "/metrics")
    return {
        sample.labels["cluster"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "herald_collector_leases_held" and sample.value == 1
    }


@dataclass
class Overlaps:
    """Samples every replica's running watches until stopped; the longest time any cluster ran
    on two replicas at once."""

    ports: dict[str, int]
    longest_s: float = 0.0
    _since: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Overlaps:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            now = time.monotonic()
            counts: dict[str, int] = {}
            for port in list(self.ports.values()):
                for cluster in _running(port) or set():
                    counts[cluster] = counts.get(cluster, 0) + 1
            for cluster in CLUSTERS:
                if counts.get(cluster, 0) > 1:
                    start = self._since.setdefault(cluster, now)
                    self.longest_s = max(self.longest_s, now - start)
                else:
                    self._since.pop(cluster, None)


@pytest.fixture
def lease_namespace(real_kube: RealKube) -> str:
    namespace = new_namespace(real_kube)
    _grant_leases(real_kube, namespace)
    return namespace


@pytest.fixture
def start_replica(
    real_kube: RealKube,
    namespace: str,
    lease_namespace: str,
    topics: Topics,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> Callable[..., tuple[ServiceProcess, int]]:
    kubeconfig = real_kube.collector_kubeconfig(tmp_path / "collector.kubeconfig")
    cluster_file = tmp_path / "clusters.yaml"
    cluster_file.write_text(
        json.dumps(
            {
                "clusters": [
                    {"name": name, "kubeconfig": str(kubeconfig), "namespaces": [namespace]}
                    for name in CLUSTERS
                ]
            }
        )
    )

    def start(holder: str, group: str = GROUP) -> tuple[ServiceProcess, int]:
        port = free_port()
        replica = services(
            "collectors",
            {
                **FAST,
                **topics.env(),
                "HERALD_CLUSTERS_FILE": str(cluster_file),
                "HERALD_METRICS_PORT": str(port),
                "HERALD_OWNER_RESOLUTION": "false",
                "HERALD_LEASE_NAMESPACE": lease_namespace,
                "HERALD_LEASE_HOLDER": holder,
                "HERALD_LEASE_GROUP": group,
                "HERALD_LEASE_KUBECONFIG": str(kubeconfig),
                "HERALD_LEASE_DURATION_S": str(DURATION_S),
                "HERALD_LEASE_RENEW_DEADLINE_S": str(RENEW_DEADLINE_S),
                "HERALD_LEASE_RETRY_PERIOD_S": str(RETRY_PERIOD_S),
            },
        )
        return replica, port

    return start


def _records_of(values: list[dict[str, Any]], uids: set[str]) -> list[tuple[str, str]]:
    return [
        (v["cluster"], v["object"]["metadata"]["uid"])
        for v in values
        if v["object"]["metadata"]["uid"] in uids
    ]


@pytest.mark.timeout(240)
def test_scaling_the_collectors_keeps_every_cluster_watched_exactly_once(
    real_kube: RealKube,
    namespace: str,
    lease_namespace: str,
    start_replica: Callable[..., tuple[ServiceProcess, int]],
    topics: Topics,
    kafka: str,
) -> None:
    everything = set(CLUSTERS)
    a, a_port = start_replica("collector-a")

    def alone_on_everything() -> bool:
        return (
            _running(a_port) == everything
            and _leases_held(a_port) == everything
            and set(_holders(real_kube, lease_namespace).values()) == {"collector-a"}
        )

    assert wait_until(alone_on_everything, timeout_s=60), a.log_tail()
    assert metric(a_port, "herald_collector_clusters_configured") == len(CLUSTERS)
    assert metric(a_port, "herald_collector_lease_members") == 1
    ports = {"a": a_port}
    reader = TopicReader(kafka, topics.raw)
    with (
        Overlaps(ports) as overlaps,
        EventWriter(real_kube, namespace, prefix="scale", interval_s=0.1) as writer,
    ):
        # kubectl scale --replicas=2
        b, b_port = start_replica("collector-b")
        ports["b"] = b_port

        def split_once() -> bool:
            on_a, on_b = _running(a_port), _running(b_port)
            if on_a is None or on_b is None or on_a & on_b or on_a | on_b != everything:
                return False
            holders = _holders(real_kube, lease_namespace)
            return (
                len(on_a) == len(on_b) == 2
                and metric(a_port, "herald_collector_lease_members") == 2
                and _leases_held(a_port) == on_a
                and _leases_held(b_port) == on_b
                and {c for c, h in holders.items() if h == "collector-a"} == on_a
                and {c for c, h in holders.items() if h == "collector-b"} == on_b
            )

        assert wait_until(split_once, timeout_s=60), b.log_tail()
        on_b = _running(b_port) or set()
        for cluster in on_b:
            # Handed over with its checkpoint: b resumed where a stopped, it did not relist
            # (a listed it once, when it started with no checkpoint at all).
            assert (
                metric(a_port, "herald_collector_relists_total", cluster=cluster, cause="start")
                == 1
            )
            assert (
                metric(b_port, "herald_collector_relists_total", cluster=cluster, cause="start")
                == 0
            )
            lease = _lease(real_kube, lease_namespace, cluster)
            assert lease.spec.lease_duration_seconds == DURATION_S
            assert lease.spec.lease_transitions >= 1  # a, then nobody (released), then b
            assert lease.spec.renew_time >= lease.spec.acquire_time

        # Watched exactly once, as the raw topic shows: one record per cluster for a new Event.
        marker = create(real_kube, core_event(namespace, name=f"marker-{uuid.uuid4().hex[:8]}"))
        uid = {marker["metadata"]["uid"]}
        assert reader.read_until(lambda v: len(_records_of(v, uid)) >= len(CLUSTERS), timeout_s=30)
        reader.read_until(lambda v: False, timeout_s=2)  # anything more would be a duplicate
        assert sorted(_records_of(reader.values, uid)) == sorted(
            (c, marker["metadata"]["uid"]) for c in CLUSTERS
        )

        # A node lost: b is killed, its Leases expire, a takes everything back.
        b.kill()
        del ports["b"]
        killed = time.monotonic()
        assert wait_until(alone_on_everything, timeout_s=DURATION_S + 30), a.log_tail()
        # Not before b's Leases expired: unchanged for the duration since b last renewed them.
        assert time.monotonic() - killed >= DURATION_S - RETRY_PERIOD_S
        # Scaled up again, then down (SIGTERM): c releases its Leases, a takes them at once.
        c, c_port = start_replica("collector-c")
        ports["c"] = c_port
        assert wait_until(
            lambda: _leases_held(c_port) and _running(c_port) == _leases_held(c_port),
            timeout_s=60,
        ), c.log_tail()
        theirs = _leases_held(c_port)
        assert c.stop() == 0
        del ports["c"]
        # Released before it exited: free now (or a's already), no waiting for expiry.
        holders = _holders(real_kube, lease_namespace)
        assert {holders[cluster] for cluster in theirs} <= {"", "collector-a"}, c.log_tail()
        # And its membership Lease deleted: pod names are unique, nobody would renew it again.
        assert member_lease_name(GROUP, "collector-c") not in _lease_names(
            real_kube, lease_namespace
        )
        assert wait_until(alone_on_everything, timeout_s=30), a.log_tail()
        written = writer.count
        wait_until(lambda: writer.count >= written + 5, timeout_s=10)  # a few more through a
        created = writer.stop()
    try:
        assert overlaps.longest_s <= MARGIN_S, overlaps.longest_s
        # Nothing lost across both hand-overs: every Event reached the topic from every cluster.
        wanted = {(c, e["metadata"]["uid"]) for e in created for c in CLUSTERS}
        uids = {e["metadata"]["uid"] for e in created}
        assert reader.read_until(lambda v: wanted <= set(_records_of(v, uids)), timeout_s=60), len(
            wanted - set(_records_of(reader.values, uids))
        )
    finally:
        reader.close()


@pytest.mark.timeout(120)
def test_two_lease_groups_in_one_namespace_each_watch_every_cluster(
    real_kube: RealKube,
    lease_namespace: str,
    start_replica: Callable[..., tuple[ServiceProcess, int]],
) -> None:
    """Two releases side by side (the chart gives each its own group): neither counts the other's
    replica as a member of its own, and each watches every cluster of its file."""
    everything = set(CLUSTERS)
    started = {
        g: start_replica(f"{g}-0", g) for g in ("prod-herald-collector", "test-herald-collector")
    }

    def both_on_everything() -> bool:
        return all(
            _running(port) == everything
            and metric(port, "herald_collector_lease_members") == 1
            and set(_holders(real_kube, lease_namespace, group).values()) == {f"{group}-0"}
            for group, (_, port) in started.items()
        )

    assert wait_until(both_on_everything, timeout_s=60), [p.log_tail() for p, _ in started.values()]


@pytest.mark.timeout(120)
def test_the_default_group_takes_over_leases_written_before_groups(
    real_kube: RealKube,
    lease_namespace: str,
    start_replica: Callable[..., tuple[ServiceProcess, int]],
) -> None:
    """A release named `herald` upgraded from before Lease groups: its old pods' Leases have the
    same names, labelled with the kind alone. The new replica reads them as its group's (it does
    not find its names taken by objects it cannot list), takes the released one, and relabels it."""
    released = cluster_lease_name(GROUP, CLUSTERS[0])
    with real_kube.admin() as api:
        client.CoordinationV1Api(api).create_namespaced_lease(
            lease_namespace,
            {
                "metadata": {
                    "name": released,
                    "labels": {"herald.dev/collector-lease": "cluster"},
                    "annotations": {"herald.dev/subject": CLUSTERS[0]},
                },
                "spec": {"leaseDurationSeconds": 1},
            },
        )
    a, a_port = start_replica("collector-a")
    assert wait_until(lambda: _running(a_port) == set(CLUSTERS), timeout_s=60), a.log_tail()
    lease = _lease(real_kube, lease_namespace, CLUSTERS[0])
    assert lease.spec.holder_identity == "collector-a"
    assert lease.metadata.labels["herald.dev/collector-lease"] == GROUP
