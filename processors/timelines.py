"""State as it stood just before a given offset of the raw topic. Pure.

Why: a worker writes its tables' changelogs and the domain topic with one producer, but not
atomically. A worker that dies (kill -9, a node lost) can have written the changelog entry of a
record whose domain event never reached Kafka. That record is read again after the restart (its
offset was not committed), and a table holding only "the last n seen" would call it a duplicate:
the event would be lost for good. So each value is kept with the offset of the raw record that set
it, and a record is judged against the state as it stood *before its own offset*. A record read
again sees what its first reading saw and decides the same: the same events, with the same ids.

A timeline is a JSON-friendly list of `[offset, value]` pairs in ascending offset order, one per
change. Offsets are those of one partition of the raw topic: a table key always lives in the
partition of its raw records (the raw key is the involved object), so they compare.

Entries below the committed offset are never needed again except the last of them (the value in
force at the committed offset, where any re-reading starts), so `record` folds them away; `keep`
bounds a timeline when the committed offset is not known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, cast

V = TypeVar("V")
Timeline = list[list[Any]]
"""`[[offset, value], ...]`, ascending offsets: what a table stores (as JSON)."""

KEEP = 32
"""Most changes a timeline keeps when the committed offset is unknown or far behind."""


def value_before(timeline: Sequence[Sequence[Any]] | None, offset: int, default: V) -> V:
    """The value set by the last change at an offset lower than `offset`, else `default`."""
    value: Any = default
    for at, set_to in timeline or ():
        if at >= offset:
            break
        value = set_to
    return cast(V, value)


def record(
    timeline: Sequence[Sequence[Any]] | None,
    offset: int,
    value: Any,
    *,
    committed: int | None,
    keep: int = KEEP,
) -> Timeline:
    """The timeline with `value` set at `offset` (replacing a change recorded there before)."""
    changes = sorted(
        [[at, set_to] for at, set_to in timeline or () if at != offset] + [[offset, value]],
        key=lambda change: int(change[0]),
    )
    if committed is not None:
        # Of the changes below the committed offset, only the last still matters.
        below = sum(1 for at, _ in changes if at < committed)
        changes = changes[max(0, below - 1) :]
    return changes[-keep:]
