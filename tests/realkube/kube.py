"""What the tier's tests do to a real cluster and to the collector: write Events through both Event
APIs as controllers do, and start `python -m collectors` with the collector's own RBAC identity."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import urllib3
from confluent_kafka import Producer
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from collectors.checkpoints import KafkaCheckpointStore
from herald_dev.infra import free_port
from herald_dev.processes import ServiceProcess
from herald_dev.realkube import RealKube
from tests.conftest import Topics
from tests.support import http_get, wait_until

FAST = {
    "HERALD_CHECKPOINT_INTERVAL_S": "0.2",
    "HERALD_CONNECT_TIMEOUT_S": "2",
    "HERALD_CLUSTERS_RELOAD_S": "0.5",
    "HERALD_LOG_FORMAT": "text",
    "HERALD_BACKOFF_BASE_S": "0.1",
    "HERALD_BACKOFF_MAX_S": "1",
}


def new_namespace(kube: RealKube) -> str:
    """Create a namespace with a fresh name; its name."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    with kube.admin() as api:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


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


@contextmanager
def _admin(kube: RealKube, api: client.ApiClient | None) -> Iterator[client.ApiClient]:
    if api is not None:
        yield api
    else:
        with kube.admin() as fresh:
            yield fresh


def create(
    kube: RealKube, event: dict[str, Any], *, api: client.ApiClient | None = None
) -> dict[str, Any]:
    """Create a core/v1 Event; the server's object, as JSON."""
    with _admin(kube, api) as admin:
        response = client.CoreV1Api(admin).create_namespaced_event(
            event["metadata"]["namespace"], event, _preload_content=False
        )
        created: dict[str, Any] = json.loads(response.data)
        return created


_RETRIED_STATUSES = frozenset({0, 429, 500, 502, 503, 504})
"""0: the client's wrapping of a transport error (an SSL EOF from a server going down mid-request,
`ApiException(status=0, reason="SSLError...")`), as a broken connection is."""


def create_through_outages(
    kube: RealKube, event: dict[str, Any], *, api: client.ApiClient, timeout_s: float = 60
) -> dict[str, Any]:
    """Create a core/v1 Event, trying again while the API server is away (connection refused or
    broken, 5xx, 429) until `timeout_s`. A create whose answer was lost after the server took it
    is read back (409 AlreadyExists on the next try): the result is the Event the server holds."""
    namespace, name = event["metadata"]["namespace"], event["metadata"]["name"]
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return create(kube, event, api=api)
        except client.ApiException as e:
            if e.status == 409:
                response = client.CoreV1Api(api).read_namespaced_event(
                    name, namespace, _preload_content=False
                )
                held: dict[str, Any] = json.loads(response.data)
                return held
            if e.status not in _RETRIED_STATUSES or time.monotonic() > deadline:
                raise
        except (urllib3.exceptions.HTTPError, OSError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)  # the server is restarting: try again shortly


def create_many(
    kube: RealKube, events: list[dict[str, Any]], *, threads: int = 4
) -> list[dict[str, Any]]:
    """Create Events from a small thread pool (one API client per thread); the server's objects."""
    local = threading.local()
    clients: list[client.ApiClient] = []
    lock = threading.Lock()

    def one(event: dict[str, Any]) -> dict[str, Any]:
        if not hasattr(local, "api"):
            local.api = kube.admin()
            with lock:
                clients.append(local.api)
        return create_through_outages(kube, event, api=local.api)

    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(one, events))
    finally:
        for api in clients:
            api.close()


