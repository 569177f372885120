"""What the real API server exposed that our simulation never showed (issue 10), each fixed and each
test failing before its fix: a quiet cluster looked broken; etcd wiped behind the same URL went
unnoticed; SIGTERM and an API server restart logged and counted false failures; Events written
through events.k8s.io/v1 matched no rule."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from herald_dev.processes import ServiceProcess
from herald_dev.realkube import RealKube
from tests.collectors.test_real_server_behaviour import _logged, _metric
from tests.conftest import Topics
from tests.realkube.kube import (
    core_event,
    create,
    create_events_api_event,
    objects,
    start_collector,
    start_processor,
    uids,
)
from tests.support import TopicReader, http_get

QUIET = {"HERALD_WATCH_TIMEOUT_S": "5", "HERALD_READ_TIMEOUT_S": "3", "HERALD_LOG_FORMAT": "json"}
"""A watch timeout longer than the read timeout, as the defaults are (300 s and 90 s), scaled down."""


BEFORE_WIPE = 300


def test_a_quiet_cluster_stays_ready_with_no_failure_counted_or_logged(
    kafka: str,
    topics: Topics,
    real_kube: RealKube,
    namespace: str,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    """That its position keeps up meanwhile is
    `test_more_real_server_faults.py::test_a_quiet_namespace_survives_the_api_servers_own_compaction`."""
    create(real_kube, core_event(namespace, message="before the quiet spell"))
    collector, port = start_collector(
        services, real_kube, topics, tmp_path, namespace=namespace, env=QUIET
    )
    reader = TopicReader(kafka, topics.raw)
    try:
        assert reader.read_until(lambda v: len(objects(v, namespace)) == 1, timeout_s=30)
        # Quiet for three watch timeouts: the real server sends nothing at all on such a watch,
        # not even bookmarks, until its timeout ends it.
        deadline = time.monotonic() + 3 * 5 + 3
        while time.monotonic() < deadline:
            status, body = http_get(port, "/readyz")
            assert status == 200, body
            time.sleep(0.5)
        create(real_kube, core_event(namespace, message="after the quiet spell"))
        assert reader.read_until(lambda v: len(objects(v, namespace)) == 2, timeout_s=40)
    finally:
        reader.close()
    assert _metric(port, "herald_collector_watch_restarts_total") is None
    assert _metric(port, "herald_collector_relists_total", cause="expired") == 0
    assert _logged(collector, level="warning") == []
    assert collector.stop() == 0


def test_etcd_wiped_behind_the_same_url_is_noticed_and_what_it_then_holds_is_published(
    kafka: str,
    topics: Topics,
    start_real_kube: Callable[..., RealKube],
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    kube = start_real_kube()
    # etcd's revision well past what the restarted API server's own start writes into the empty
    # etcd (about 200): a wiped etcd that had already passed the checkpoint could not be told.
    for i in range(BEFORE_WIPE):
        create(kube, core_event("default", message=f"before the wipe {i}"))
    collector, port = start_collector(
        services,
        kube,
        topics,
        tmp_path,
        env={"HERALD_WATCH_TIMEOUT_S": "10", "HERALD_LOG_FORMAT": "json"},
        # A token that outlives the wipe (the ServiceAccount's own would name a deleted account).
        kubeconfig=kube.collector_kubeconfig(tmp_path / "kubeconfig", static_token=True),
    )
    reader = TopicReader(kafka, topics.raw)
    try:
        assert reader.read_until(lambda v: len(objects(v, "default")) >= BEFORE_WIPE, timeout_s=30)
        kube.wipe_etcd()
        after = create(kube, core_event("default", message="after the wipe"))
        assert reader.read_until(
            lambda v: after["metadata"]["uid"] in uids(x["object"] for x in v), timeout_s=40
        )
    finally:
        reader.close()
    assert _metric(port, "herald_collector_relists_total", cause="server_behind") == 1.0
    warnings = _logged(collector, level="warning")
    assert any("etcd was wiped or restored" in w for w in warnings), warnings
    assert collector.stop() == 0


def test_sigterm_ends_the_watches_with_no_api_error(
    topics: Topics,
    real_kube: RealKube,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    collector, _ = start_collector(
        services, real_kube, topics, tmp_path, env={"HERALD_LOG_FORMAT": "json"}
    )
    assert collector.stop() == 0
    assert _logged(collector, level="warning") == []


def test_api_server_restarts_log_and_count_no_forbidden(
    kafka: str,
    topics: Topics,
    start_real_kube: Callable[..., RealKube],
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    kube = start_real_kube(apiserver_args=["--shutdown-watch-termination-grace-period=5s"])
    collector, port = start_collector(
        services,
        kube,
        topics,
        tmp_path,
        env={"HERALD_LOG_FORMAT": "json"},
        kubeconfig=kube.collector_kubeconfig(tmp_path / "kubeconfig", static_token=True),
    )
    reader = TopicReader(kafka, topics.raw)
    try:
        for i in range(3):
            kube.restart_apiserver(kill=i == 1)
            event = create(kube, core_event("default", message=f"after restart {i}"))
            assert reader.read_until(
                lambda v, uid=event["metadata"]["uid"]: uid in uids(x["object"] for x in v),
                timeout_s=30,
            )
    finally:
        reader.close()
    assert _metric(port, "herald_collector_watch_restarts_total", cause="http_403") is None
    assert not [w for w in _logged(collector, level="warning") if "403" in w or "orbidden" in w]
    assert collector.stop() == 0


def test_an_argo_rollouts_event_written_through_events_api_gives_the_same_domain_event(
    kafka: str,
    topics: Topics,
    real_kube: RealKube,
    namespace: str,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    start_collector(services, real_kube, topics, tmp_path, namespace=namespace)
    start_processor(services, topics, tmp_path)
    note = "Rollout step 2/5 completed (setWeight: 40)"
    # Its core/v1 view, which the collector publishes, has `source: {}`: the emitter is only in
    # reportingComponent (tests/realkube/test_events_reach_the_raw_topic.py shows it).
    create_events_api_event(real_kube, namespace, reason="RolloutStepCompleted", note=note)
    domain = TopicReader(kafka, topics.domain)
    try:
        assert domain.read_until(lambda v: len(v) >= 1, timeout_s=90)
    finally:
        domain.close()
    [event] = domain.values
    assert event["type"] == "dev.herald.rollout.step_advanced"
    assert event["source"] == f"/clusters/real/namespaces/{namespace}/rollouts/payments"
    assert event["data"]["source_message"] == note
    assert (event["data"]["step_index"], event["data"]["step_total"]) == (2, 5)
