"""The contracts between Herald's three services: topic names, record schemas, encode and decode.

Every byte that crosses Kafka between collectors, processors and dispatchers is written and read
by the functions here, so that the schema lives in exactly one place (documented in
docs/contracts.md, with JSON Schemas under schemas/). The services never import each other; they
import this package.
"""

from herald_contracts.cloudevents import CloudEvent, decode_cloudevent, is_binary_mode
from herald_contracts.deadletters import DeadLetterHeader, dead_letter_headers
from herald_contracts.domain import (
    DOMAIN_CONTENT_TYPE,
    EVENT_TYPE_PREFIX,
    EVENT_TYPES,
    SCHEMA_BASE_URI,
    DomainEvent,
    data_schema_uri,
    decode_domain_event,
    domain_record_headers,
    encode_domain_event,
    object_source,
    resource_of_kind,
)
from herald_contracts.errors import ContractError
from herald_contracts.event_view import EventView, observed_at, view_event
from herald_contracts.raw import (
    AppRef,
    OwnerRef,
    Ownership,
    RawRecord,
    WatchType,
    decode_raw_record,
    encode_raw_record,
    raw_key,
)
from herald_contracts.times import checked_time, is_time, parse_time
from herald_contracts.topics import DEAD_LETTER_TOPIC, DOMAIN_TOPIC, RAW_TOPIC

__all__ = [
    "DEAD_LETTER_TOPIC",
    "DOMAIN_CONTENT_TYPE",
    "DOMAIN_TOPIC",
    "EVENT_TYPES",
    "EVENT_TYPE_PREFIX",
    "RAW_TOPIC",
    "SCHEMA_BASE_URI",
    "AppRef",
    "CloudEvent",
    "ContractError",
    "DeadLetterHeader",
    "DomainEvent",
    "EventView",
    "OwnerRef",
    "Ownership",
    "RawRecord",
    "WatchType",
    "checked_time",
    "data_schema_uri",
    "dead_letter_headers",
    "decode_cloudevent",
    "decode_domain_event",
    "decode_raw_record",
    "domain_record_headers",
    "encode_domain_event",
    "encode_raw_record",
    "is_binary_mode",
    "is_time",
    "object_source",
    "observed_at",
    "parse_time",
    "raw_key",
    "resource_of_kind",
    "view_event",
]
