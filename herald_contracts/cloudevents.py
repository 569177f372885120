"""Any producer's CloudEvent, as the dispatcher reads it from a Kafka record. Pure.

Herald's own events (`herald_contracts.domain`) are one kind of CloudEvent; other systems publish
theirs on the domain topic, or on further topics the dispatcher reads, and get the same delivery.
This module reads a record under the CloudEvents 1.0 Kafka protocol binding in either mode:

- structured mode: the value is the event in the JSON event format (the `content-type` header is
  `application/cloudevents+json...`, or absent: records without headers read as they always did);
- binary mode: the attributes are `ce_<name>` headers (what the Java SDK's `CloudEventSerializer`
  writes by default) and the value is the data, its media type in `content-type`. Such an event is
  turned into its structured JSON form, which is what is stored and sent to receivers.

Required are what the spec requires (`specversion` 1.0, non-empty `id`, `source`, `type`); `subject`
and `time` are optional (a `time` given must be RFC 3339); `data` may be any JSON or absent;
extension attributes pass through. A type starting with `dev.herald.` is Herald's: it must meet
Herald's stricter contract (`decode_domain_event`) and is carried with its `DomainEvent`, which
filters on cluster, namespace and name read.

What it does not do: decide whether the dispatcher can send or store the event (an id that cannot
be a `webhook-id` header, a key with control characters): that is `dispatchers.intake`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from herald_contracts.domain import (
    CONTENT_TYPE_HEADER,
    EVENT_TYPE_PREFIX,
    SPEC_VERSION,
    DomainEvent,
    decode_domain_event,
    encode_domain_event,
)
from herald_contracts.errors import ContractError, load_json_object
from herald_contracts.times import parse_time

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
BINARY_HEADER_PREFIX = "ce_"
REQUIRED_ATTRIBUTES = ("id", "source", "type")
"""Besides `specversion`: the CloudEvents 1.0 required attributes."""

Headers = Sequence[tuple[str, bytes | None]]


@dataclass(frozen=True)
class CloudEvent:
    id: str
    source: str
    type: str
    subject: str | None
    time: str | None
    """RFC 3339 as written, or None when the producer gave none."""
    attributes: Mapping[str, Any]
    """The whole event in its structured JSON form (every attribute, and `data` if any)."""
    body: bytes
    """The structured JSON as UTF-8: the record's value in structured mode, else built from the
    binary record. What is stored and sent."""
    key: str
    """The Kafka record key ("" when there is none): what orders deliveries."""
    herald: DomainEvent | None = None
    """Herald's own event (a `dev.herald.` type), else None."""

    @property
    def data(self) -> Any:
        """The `data` attribute (None when absent or carried as `data_base64`)."""
        return self.attributes.get("data")

    @classmethod
    def of(cls, event: DomainEvent, *, body: bytes | None = None) -> CloudEvent:
        """Herald's event as the CloudEvent it is encoded as; `body`: the bytes it was read from
        (else encoded here)."""
        return cls(
            id=event.id,
            source=event.source,
            type=event.type,
            subject=event.subject,
            time=event.time,
            attributes=event.to_cloudevent(),
            body=encode_domain_event(event) if body is None else body,
            key=event.key,
            herald=event,
        )


def is_binary_mode(headers: Headers) -> bool:
    """A record in binary mode: no structured `content-type`, and a `ce_specversion` header."""
    if _content_type(headers).lower().startswith(STRUCTURED_CONTENT_TYPE):
        return False
    return any(name.lower() == f"{BINARY_HEADER_PREFIX}specversion" for name, _ in headers)


def decode_cloudevent(
    value: bytes | None, *, key: bytes | None, headers: Headers = ()
) -> CloudEvent:
    """The CloudEvent in a record, or ContractError saying why the record is not one."""
    if is_binary_mode(headers):
        payload = _from_binary(value, headers)
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    else:
        payload = load_json_object(value)
        body = value or b""
    # JSON event format 1.0, 2.2: a null attribute is treated as unset (the body keeps it as sent).
    payload = {name: v for name, v in payload.items() if v is not None}
    if "data" in payload and "data_base64" in payload:
        raise ContractError("a CloudEvent has 'data' or 'data_base64', not both (JSON format 3.1)")
    if payload.get("specversion") != SPEC_VERSION:
        raise ContractError(f"specversion must be {SPEC_VERSION!r}")
    for name in REQUIRED_ATTRIBUTES:
        if not isinstance(payload.get(name), str) or not payload[name]:
            raise ContractError(f"CloudEvent attribute {name!r} must be a non-empty string")
    for name in ("subject", "time", "datacontenttype", "dataschema"):
        if name in payload and (not isinstance(payload[name], str) or not payload[name]):
            raise ContractError(f"CloudEvent attribute {name!r} must be a non-empty string")
    if "time" in payload:
        parse_time(payload["time"], field="CloudEvent attribute 'time'")
    try:
        decoded_key = key.decode() if key is not None else ""
    except UnicodeDecodeError as e:
        raise ContractError("record key is not UTF-8") from e
    herald = None
    if payload["type"].startswith(EVENT_TYPE_PREFIX):
        herald = decode_domain_event(body, key=key)
    return CloudEvent(
        id=payload["id"],
        source=payload["source"],
        type=payload["type"],
        subject=payload.get("subject"),
        time=payload.get("time"),
        attributes=payload,
        body=body,
        key=decoded_key,
        herald=herald,
    )


def _from_binary(value: bytes | None, headers: Headers) -> dict[str, Any]:
    """The structured form of a binary-mode record (Kafka protocol binding 3.2): each `ce_` header
    an attribute (UTF-8), `content-type` the `datacontenttype`, the value the data: JSON data
    (no media type, `application/json` or `+json`) as JSON, anything else as `data_base64`."""
    payload: dict[str, Any] = {}
    for name, raw in headers:
        lower = name.lower()
        if not lower.startswith(BINARY_HEADER_PREFIX) or raw is None:
            continue
        try:
            payload[lower.removeprefix(BINARY_HEADER_PREFIX)] = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ContractError(f"header {name!r} is not UTF-8") from e
    content_type = _content_type(headers)
    if content_type:
        payload["datacontenttype"] = content_type
    if value is None:
        return payload
    media = content_type.split(";")[0].strip().lower()
    if not media or media == "application/json" or media.endswith("+json"):
        try:
            payload["data"] = json.loads(value.decode("utf-8"), parse_constant=_not_a_number)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise ContractError(
                f"binary-mode data is not the JSON its content type says: {e}"
            ) from e
    else:
        payload["data_base64"] = base64.b64encode(value).decode()
    return payload


def _content_type(headers: Headers) -> str:
    for name, raw in headers:
        if name.lower() == CONTENT_TYPE_HEADER and raw is not None:
            return raw.decode("utf-8", errors="replace").strip()
    return ""


def _not_a_number(name: str) -> Any:
    raise ContractError(f"{name} is not a JSON number")
