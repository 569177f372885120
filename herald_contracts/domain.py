"""The domain-event contract: CloudEvents 1.0 in structured JSON mode on the domain topic.

Processors build `DomainEvent`s and encode them; dispatchers and any other Kafka consumer decode
them. The id is chosen by the producer and must be deterministic (the same source occurrence always
yields the same id), so duplicates can be absorbed downstream. The key names the object the event is
about, so one object's events stay in order on one partition.
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
)
"""Every catalogue name (the type without `EVENT_TYPE_PREFIX`), as subscriptions filter on them."""

_KIND_PLURALS = {"Rollout": "rollouts", "Application": "applications"}


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

    def to_cloudevent(self) -> dict[str, Any]:
        return {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": self.time,
            "datacontenttype": DATA_CONTENT_TYPE,
            "data": self.data,
        }


def object_source(*, cluster: str, namespace: str, kind: str, name: str) -> str:
    plural = _KIND_PLURALS.get(kind, kind.lower() + "s")
    return f"/clusters/{cluster}/namespaces/{namespace}/{plural}/{name}"


def encode_domain_event(event: DomainEvent) -> bytes:
    return json.dumps(event.to_cloudevent(), separators=(",", ":"), ensure_ascii=False).encode()


def decode_domain_event(data: bytes | None, *, key: bytes | None) -> DomainEvent:
    """Parse one domain-topic record; raise ContractError naming what is wrong."""
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
