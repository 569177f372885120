"""What the consuming loop takes from the topics it reads: a record becomes an event the dispatcher
can store and send, or the reason it is set aside. Pure.

Any producer's CloudEvent is taken, in structured or binary mode
(`herald_contracts.decode_cloudevent`), whatever its type: another system's, and every Herald type
(`dev.herald.`), including the types of rule packs this dispatcher has never heard of (a user's pack,
a newer release's). A record that is no CloudEvent (not JSON, no `specversion` 1.0, a required
attribute missing) or a Herald type that breaks Herald's contract is set aside as undecodable. A record that decodes is not yet one the dispatcher can handle. Each check
below is a way a valid-looking record used to stop the dispatcher for good: the insert failed or the
sending thread raised, the process exited, and every restart died on the same batch, so no
subscription got anything any more.

- Python's `json` reads more than JSON: `NaN` and `Infinity` (receivers' parsers and Postgres
  `jsonb` refuse them), bodies in UTF-16 or UTF-32 (the body is stored and sent as UTF-8 text, and
  JSON between systems must be UTF-8, RFC 8259 section 8.1); and it raises other errors than the
  contract's on integers past 4,300 digits (ValueError) and deep nesting (RecursionError).
- The event id is sent as the `webhook-id` header and signed as the receiver reads it back from
  there: `http.client` encodes header values as Latin-1 (anything else raises), refuses line breaks,
  and receivers decode bytes past ASCII each their own way, so only visible ASCII signs reliably.
- The key orders an object's deliveries and is stored as text: a control character (U+0000 above
  all, which Postgres text cannot hold) cannot be.

What the contract allows inside strings but Postgres cannot hold (U+0000, unpaired surrogates) is
not a reason to refuse: the body carries them as valid `\\u0000` escapes and is sent unchanged; only
the copy kept for queries replaces them (`dispatchers.storable`). Whatever else the database still
refuses for a record's values is found by the consuming loop, which sets that record aside alone.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from herald_contracts import CloudEvent, ContractError, decode_cloudevent


class RefusalKind(enum.StrEnum):
    """Why a record is set aside, in a word (the label of the dead-letter metric)."""

    UNDECODABLE = "undecodable"
    """Not a CloudEvent of the contract, or not JSON Herald can read."""
    UNDELIVERABLE = "undeliverable"
    """An id that cannot be the webhook-id header, or a key that cannot be stored (also, found by
    the consuming loop: an id the store holds as another source's event)."""
    REFUSED_BY_DATABASE = "refused_by_database"
    """A value Postgres refused (found by the consuming loop, not here)."""


@dataclass(frozen=True)
class Admitted:
    event: CloudEvent
    body: bytes
    """The event's structured JSON (UTF-8), the record's value in structured mode: stored, and
    sent as it is."""


@dataclass(frozen=True)
class Refused:
    reason: str
    """Why, in words, for the dead letter's `herald.error` and the log."""
    kind: RefusalKind


def admit(
    value: bytes | None, *, key: bytes | None, headers: Sequence[tuple[str, bytes | None]] = ()
) -> Admitted | Refused:
    """The event in a record of a topic the dispatcher reads, if it can store and send it."""
    event = _decoded(value, key=key, headers=headers)
    if isinstance(event, Refused):
        return event
    return _refusal(event) or Admitted(event, event.body)


def _decoded(
    value: bytes | None, *, key: bytes | None, headers: Sequence[tuple[str, bytes | None]]
) -> CloudEvent | Refused:
    try:
        return decode_cloudevent(value, key=key, headers=headers)
    except ContractError as e:  # also json's own limits, and what is not UTF-8
        return Refused(str(e), RefusalKind.UNDECODABLE)


def _refusal(event: CloudEvent) -> Refused | None:
    if not _finite(event.attributes):  # a number too large for a float, such as 1e999, reads as inf
        return Refused(
            "record is not JSON Herald can read: a number too large", RefusalKind.UNDECODABLE
        )
    if not _webhook_id(event.id):
        return Refused(
            f"CloudEvent id {_shown(event.id)} cannot be sent as the webhook-id header:"
            " only visible ASCII characters can",
            RefusalKind.UNDELIVERABLE,
        )
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in event.key):
        return Refused(
            f"record key {_shown(event.key)} holds control characters", RefusalKind.UNDELIVERABLE
        )
    return None


def _webhook_id(text: str) -> bool:
    return all("!" <= c <= "~" for c in text)


def _finite(data: Any) -> bool:
    """No NaN or infinity anywhere in a decoded JSON value (iterative: no depth limit)."""
    stack: list[Any] = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return True


def _shown(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 80 else shown[:77] + "..."
