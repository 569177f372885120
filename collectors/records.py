"""Turn one watch event into the raw record the contract describes. Pure: no I/O, no clock.

The record keeps the Event as the API server returned it, with two exceptions: `metadata.managedFields`
is removed (noise, and large), and a message too long for a Kafka record is shortened. Kubernetes puts
no limit on the message of a core/v1 Event created without `eventTime` (a kubelet probe failure can
quote a megabyte of probe output; etcd stores objects up to 1.5 MiB), while Kafka refuses records
over `message.max.bytes` (1 MB by default). Rather than lose such an Event, its message is cut to
`max_bytes` (as it takes in the record: UTF-8 with JSON's escapes), ends with a marker saying so
and giving its original length, and the annotation `herald.dev/original-message-bytes` gives that
length too (bytes of UTF-8), for programs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from herald_contracts import Ownership, RawRecord, WatchType

MESSAGE_BYTES_ANNOTATION = "herald.dev/original-message-bytes"
"""Set on an Event whose message was shortened: the original message's length in bytes of UTF-8."""

_MAX_BYTES_PER_CHARACTER = 6
"""The most a character can take in a JSON string: a control character's `\\uXXXX` escape."""


@dataclass(frozen=True)
class Bounded:
    event: dict[str, Any]
    shortened_from: int | None = None
    """The original message's length in bytes of UTF-8 when it was shortened, else None."""


def to_raw_record(
    *,
    cluster: str,
    watch_type: str,
    event: dict[str, Any],
    collected_at: str,
    ownership: Ownership | None = None,
) -> RawRecord:
    """The record for one ADDED/MODIFIED/DELETED watch event, `metadata.managedFields` removed.

    The event is copied, never changed in place, so the caller's object stays as the API gave it.
    """
    obj = dict(event)
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        obj["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return RawRecord(
        cluster=cluster,
        watch_type=WatchType(watch_type),
        collected_at=collected_at,
        object=obj,
        ownership=ownership,
    )


def message_size(message: str) -> int:
    """Bytes the message takes in the record: its UTF-8, with JSON's escapes (a control character
    counts as its six-byte escape), without the quotes."""
    encoded = json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return len(encoded) - 2


def shortened_marker(original_bytes: int) -> str:
    return f" [shortened by Herald from {original_bytes} bytes]"


def bound_message(event: dict[str, Any], *, max_bytes: int) -> Bounded:
    """The event with its message shortened to at most `max_bytes` (by `message_size`), marker
    included, and the annotation set; the event itself when its message fits or is not a string.

    The cut falls between characters (never inside one's UTF-8 or escape), keeping the longest
    prefix that fits with the marker. The caller's event is not changed.
    """
    message = event.get("message")
    if not isinstance(message, str) or len(message) * _MAX_BYTES_PER_CHARACTER <= max_bytes:
        return Bounded(event)
    if message_size(message) <= max_bytes:
        return Bounded(event)
    original_bytes = len(message.encode("utf-8", "surrogatepass"))
    marker = shortened_marker(original_bytes)
    room = max_bytes - message_size(marker)
    # Every character takes at least one byte, so no more than `room` of them can fit; sizes add
    # up character by character, so the longest prefix that fits is found by bisection.
    low, high = 0, min(len(message), max(room, 0))
    while low < high:
        middle = (low + high + 1) // 2
        if message_size(message[:middle]) <= room:
            low = middle
        else:
            high = middle - 1
    shortened = dict(event)
    shortened["message"] = message[:low] + marker
    metadata = dict(event.get("metadata") or {})
    annotations = metadata.get("annotations")
    metadata["annotations"] = {
        **(annotations if isinstance(annotations, dict) else {}),
        MESSAGE_BYTES_ANNOTATION: str(original_bytes),
    }
    shortened["metadata"] = metadata
    return Bounded(shortened, shortened_from=original_bytes)
