"""Helpers the tests share: Kafka produce/consume, Kubernetes Event builders, schema validation."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from confluent_kafka import Consumer, Producer
from referencing import Registry, Resource

from herald_contracts import DomainEvent, domain_record_headers, encode_domain_event, view_event

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"

ROLLOUT = {
    "kind": "Rollout",
    "namespace": "billing",
    "name": "payments",
    "uid": "7d3c1a52-3b8e-4a43-9c55-1f0e6b2d9a10",
    "apiVersion": "argoproj.io/v1alpha1",
    "resourceVersion": "48211102",
}


@functools.cache
def schema_registry() -> Registry:
    """Every schema under schemas/, by its `$id`: the domain event's envelope refers to the data
    schema of each type (schemas/data/) by URI, as a consumer's registry would."""
    resources = [
        Resource.from_contents(json.loads(path.read_text()))
        for path in sorted(SCHEMAS.rglob("*.schema.json"))
    ]
    return Registry().with_resources((resource.id(), resource) for resource in resources)


def validate(schema_name: str, document: Any) -> None:
    """Validate against a schema under schemas/ (a path relative to it), its references resolved
    among the published schemas only, date-time formats checked."""
    schema = json.loads((SCHEMAS / schema_name).read_text())
    jsonschema.Draft202012Validator(
        schema,
        registry=schema_registry(),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    ).validate(document)


def rollout_event(
    reason: str,
    message: str,
    *,
    name: str | None = None,
    uid: str | None = None,
    count: int | None = None,
    component: str = "rollouts-controller",
    reporting: str = "rollouts-controller",
    involved: dict[str, Any] | None = None,
    last_timestamp: str = "2026-08-20T09:16:53Z",
) -> dict[str, Any]:
    """A core/v1 Event as Argo Rollouts' recorder writes it (see shared/reference/argo-events.md)."""
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {
            "name": name or f"payments.{uuid.uuid4().int & 0xFFFFFFFFFFFFFFFF:x}",
            "namespace": "billing",
            "uid": uid or str(uuid.uuid4()),
            "resourceVersion": "1",
            "creationTimestamp": "2026-08-20T09:14:27Z",
            "managedFields": [{"manager": "rollouts-controller", "operation": "Update"}],
        },
        "involvedObject": dict(involved or ROLLOUT),
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "firstTimestamp": "2026-08-20T09:14:27Z",
        "lastTimestamp": last_timestamp,
        "type": "Normal",
        "eventTime": None,
        "reportingComponent": reporting,
        "reportingInstance": "",
    }
    if count is not None:
        event["count"] = count
    return event


def events_api_event(
    reason: str,
    message: str,
    *,
    name: str | None = None,
    uid: str | None = None,
    controller: str = "rollouts-controller",
    instance: str | None = None,
    series_count: int | None = None,
    involved: dict[str, Any] | None = None,
    event_time: str = "2026-08-20T09:14:27.482913Z",
    last_observed_time: str = "2026-08-20T09:16:53.120334Z",
) -> dict[str, Any]:
    """The core/v1 view (what the collector watches) of an Event written through events.k8s.io/v1
    by client-go's `tools/events` recorder, as a real kube-apiserver 1.37 returns it: `source: {}`,
    no `count`, null `firstTimestamp`/`lastTimestamp`; the emitter in `reportingComponent` and
    `reportingInstance` (`<controller>-<hostname>`), `eventTime` in microseconds, and a
    `series` (`count` >= 2) once repeated (see shared/reference/real-kubernetes.md)."""
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {
            "name": name or f"payments.{uuid.uuid4().int & 0xFFFFFFFFFFFFFFFF:x}",
            "namespace": "billing",
            "uid": uid or str(uuid.uuid4()),
            "resourceVersion": "1",
            "creationTimestamp": "2026-08-20T09:14:27Z",
            "managedFields": [{"manager": controller, "operation": "Update"}],
        },
        "involvedObject": dict(involved or ROLLOUT),
        "reason": reason,
        "message": message,
        "source": {},
        "firstTimestamp": None,
        "lastTimestamp": None,
        "type": "Normal",
        "eventTime": event_time,
        "action": "Update",
        "reportingComponent": controller,
        "reportingInstance": instance or f"{controller}-argo-rollouts-5d4c9b7f8-x2k4q",
    }
    if series_count is not None:
        event["series"] = {"count": series_count, "lastObservedTime": last_observed_time}
    return event


