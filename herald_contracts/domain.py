"""The domain-event contract: CloudEvents 1.0 in structured JSON mode on the domain topic.

Processors build `DomainEvent`s and encode them; dispatchers and any other Kafka consumer decode
them. The id is chosen by the producer and must be deterministic (the same source occurrence always
yields the same id), so duplicates can be absorbed downstream. The key names the object the event is
about, so one object's events stay in order on one partition.

Every domain record carries the header `content-type: application/cloudevents+json; charset=utf-8`
(`domain_record_headers`): by the CloudEvents Kafka protocol binding (section 3) a record without it
is in binary mode, which the Java SDK's `CloudEventDeserializer` (Spring, Quarkus, Knative) refuses
for want of `ce_` headers. Every event names the JSON Schema of its type's `data` in `dataschema`
(`data_schema_uri`), published under `schemas/data/` with that URI as its `$id`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from herald_contracts.errors import ContractError, load_json_object
from herald_contracts.times import parse_time

SPEC_VERSION = "1.0"
EVENT_TYPE_PREFIX = "dev.herald."
DATA_CONTENT_TYPE = "application/json"

CONTENT_TYPE_HEADER = "content-type"
DOMAIN_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
"""The `content-type` header of every domain record: structured mode, JSON event format, UTF-8
(the CloudEvents Kafka protocol binding, 3.3.1)."""

SCHEMA_BASE_URI = "https://herald.dev/schemas/"
"""Where the `$id`s of the files under `schemas/` start: `<SCHEMA_BASE_URI><path under schemas/>`."""

EVENT_TYPES: tuple[str, ...] = (
    "rollout.update_started",
    "rollout.step_advanced",
    "rollout.paused",
    "rollout.resumed",
    "rollout.aborted",
    "rollout.completed",
    "application.health_changed",
    "application.sync_changed",
    "application.operation_started",
    "application.operation_completed",
    "application.resource_action",
    "application.created",
    "application.deleted",
    "application.spec_updated",
    "flux.kustomization_reconciled",
    "flux.kustomization_failed",
    "flux.helmrelease_succeeded",
    "flux.helmrelease_failed",
    "kubernetes.container_restarting",
    "kubernetes.container_killed",
    "kubernetes.image_pull_failed",
    "kubernetes.job_completed",
    "kubernetes.job_failed",
    "kubernetes.hpa_rescaled",
    "kubernetes.replica_set_scaled",
    "kubernetes.node_not_ready",
    "kubernetes.node_oom_kill",
    "kubernetes.node_system_oom",
)
"""Every built-in pack's catalogue names (the type without `EVENT_TYPE_PREFIX`), enabled by default
or not: what subscriptions' type filters are checked against (a user's pack's types are not here,
and are delivered all the same)."""


@dataclass(frozen=True)
class DomainEvent:
    id: str
    source: str
    """`/clusters/<cluster>/namespaces/<ns>/<kind plural>/<name>`."""
    type: str
    """`dev.herald.<catalogue name>`, e.g. `dev.herald.rollout.completed`."""
    subject: str
    time: str
    """RFC 3339: when the transition was observed, taken from the Kubernetes Event."""
    data: dict[str, Any]
    key: str
    """`<cluster>/<namespace>/<kind>/<name>`: the Kafka key, not part of the CloudEvent body."""

    @property
    def catalogue_name(self) -> str:
        return self.type.removeprefix(EVENT_TYPE_PREFIX)

    @property
    def dataschema(self) -> str:
        """The URI of the JSON Schema of this type's `data` (`data_schema_uri`)."""
        return data_schema_uri(self.catalogue_name)

    def to_cloudevent(self) -> dict[str, Any]:
        return {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": self.time,
            "datacontenttype": DATA_CONTENT_TYPE,
            "dataschema": self.dataschema,
            "data": self.data,
        }


