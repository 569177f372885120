"""More of what a real API server does to the collector: a real 403, etcd wiped while no collector
ran, SIGTERM during a long list, the API server's own compaction of a quiet scope's position, an
Argo CD Event written through events.k8s.io/v1 and its repeat."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client

from herald_dev.processes import ServiceProcess
from herald_dev.realkube import RealKube
from tests.collectors.test_real_server_behaviour import _logged, _metric
from tests.conftest import Topics
from tests.realkube.kube import (
    core_event,
    create,
    create_events_api_event,
    create_many,
    objects,
    repeat_events_api_event,
    saved_checkpoint,
    start_collector,
    start_processor,
    uids,
)
from tests.support import TopicReader, wait_until


def test_an_argo_cd_event_written_through_events_api_and_its_repeat_give_domain_events(
    kafka: str,
    topics: Topics,
    real_kube: RealKube,
    namespace: str,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    start_collector(services, real_kube, topics, tmp_path, namespace=namespace)
    start_processor(services, topics, tmp_path)
    app = {
        "kind": "Application",
        "apiVersion": "argoproj.io/v1alpha1",
        "namespace": namespace,
        "name": "guestbook",
        "uid": str(uuid.uuid4()),
    }
    created = create_events_api_event(
        real_kube,
        namespace,
        reason="OperationCompleted",
        note="Sync operation to 4f2c9a1 succeeded",
        controller="argocd-application-controller",
        regarding=app,
    )
    repeat_events_api_event(real_kube, namespace, created["metadata"]["name"], 2)
    domain = TopicReader(kafka, topics.domain)
    try:
        assert domain.read_until(lambda v: len(v) >= 2, timeout_s=90), domain.values
    finally:
        domain.close()
    assert [e["type"] for e in domain.values] == ["dev.herald.application.operation_completed"] * 2
    assert domain.values[0]["source"].endswith(f"/namespaces/{namespace}/applications/guestbook")
    assert domain.values[0]["data"]["revision"] == "4f2c9a1"


def test_a_real_403_is_warned_and_counted_after_the_grace(
    topics: Topics,
    real_kube: RealKube,
    namespace: str,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    collector, port = start_collector(
        services,
        real_kube,
        topics,
        tmp_path,
        namespace=namespace,
        env={"HERALD_WATCH_TIMEOUT_S": "3", "HERALD_LOG_FORMAT": "json"},
    )
    with real_kube.admin() as api:
        rbac = client.RbacAuthorizationV1Api(api)
        [binding] = [
            b
            for b in rbac.list_cluster_role_binding().items
            if any(s.kind == "ServiceAccount" for s in b.subjects or [])
            and "herald" in b.metadata.name
        ]
        rbac.delete_cluster_role_binding(binding.metadata.name)
        try:
            assert wait_until(
                lambda: (
                    (_metric(port, "herald_collector_watch_restarts_total", cause="http_403") or 0)
                    >= 1
                ),
                timeout_s=60,
            ), collector.log_tail()
        finally:
            binding.metadata.resource_version = None
            rbac.create_cluster_role_binding(binding)
    assert any("403" in w for w in _logged(collector, level="warning"))
    assert collector.stop() == 0


def test_etcd_wiped_while_the_collector_was_stopped_is_relisted_at_restart(
    kafka: str,
    topics: Topics,
    start_real_kube: Callable[..., RealKube],
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    kube = start_real_kube()
    kubeconfig = kube.collector_kubeconfig(tmp_path / "kubeconfig", static_token=True)
    for i in range(300):
        create(kube, core_event("default", message=f"before {i}"))
    env = {"HERALD_WATCH_TIMEOUT_S": "10", "HERALD_LOG_FORMAT": "json"}
    collector, _ = start_collector(services, kube, topics, tmp_path, env=env, kubeconfig=kubeconfig)
    reader = TopicReader(kafka, topics.raw)
    try:
        assert reader.read_until(lambda v: len(objects(v, "default")) >= 300, timeout_s=30)
        # The checkpoint that the restart must find newer than the wiped server.
        wait_until(lambda: saved_checkpoint(kafka, topics, "real/*") is not None, timeout_s=30)
        assert collector.stop() == 0
        kube.wipe_etcd()
        after = create(kube, core_event("default", message="after the wipe, while stopped"))
        collector, port = start_collector(
            services, kube, topics, tmp_path, env=env, kubeconfig=kubeconfig
        )
        assert reader.read_until(
            lambda v: after["metadata"]["uid"] in uids(x["object"] for x in v), timeout_s=40
        )
    finally:
        reader.close()
    assert _metric(port, "herald_collector_relists_total", cause="server_behind") == 1.0
    assert collector.stop() == 0


def test_sigterm_during_a_long_list_stops_promptly_and_cleanly(
    kafka: str,
    topics: Topics,
    real_kube: RealKube,
    namespace: str,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    create_many(real_kube, [core_event(namespace, name=f"bulk-{i:05d}") for i in range(3000)])
    collector, _ = start_collector(
        services,
        real_kube,
        topics,
        tmp_path,
        namespace=namespace,
        env={"HERALD_LIST_PAGE_SIZE": "20", "HERALD_LOG_FORMAT": "json"},
        ready=False,
    )
    reader = TopicReader(kafka, topics.raw)
    try:
        assert reader.read_until(lambda v: len(v) >= 100, timeout_s=60)
    finally:
        reader.close()
    assert len(reader.values) < 3000, "the list finished before the stop: not a probe"
    started = time.monotonic()
    code = collector.stop(timeout_s=40)
    took = time.monotonic() - started
    assert code == 0, collector.log_tail()
    assert took < 10, took
    assert _logged(collector, level="warning") == []
    assert _logged(collector, level="error") == []


@pytest.mark.timeout(240)
def test_a_quiet_namespace_survives_the_api_servers_own_compaction(
    kafka: str,
    topics: Topics,
    start_real_kube: Callable[..., RealKube],
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    """The API server compacts every --etcd-compaction-interval (5 min by default) to the revision
    it saw one interval before. Scaled down to an interval of 6 s and a watch timeout of 2 s (the
    default 120 s against 5 min). The rest of the cluster is busy; the watched namespace is quiet.
    A quiet watch moves the position to the server's version asked before it began, so the
    position trails by one watch timeout, inside what the server keeps: no 410, no relist. (A
    position that stood still since the list would be compacted away within 12 s.)"""
    watch_timeout_s = 2
    kube = start_real_kube(apiserver_args=["--etcd-compaction-interval=6s"])
    with kube.admin() as api:
        client.CoreV1Api(api).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name="quiet"))
        )
    create(kube, core_event("quiet", message="before the quiet spell"))
    collector, port = start_collector(
        services,
        kube,
        topics,
        tmp_path,
        namespace="quiet",
        env={"HERALD_WATCH_TIMEOUT_S": str(watch_timeout_s), "HERALD_LOG_FORMAT": "json"},
    )
    deadline = time.monotonic() + 3 * 6 + 2  # past two compactions (the first compacts nothing)
    i = 0
    while time.monotonic() < deadline:
        create(kube, core_event("default", message=f"busy elsewhere {i}"))
        i += 1
        time.sleep(1)  # pacing the writes elsewhere (one a second), not waiting for an effect
    assert _metric(port, "herald_collector_relists_total", cause="expired") == 0
    assert collector.stop() == 0