def producer(bootstrap: str) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})


def produce(
    bootstrap: str,
    topic: str,
    records: list[tuple[bytes | None, bytes | None]],
    *,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Write records (key, value), each with `headers` (none by default)."""
    p = producer(bootstrap)
    for key, value in records:
        p.produce(topic, key=key, value=value, headers=headers)
    assert p.flush(30) == 0


def produce_domain_events(bootstrap: str, topic: str, events: Iterable[DomainEvent]) -> None:
    """Write domain events as the processors do: key, encoded value and `domain_record_headers()`."""
    produce(
        bootstrap,
        topic,
        [(e.key.encode(), encode_domain_event(e)) for e in events],
        headers=domain_record_headers(),
    )


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    partition: int
    offset: int


def consume(
    bootstrap: str, topic: str, *, count: int, timeout_s: float = 30, linger_s: float = 0
) -> list[Record]:
    """Read from the beginning until `count` records arrived or the timeout passed, then on for
    `linger_s` more (anything read then is an extra the caller can see)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    lingering = False
    try:
        while time.monotonic() < deadline:
            if len(records) >= count and not lingering:
                lingering, deadline = True, time.monotonic() + linger_s
                continue
            for message in consumer.consume(num_messages=100, timeout=0.5):
                if message.error() is not None:
                    continue
                records.append(
                    Record(
                        key=message.key(),
                        value=message.value(),
                        headers=dict(message.headers() or []),
                        partition=message.partition() or 0,
                        offset=message.offset() or 0,
                    )
                )
    finally:
        consumer.close()
    return records


def replay(lines: list[str], *, env: dict[str, str], path: Path) -> None:
    """Publish Events to the raw topic exactly as the watcher would, with `python -m collectors
    replay` (the topics and broker from `env`): `lines` are Events as JSON, each with `_cluster` and
    `_watch_type`, written to `path` first."""
    path.write_text("\n".join(lines) + "\n")
    replayed = subprocess.run(
        [sys.executable, "-m", "collectors", "replay", str(path)],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert replayed.returncode == 0, replayed.stderr


def wait_until(condition: Any, *, timeout_s: float = 30, interval_s: float = 0.2) -> Any:
    """Poll `condition()` until it returns something truthy; return it, or fail at the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s: last result {result!r}")
        time.sleep(interval_s)


class TopicReader:
    """Reads a topic from the beginning, keeping everything read, until a condition holds."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"test-reader-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        self._consumer.subscribe([topic])
        self.values: list[dict[str, Any]] = []
        self.keys: list[bytes | None] = []
        """The records' keys, in the order of `values`."""

    def read_until(self, condition: Any, *, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while True:
            for message in self._consumer.consume(num_messages=1000, timeout=0.3):
                if message.error() is None and message.value():
                    self.values.append(json.loads(message.value()))
                    self.keys.append(message.key())
            if condition(self.values):
                return True
            if time.monotonic() > deadline:
                return False

    def close(self) -> None:
        self._consumer.close()


def occurrence(event: dict[str, Any]) -> tuple[str, int]:
    """(uid, count): what tells one occurrence of an Event from another, the count read as the
    contract reads it (`series.count`, else `count`, else 1)."""
    return (event["metadata"]["uid"], view_event(event).count)


WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"""The Standard Webhooks specification's example secret."""


def domain_event(
    n: int = 0,
    *,
    name: str = "payments",
    cluster: str = "c",
    catalogue: str = "rollout.step_advanced",
    event_id: str | None = None,
) -> DomainEvent:
    """A domain event about rollout `name` in namespace billing; a fresh id unless given."""
    return DomainEvent(
        id=event_id or f"event-{name}-{n}-{uuid.uuid4().hex[:8]}",
        source=f"/clusters/{cluster}/namespaces/billing/rollouts/{name}",
        type=f"dev.herald.{catalogue}",
        subject=name,
        time="2026-08-20T09:00:00Z",
        data={"cluster": cluster, "namespace": "billing", "name": name, "step_index": n},
        key=f"{cluster}/billing/Rollout/{name}",
    )


def http_get(port: int, path: str) -> tuple[int, str]:
    """GET a service's endpoint on 127.0.0.1: (status, body), or (0, "") while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""
