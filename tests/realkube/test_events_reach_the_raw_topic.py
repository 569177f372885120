"""Events written to a real API server, through either Event API, reach the raw topic: every
occurrence, with the contract's key, as the collector's least-privilege identity sees them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from herald_dev.processes import ServiceProcess
from herald_dev.realkube import RealKube
from tests.conftest import Topics
from tests.realkube.kube import (
    core_event,
    create,
    create_events_api_event,
    delete,
    objects,
    recount,
    start_collector,
)
from tests.support import TopicReader, validate


def test_an_event_created_repeated_and_deleted_reaches_the_raw_topic_once_per_change(
    kafka: str,
    topics: Topics,
    real_kube: RealKube,
    namespace: str,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    collector, _ = start_collector(services, real_kube, topics, tmp_path, namespace=namespace)
    reader = TopicReader(kafka, topics.raw)
    try:
        event = create(real_kube, core_event(namespace))
        name = event["metadata"]["name"]
        assert reader.read_until(lambda v: len(objects(v, namespace)) >= 1, timeout_s=30)
        recount(real_kube, namespace, name, 2)
        delete(real_kube, namespace, name)
        assert reader.read_until(lambda v: len(objects(v, namespace)) >= 3, timeout_s=30)
    finally:
        reader.close()
    values = objects(reader.values, namespace)
    assert [v["watch_type"] for v in values] == ["ADDED", "MODIFIED", "DELETED"]
    assert [v["object"]["count"] for v in values] == [1, 2, 2]
    assert {v["object"]["metadata"]["uid"] for v in values} == {event["metadata"]["uid"]}
    for value in values:
        validate("kube-event-record.v1.schema.json", value)
        assert value["cluster"] == "real"
        assert value["object"]["kind"] == "Event"  # watch items carry it; list items do not
    assert collector.stop() == 0


def test_a_cluster_wide_watch_lists_what_was_there_and_sees_every_namespace_and_api(
    kafka: str,
    topics: Topics,
    real_kube: RealKube,
    namespace: str,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    before = create(real_kube, core_event(namespace, message="there before the collector"))
    node = {"kind": "Node", "apiVersion": "v1", "name": f"node-{uuid.uuid4().hex[:6]}"}
    collector, _ = start_collector(services, real_kube, topics, tmp_path)  # all namespaces
    reader = TopicReader(kafka, topics.raw)

    def about(values: list[dict[str, Any]]) -> dict[str, tuple[bytes | None, dict[str, Any]]]:
        """uid -> (Kafka key, raw record) of this test's Events."""
        mine = {before["metadata"]["uid"], *created}
        return {
            v["object"]["metadata"]["uid"]: (key, v)
            for key, v in zip(reader.keys, values, strict=True)
            if v["object"]["metadata"]["uid"] in mine
        }

    created: set[str] = set()
    try:
        assert reader.read_until(lambda v: before["metadata"]["uid"] in about(v), timeout_s=30)
        cluster_scoped = create(real_kube, core_event("default", involved=node))
        through_events_api = create_events_api_event(real_kube, namespace)
        created |= {cluster_scoped["metadata"]["uid"], through_events_api["metadata"]["uid"]}
        assert reader.read_until(lambda v: len(about(v)) == 3, timeout_s=30)
    finally:
        reader.close()
    seen = about(reader.values)
    key, listed = seen[before["metadata"]["uid"]]
    assert listed["watch_type"] == "ADDED"
    assert key == f"real/{namespace}/Rollout/payments".encode()
    assert seen[cluster_scoped["metadata"]["uid"]][0] == f"real//Node/{node['name']}".encode()
    new_api = seen[through_events_api["metadata"]["uid"]][1]["object"]
    assert new_api["reportingComponent"] == "rollouts-controller"
    assert new_api.get("source") in ({}, None)  # the core/v1 view of an events.k8s.io/v1 write
    assert collector.stop() == 0
