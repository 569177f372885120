"""Events name the workload and the Argo CD application of what they are about, resolved from the
collector's metadata-only caches of the owning kinds, as the collector's least-privilege identity
(the manifest's ClusterRole, applied verbatim) sees them. No controllers run in the tier: the owner
objects are created through the API with the owner references their controllers would set."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client

from herald_dev.processes import ServiceProcess
from herald_dev.realkube import RealKube
from tests.conftest import Topics
from tests.realkube.kube import (
    core_event,
    create,
    metric,
    objects,
    start_collector,
)
from tests.support import TopicReader, validate, wait_until

TRACKING = "argocd.argoproj.io/tracking-id"


def _json(response: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(response.data)
    return loaded


def _template(app: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": app, "image": "registry.example/checkout:1"}]},
    }


def _controller(owner: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def _ref(obj: dict[str, Any]) -> dict[str, str]:
    return {
        "kind": obj["kind"],
        "apiVersion": obj["apiVersion"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
    }


def _pod_of(
    admin: client.ApiClient, namespace: str, owner: dict[str, Any], name: str
) -> dict[str, Any]:
    """A Pod controlled by `owner` (a ReplicaSet), with the template's labels as its controller
    copies them."""
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app": "checkout", "app.kubernetes.io/name": "checkout"},
            "ownerReferences": _controller(owner),
        },
        "spec": _template("checkout")["spec"],
    }
    pod = _json(
        client.CoreV1Api(admin).create_namespaced_pod(namespace, body, _preload_content=False)
    )
    pod.setdefault("kind", "Pod")
    pod.setdefault("apiVersion", "v1")
    return pod


def _replicaset_of(
    admin: client.ApiClient, namespace: str, owner: dict[str, Any], name: str
) -> dict[str, Any]:
    body = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "ownerReferences": _controller(owner)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": _template("checkout"),
        },
    }
    replicaset = _json(
        client.AppsV1Api(admin).create_namespaced_replica_set(
            namespace, body, _preload_content=False
        )
    )
    replicaset.setdefault("kind", "ReplicaSet")
    replicaset.setdefault("apiVersion", "apps/v1")
    return replicaset


def _kubelet_backoff(namespace: str, pod: dict[str, Any]) -> dict[str, Any]:
    event = core_event(
        namespace,
        reason="BackOff",
        message="Back-off restarting failed container checkout in pod "
        f"{pod['metadata']['name']}_{namespace}({pod['metadata']['uid']})",
        component="kubelet",
        involved={
            "kind": "Pod",
            "apiVersion": "v1",
            "namespace": namespace,
            "name": pod["metadata"]["name"],
            "uid": pod["metadata"]["uid"],
            "fieldPath": "spec.containers{checkout}",
        },
    )
    event["type"] = "Warning"
    event["source"]["host"] = "node-1"
    return event


def test_an_event_about_a_pod_of_a_deployment_names_the_chain_the_workload_and_the_application(
    kafka: str,
    topics: Topics,
    real_kube: RealKube,
    namespace: str,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    with real_kube.admin() as admin:
        deployment = _json(
            client.AppsV1Api(admin).create_namespaced_deployment(
                namespace,
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {
                        "name": "checkout",
                        "labels": {"app.kubernetes.io/part-of": "shop"},
                        "annotations": {
                            TRACKING: f"shop_checkout:apps/Deployment:{namespace}/checkout"
                        },
                    },
                    "spec": {
                        "replicas": 1,
                        "selector": {"matchLabels": {"app": "checkout"}},
                        "template": _template("checkout"),
                    },
                },
                _preload_content=False,
            )
        )
        deployment.setdefault("kind", "Deployment")
        deployment.setdefault("apiVersion", "apps/v1")
        replicaset = _replicaset_of(admin, namespace, deployment, "checkout-6f8b9c7d5")
        listed = _pod_of(admin, namespace, replicaset, "checkout-6f8b9c7d5-abcde")
        # There before the collector starts (found by the caches' first list), and its Event.
        before = create(real_kube, _kubelet_backoff(namespace, listed), api=admin)

    collector, port = start_collector(services, real_kube, topics, tmp_path, namespace=namespace)
    reader = TopicReader(kafka, topics.raw)
    pods_cached = {"cluster": "real", "scope": namespace, "kind": "Pod"}
    try:
        assert reader.read_until(lambda v: len(objects(v, namespace)) >= 1, timeout_s=30)
        assert metric(port, "herald_collector_owner_cache_objects", **pods_cached) == 1
        with real_kube.admin() as admin:
            # Created while the collector runs: found through the caches' watches. Its Event is
            # written once the collector has the Pod (as a kubelet's Event follows the Pod's
            # binding): an Event that outruns its Pod is published without owners (unit-tested).
            watched = _pod_of(admin, namespace, replicaset, "checkout-6f8b9c7d5-fghij")
            wait_until(
                lambda: metric(port, "herald_collector_owner_cache_objects", **pods_cached) == 2,
                timeout_s=30,
            )
            after = create(real_kube, _kubelet_backoff(namespace, watched), api=admin)
        assert reader.read_until(lambda v: len(objects(v, namespace)) >= 2, timeout_s=30)
    finally:
        reader.close()
    records = {v["object"]["metadata"]["uid"]: v for v in objects(reader.values, namespace)}
    for event, pod in ((before, listed), (after, watched)):
        record = records[event["metadata"]["uid"]]
        validate("kube-event-record.v1.schema.json", record)
        assert record["owners"] == [_ref(replicaset), _ref(deployment)], pod["metadata"]["name"]
        assert record["workload"] == _ref(deployment)
        assert record["application"] == {
            "name": "checkout",
            "namespace": "shop",
            "found_by": "annotation",
        }
        # The default selected labels, the nearest object's first (the Pod's name, the
        # Deployment's part-of).
        assert record["labels"] == {
            "app.kubernetes.io/name": "checkout",
            "app.kubernetes.io/part-of": "shop",
        }
    assert collector.stop() == 0
