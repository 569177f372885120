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
    delete_events_api_event,
    objects,
    recount,
    repeat_events_api_event,
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


def test_a_cluster_wide_watch_lists_what_was_there_and_sees_both_apis_in_both_scopes(
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

    def keyed(values: list[dict[str, Any]]) -> dict[str, list[tuple[bytes | None, Any]]]:
        """uid -> [(Kafka key, raw record)...] of this test's Events, in topic order."""
        seen: dict[str, list[tuple[bytes | None, Any]]] = {}
        for key, value in zip(reader.keys, values, strict=True):
            uid = value["object"]["metadata"]["uid"]
            if uid in mine:
                seen.setdefault(uid, []).append((key, value))
        return seen

    mine = {before["metadata"]["uid"]}
    try:
        assert reader.read_until(lambda v: before["metadata"]["uid"] in keyed(v), timeout_s=30)
        # Each API, about a namespaced object (a Rollout) and a cluster-scoped one (a Node, whose
        # Events live in `default`): created, repeated, deleted.
        core_namespaced = create(real_kube, core_event(namespace))
        core_cluster = create(real_kube, core_event("default", involved=node))
        new_namespaced = create_events_api_event(real_kube, namespace)
        new_cluster = create_events_api_event(real_kube, "default", regarding=node)
        cores, news = [core_namespaced, core_cluster], [new_namespaced, new_cluster]
        mine |= {e["metadata"]["uid"] for e in cores + news}
        for event in cores:
            recount(real_kube, event["metadata"]["namespace"], event["metadata"]["name"], 2)
        for event in news:
            ns, name = event["metadata"]["namespace"], event["metadata"]["name"]
            repeat_events_api_event(real_kube, ns, name, 2)
        for event in cores:
            delete(real_kube, event["metadata"]["namespace"], event["metadata"]["name"])
        for event in news:
            delete_events_api_event(
                real_kube, event["metadata"]["namespace"], event["metadata"]["name"]
            )
        assert reader.read_until(
            lambda v: sum(len(records) for records in keyed(v).values()) >= 13, timeout_s=30
        )
    finally:
        reader.close()
    seen = keyed(reader.values)
    assert sum(len(records) for records in seen.values()) == 13, seen
    [(key, listed)] = seen[before["metadata"]["uid"]]
    assert listed["watch_type"] == "ADDED"
    assert "kind" not in listed["object"]  # list items carry no kind (watch items do)
    assert key == f"real/{namespace}/Rollout/payments".encode()
    keys = {
        core_namespaced["metadata"]["uid"]: f"real/{namespace}/Rollout/payments",
        new_namespaced["metadata"]["uid"]: f"real/{namespace}/Rollout/payments",
        core_cluster["metadata"]["uid"]: f"real//Node/{node['name']}",
        new_cluster["metadata"]["uid"]: f"real//Node/{node['name']}",
    }
    for uid, expected_key in keys.items():
        records = seen[uid]
        assert [k for k, _ in records] == [expected_key.encode()] * 3
        assert [v["watch_type"] for _, v in records] == ["ADDED", "MODIFIED", "DELETED"]
        for _, value in records:
            validate("kube-event-record.v1.schema.json", value)
    for event in cores:
        records = seen[event["metadata"]["uid"]]
        assert [v["object"]["count"] for _, v in records] == [1, 2, 2]
    for event in news:  # the core/v1 view of an events.k8s.io/v1 Event: a series, no count
        records = seen[event["metadata"]["uid"]]
        assert [v["object"].get("count") for _, v in records] == [None] * 3
        assert [(v["object"].get("series") or {}).get("count") for _, v in records] == [None, 2, 2]
        assert {v["object"]["reportingComponent"] for _, v in records} == {"rollouts-controller"}
    assert collector.stop() == 0
