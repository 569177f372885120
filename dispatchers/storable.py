"""Text and JSON as Postgres can hold them: `text` and `jsonb` refuse U+0000, and unpaired
surrogates cannot be encoded to the database's UTF-8 at all. Pure.

Both come from outside, legally: a CloudEvent's strings may hold them as JSON escapes (`\\u0000`,
`\\ud800`), and a receiver may answer with a NUL byte in its body. Written as they are, the insert
fails; in the consuming loop that stopped the dispatcher on every restart, in a sending worker it
stopped it on every attempt at that receiver. So every value from outside that is kept only to be
read by people and queries (the event's `payload` and `source`, an attempt's response and error)
goes through here: each such character becomes U+FFFD, the replacement character. What is sent is
never changed: an event's body is stored as the exact text read, where these are escapes.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """`text` with U+0000 and surrogates replaced (a valid pair cannot occur in a Python str)."""
    return _UNSTORABLE.sub(REPLACEMENT, text)


def storable_json(value: Any) -> Any:
    """A decoded JSON value with every string (object keys too) made storable; iterative, so no
    depth is too deep."""
    top: list[Any] = [value]
    stack: list[tuple[Any, Any, Any]] = [(top, 0, value)]  # (container, slot, value to copy)
    while stack:
        container, slot, item = stack.pop()
        if isinstance(item, str):
            container[slot] = storable_text(item)
        elif isinstance(item, dict):
            copy: dict[str, Any] = {}
            container[slot] = copy
            for k, v in item.items():
                name = storable_text(k)
                copy[name] = None
                stack.append((copy, name, v))
        elif isinstance(item, list):
            items: list[Any] = [None] * len(item)
            container[slot] = items
            stack.extend((items, i, v) for i, v in enumerate(item))
        else:
            container[slot] = item
    return top[0]
