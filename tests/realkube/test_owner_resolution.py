"""Events name the workload and the Argo CD application of what they are about, resolved from the
collector's metadata-only caches of the owning kinds, as the collector's least-privilege identity
(the Helm chart's ClusterRole as rendered, applied verbatim) sees them. No controllers run in the
tier: the owner objects are created through the API with the owner references their controllers
would set."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client

from collectors.kube import api_client
from collectors.kubemeta import KubeMetadataSource
from collectors.owners import Resource
from herald_contracts import SCHEMA_BASE_URI, decode_raw_record
from herald_dev.processes import ServiceProcess
from herald_dev.realkube import RealKube
from processors.interpreting import interpret
from processors.packs import load_catalogue
from tests.conftest import Topics
from tests.realkube.kube import (
    core_event,
    create,
    metric,
    objects,
    start_collector,
    start_processor,
)
from tests.support import TopicReader, validate, wait_until

TRACKING = "argocd.argoproj.io/tracking-id"
INSTANCE = "app.kubernetes.io/instance"
ROLLOUTS_CRD = "rollouts.argoproj.io"
KUBERNETES = load_catalogue(builtin=("argo-rollouts", "argo-cd", "kubernetes"))


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
        # The processor with the kubernetes pack enabled: the kubelet's back-off, as the collector
        # published it, is a container restarting, naming the Deployment and its Application.
        outcome = interpret(
            decode_raw_record(json.dumps(record).encode()), last_n=None, catalogue=KUBERNETES
        )
        [domain_event] = outcome.events
        assert domain_event.type == "dev.herald.kubernetes.container_restarting"
        validate(domain_event.dataschema.removeprefix(SCHEMA_BASE_URI), domain_event.data)
        assert domain_event.data["kind"] == "Pod"
        assert domain_event.data["name"] == pod["metadata"]["name"]
        assert domain_event.data["container"] == "checkout"
        assert domain_event.data["source_message_understood"] is True
        assert domain_event.data["workload"] == {"kind": "Deployment", "name": "checkout"}
        assert domain_event.data["application"] == {
            "name": "checkout",
            "namespace": "shop",
            "found_by": "annotation",
        }
    assert collector.stop() == 0


def test_the_caches_get_only_metadata_from_the_real_server_as_the_collector(
    real_kube: RealKube, namespace: str, tmp_path: Path
) -> None:
    source = KubeMetadataSource(
        api_client(
            kubeconfig=real_kube.collector_kubeconfig(tmp_path / "kubeconfig"), context=None
        ),
        namespace=namespace,
        connect_timeout_s=2,
        read_timeout_s=10,
        watch_read_margin_s=5,
    )
    with real_kube.admin() as admin:
        replicaset = {"kind": "ReplicaSet", "apiVersion": "apps/v1"}
        replicaset["metadata"] = {"name": "checkout-1", "uid": "not-checked-by-the-server"}
        listed = _pod_of(admin, namespace, replicaset, "checkout-1-a")
        page = source.list_page(Resource.PODS, limit=10, continue_token=None)
        watched = _pod_of(admin, namespace, replicaset, "checkout-1-b")
    [item] = page.items
    assert item["metadata"]["uid"] == listed["metadata"]["uid"]
    assert "spec" not in item
    assert "status" not in item
    assert item["metadata"]["ownerReferences"][0]["name"] == "checkout-1"
    events = source.watch(Resource.PODS, resource_version=page.resource_version, timeout_s=5)
    first = next(events)
    events.close()
    assert first.type == "ADDED"
    assert first.object["kind"] == "PartialObjectMetadata"
    assert first.object["metadata"]["uid"] == watched["metadata"]["uid"]
    assert "spec" not in first.object


def test_a_rollout_event_of_an_application_tracked_by_label_gives_a_domain_event_naming_both(
    kafka: str,
    topics: Topics,
    real_kube: RealKube,
    namespace: str,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    rollout = _create_rollout(
        real_kube,
        namespace,
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "payments", "labels": {INSTANCE: "payments-prod"}},
            "spec": {},
        },
    )
    involved = {
        "kind": "Rollout",
        "apiVersion": "argoproj.io/v1alpha1",
        "namespace": namespace,
        "name": "payments",
        "uid": rollout["metadata"]["uid"],
    }
    event = create(real_kube, core_event(namespace, involved=involved))
    collector, _ = start_collector(services, real_kube, topics, tmp_path, namespace=namespace)
    processor = start_processor(services, topics, tmp_path)
    raw = TopicReader(kafka, topics.raw)
    domain = TopicReader(kafka, topics.domain)
    try:
        assert raw.read_until(lambda v: len(objects(v, namespace)) >= 1, timeout_s=30)
        assert domain.read_until(lambda v: len(v) >= 1, timeout_s=90), processor.log_tail(40)
    finally:
        raw.close()
        domain.close()
    [record] = objects(raw.values, namespace)
    assert record["object"]["metadata"]["uid"] == event["metadata"]["uid"]
    assert record["owners"] == []
    assert record["workload"] == _ref({**rollout, "kind": "Rollout"})
    assert record["application"] == {
        "name": "payments-prod",
        "namespace": None,
        "found_by": "label",
    }
    [domain_event] = domain.values
    assert domain_event["type"] == "dev.herald.rollout.step_advanced"
    assert domain_event["data"]["workload"] == {"kind": "Rollout", "name": "payments"}
    assert domain_event["data"]["application"] == {
        "name": "payments-prod",
        "namespace": None,
        "found_by": "label",
    }
    assert collector.stop() == 0


def _create_rollout(kube: RealKube, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    """Install Argo Rollouts' CRD (reduced to what the API server needs), then create the Rollout,
    trying again while the new resource is not served yet (404) or its storage initializes (429)."""
    _install_rollouts_crd(kube)
    deadline = time.monotonic() + 30
    with kube.admin() as admin:
        custom = client.CustomObjectsApi(admin)
        while True:
            try:
                return _json(
                    custom.create_namespaced_custom_object(
                        "argoproj.io",
                        "v1alpha1",
                        namespace,
                        "rollouts",
                        body,
                        _preload_content=False,
                    )
                )
            except client.ApiException as e:
                if e.status not in (404, 429) or time.monotonic() > deadline:
                    raise
            time.sleep(0.1)  # polling the server until it serves the CRD, with a deadline


def _install_rollouts_crd(kube: RealKube) -> None:
    """Argo Rollouts' CRD, reduced to what the API server needs (served a moment later)."""
    body = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": ROLLOUTS_CRD},
        "spec": {
            "group": "argoproj.io",
            "names": {"kind": "Rollout", "listKind": "RolloutList", "plural": "rollouts"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    with kube.admin() as admin:
        extensions = client.ApiextensionsV1Api(admin)
        try:
            extensions.create_custom_resource_definition(body, _preload_content=False)
        except client.ApiException as e:
            if e.status != 409:  # another test of the session installed it
                raise