class EventWriter:
    """Creates Events (`core_event`, all about the same Rollout) one after another in a thread,
    until stopped, each through outages (`create_through_outages`): `created` is then exactly what
    the server holds, whatever happened to it meanwhile."""

    def __init__(
        self, kube: RealKube, namespace: str, *, prefix: str, interval_s: float = 0.02
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self._prefix = prefix
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._created: list[dict[str, Any]] = []
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name=f"writer-{prefix}", daemon=True)

    def __enter__(self) -> EventWriter:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            with self._kube.admin() as api:
                number = 0
                while not self._stop.is_set():
                    event = core_event(
                        self._namespace,
                        name=f"{self._prefix}-{number:05d}",
                        message=f"{self._prefix} {number}",
                    )
                    created = create_through_outages(self._kube, event, api=api)
                    with self._lock:
                        self._created.append(created)
                    number += 1
                    self._stop.wait(self._interval_s)
        except (client.ApiException, urllib3.exceptions.HTTPError, OSError, ValueError) as e:
            self._error = e  # reported by `stop`

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._created)

    def stop(self) -> list[dict[str, Any]]:
        """Stop writing; the Events created, in order. Raises what made the writer fail."""
        self._stop.set()
        self._thread.join(timeout=90)
        if self._error is not None:
            raise AssertionError(f"the writer failed: {self._error!r}") from self._error
        with self._lock:
            return list(self._created)


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
    regarding: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Create an Event through events.k8s.io/v1, as client-go's new recorder does; the server's
    object in the events.k8s.io/v1 view."""
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
        "regarding": regarding or rollout(namespace),
    }
    with kube.admin() as api:
        response = client.EventsV1Api(api).create_namespaced_event(
            namespace, body, _preload_content=False
        )
        created: dict[str, Any] = json.loads(response.data)
        return created


def repeat_events_api_event(
    kube: RealKube, namespace: str, name: str, count: int
) -> dict[str, Any]:
    """Record a repeat of an events.k8s.io/v1 Event as client-go's new recorder does: its
    `series` (count, lastObservedTime) is patched; `count` of the core/v1 view stays unset."""
    series = {
        "count": count,
        "lastObservedTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    with kube.admin() as api:
        response = client.EventsV1Api(api).patch_namespaced_event(
            name, namespace, {"series": series}, _preload_content=False
        )
        patched: dict[str, Any] = json.loads(response.data)
        return patched


def delete_events_api_event(kube: RealKube, namespace: str, name: str) -> None:
    with kube.admin() as api:
        client.EventsV1Api(api).delete_namespaced_event(name, namespace)


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
    ready: bool = True,
) -> tuple[ServiceProcess, int]:
    """`python -m collectors` watching `kube` as the collector's ServiceAccount; (process, metrics
    port). With `ready`, returns once /readyz says the watch has heard from the server (its first
    list is done): what a test writes after that arrives through the watch."""
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
    collector = services("collectors", settings)
    if ready:
        wait_until(lambda: http_get(port, "/readyz")[0] == 200 or not collector.alive, timeout_s=30)
        assert collector.alive, collector.log_tail()
    return collector, port


def objects(values: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """The raw records about Events of `namespace`, in topic order."""
    return [v for v in values if v["object"]["metadata"].get("namespace") == namespace]


def about(values: list[dict[str, Any]], uids: Iterable[str]) -> list[dict[str, Any]]:
    """The raw records about the Events with these uids, in topic order."""
    wanted = set(uids)
    return [v for v in values if v["object"]["metadata"]["uid"] in wanted]


def uids(events: Iterable[dict[str, Any]]) -> set[str]:
    return {e["metadata"]["uid"] for e in events}


def rv(event: dict[str, Any]) -> int:
    return int(event["metadata"]["resourceVersion"])


def metric(port: int, name: str, **labels: str) -> float:
    """A counter's value from the collector's /metrics (0 when absent). Labels match in any
    order: the exposition sorts them by name, not in the order the metric declares them."""
    status, text = http_get(port, "/metrics")
    assert status == 200, f"/metrics answered {status}"
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def start_processor(
    services: Callable[..., ServiceProcess], topics: Topics, directory: Path
) -> ServiceProcess:
    """`python -m processors` on the test's topics, with an app id and data of its own."""
    return services(
        "processors",
        {
            **topics.env(),
            "HERALD_PROCESSOR_APP_ID": f"realkube-{uuid.uuid4().hex[:8]}",
            "HERALD_PROCESSOR_DATA_DIR": str(directory / "processor-data"),
        },
    )


def saved_checkpoint(kafka: str, topics: Topics, scope: str) -> int | None:
    """The checkpoint of `scope` (`<cluster>/<namespace or *>`) on the checkpoint topic, read to
    its end exactly as a starting collector reads it; None if there is none."""
    producer = Producer({"bootstrap.servers": kafka})  # unused: the store writes through it
    try:
        loaded = KafkaCheckpointStore(producer, bootstrap=kafka, topic=topics.checkpoints).load()
    finally:
        producer.flush(0)
    checkpoint = loaded.get(scope)
    return None if checkpoint is None else int(checkpoint.resource_version)
