"""What the tier's tests do to a real cluster and to the collector: write Events through both Event
APIs as controllers do, and start `python -m collectors` with the collector's own RBAC identity."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from herald_dev.infra import free_port
from herald_dev.processes import ServiceProcess
from herald_dev.realkube import RealKube
from tests.conftest import Topics

FAST = {
    "HERALD_CHECKPOINT_INTERVAL_S": "0.2",
    "HERALD_CONNECT_TIMEOUT_S": "2",
    "HERALD_CLUSTERS_RELOAD_S": "0.5",
    "HERALD_LOG_FORMAT": "text",
    "HERALD_BACKOFF_BASE_S": "0.1",
    "HERALD_BACKOFF_MAX_S": "1",
}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rollout(namespace: str, name: str = "payments") -> dict[str, Any]:
    return {
        "kind": "Rollout",
        "apiVersion": "argoproj.io/v1alpha1",
        "namespace": namespace,
        "name": name,
        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{name}")),
    }


def core_event(
    namespace: str,
    *,
    reason: str = "RolloutStepCompleted",
    message: str = "Rollout step 1/5 completed (setWeight: 20)",
    name: str | None = None,
    involved: dict[str, Any] | None = None,
    component: str = "rollouts-controller",
) -> dict[str, Any]:
    """A core/v1 Event as an old-style recorder (Argo Rollouts') writes it."""
    stamp = now()
    return {
        "metadata": {"name": name or f"payments.{uuid.uuid4().hex[:16]}", "namespace": namespace},
        "involvedObject": involved or rollout(namespace),
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "type": "Normal",
    }


def create(kube: RealKube, event: dict[str, Any]) -> dict[str, Any]:
    """Create a core/v1 Event; the server's object, as JSON."""
    with kube.admin() as api:
        response = client.CoreV1Api(api).create_namespaced_event(
            event["metadata"]["namespace"], event, _preload_content=False
        )
        created: dict[str, Any] = json.loads(response.data)
        return created


def recount(kube: RealKube, namespace: str, name: str, count: int) -> dict[str, Any]:
    """Patch an Event's count and lastTimestamp, as a recorder does on a repeat."""
    with kube.admin() as api:
        response = client.CoreV1Api(api).patch_namespaced_event(
            name, namespace, {"count": count, "lastTimestamp": now()}, _preload_content=False
        )
        patched: dict[str, Any] = json.loads(response.data)
        return patched


def delete(kube: RealKube, namespace: str, name: str) -> None:
    with kube.admin() as api:
        client.CoreV1Api(api).delete_namespaced_event(name, namespace)


def create_events_api_event(
    kube: RealKube,
    namespace: str,
    *,
    reason: str = "RolloutStepCompleted",
    note: str = "Rollout step 1/5 completed (setWeight: 20)",
    controller: str = "rollouts-controller",
) -> dict[str, Any]:
    """Create an Event through events.k8s.io/v1, as client-go's new recorder does."""
    body = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": f"payments.{uuid.uuid4().hex[:16]}", "namespace": namespace},
        "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingController": controller,
        "reportingInstance": f"{controller}-7c9d",
        "action": "Progressing",
        "reason": reason,
        "note": note,
        "type": "Normal",
        "regarding": rollout(namespace),
    }
    with kube.admin() as api:
        response = client.EventsV1Api(api).create_namespaced_event(
            namespace, body, _preload_content=False
        )
        created: dict[str, Any] = json.loads(response.data)
        return created


def start_collector(
    services: Callable[..., ServiceProcess],
    kube: RealKube,
    topics: Topics,
    directory: Path,
    *,
    cluster: str = "real",
    namespace: str | None = None,
    env: dict[str, str] | None = None,
    kubeconfig: Path | None = None,
) -> tuple[ServiceProcess, int]:
    """`python -m collectors` watching `kube` as the collector's ServiceAccount; (process, metrics
    port)."""
    port = free_port()
    config = kubeconfig or kube.collector_kubeconfig(
        directory / f"kubeconfig-{uuid.uuid4().hex[:6]}"
    )
    settings = {
        **FAST,
        **topics.env(),
        "HERALD_CLUSTER_NAME": cluster,
        "HERALD_KUBECONFIG": str(config),
        "HERALD_METRICS_PORT": str(port),
        **({"HERALD_WATCH_NAMESPACE": namespace} if namespace else {}),
        **(env or {}),
    }
    return services("collectors", settings), port


def objects(values: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """The raw records about Events of `namespace`, in topic order."""
    return [v for v in values if v["object"]["metadata"].get("namespace") == namespace]