def data_schema_uri(catalogue_name: str) -> str:
    """The `dataschema` of events of one type (its catalogue name, e.g. `rollout.completed`):
    `https://herald.dev/schemas/data/<catalogue name>.v1.schema.json`, the `$id` of the file
    `schemas/data/<catalogue name>.v1.schema.json`. An incompatible change of a type's data gets a
    new URI (and, by the versioning rule of docs/contracts.md, a new topic)."""
    return f"{SCHEMA_BASE_URI}data/{catalogue_name}.v1.schema.json"


def domain_record_headers() -> list[tuple[str, bytes]]:
    """The Kafka headers of a domain record, a new list each call (producers may add to it):
    `[("content-type", b"application/cloudevents+json; charset=utf-8")]`. Every producer of domain
    records sends them, so that every CloudEvents SDK reads the record in structured mode."""
    return [(CONTENT_TYPE_HEADER, DOMAIN_CONTENT_TYPE.encode())]


def object_source(*, cluster: str, namespace: str, kind: str, name: str) -> str:
    """The CloudEvent `source` of an event about an object:
    `/clusters/<cluster>/namespaces/<namespace>/<resource>/<name>`, the resource being the kind's
    plural (`resource_of_kind`)."""
    return f"/clusters/{cluster}/namespaces/{namespace}/{resource_of_kind(kind)}/{name}"


def resource_of_kind(kind: str) -> str:
    """The resource name of a kind as Kubernetes guesses it when no discovery says otherwise
    (apimachinery's `meta.UnsafeGuessKindToResource`): lower case, `-s` gets `-es` (`Ingress` ->
    `ingresses`), `-y` gets `-ies` (`NetworkPolicy` -> `networkpolicies`), else `-s` (`Rollout` ->
    `rollouts`, `Canary` -> `canaries`). Unlike that guess, a `y` after a vowel keeps it
    (`Gateway` -> `gateways`, as the Gateway API's resource is named)."""
    singular = kind.lower()
    if singular.endswith("s"):
        return singular + "es"
    if singular.endswith("y") and singular[-2:-1] not in ("", "a", "e", "i", "o", "u"):
        return singular[:-1] + "ies"
    return singular + "s"


def encode_domain_event(event: DomainEvent) -> bytes:
    """The record value: the CloudEvent as compact UTF-8 JSON. Send it with `domain_record_headers()`
    and the key `event.key`."""
    return json.dumps(event.to_cloudevent(), separators=(",", ":"), ensure_ascii=False).encode()


def decode_domain_event(data: bytes | None, *, key: bytes | None) -> DomainEvent:
    """Parse one domain-topic record's value and key; raise ContractError naming what is wrong.

    The `content-type` header is not looked at: the value is read as a structured-mode JSON event
    whatever the headers say, so records written before the header existed (none of them has it)
    read as they always did. Extension attributes are allowed and left out of the `DomainEvent`;
    `dataschema`, when present, must be a non-empty string (the spec's non-empty URI), and is not
    kept either: it follows from the type."""
    payload = load_json_object(data)
    if payload.get("specversion") != SPEC_VERSION:
        raise ContractError(f"specversion must be {SPEC_VERSION!r}")
    fields: dict[str, str] = {}
    for name in ("id", "source", "type", "subject", "time"):
        value = payload.get(name)
        if not isinstance(value, str) or not value:
            raise ContractError(f"CloudEvent attribute {name!r} must be a non-empty string")
        fields[name] = value
    parse_time(fields["time"], field="CloudEvent attribute 'time'")
    dataschema = payload.get("dataschema")
    if dataschema is not None and (not isinstance(dataschema, str) or not dataschema):
        raise ContractError("CloudEvent attribute 'dataschema' must be a non-empty string")
    if not fields["type"].startswith(EVENT_TYPE_PREFIX):
        raise ContractError(f"type must start with {EVENT_TYPE_PREFIX!r}")
    data_field = payload.get("data")
    if not isinstance(data_field, dict):
        raise ContractError("CloudEvent 'data' must be a JSON object")
    try:
        decoded_key = key.decode() if key is not None else ""
    except UnicodeDecodeError as e:
        raise ContractError("record key is not UTF-8") from e
    return DomainEvent(data=data_field, key=decoded_key, **fields)
