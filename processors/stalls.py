"""A guard against Faust's recovery race (faust-streaming issue #596). Pure.

When a worker joins or restarts, Faust replays the tables' changelogs; records of the raw topic that
were fetched meanwhile can be dropped from its in-memory queues and never fetched again. Their
offsets are then missing from the acknowledged ones, so Faust, which commits only a contiguous run,
stops committing that partition, and the dropped records are not processed until the worker starts
over from the committed offset. The guard notices a partition whose acknowledged offsets start after
its committed one and stay so; `processors.app` then restarts the worker in place, which re-reads from
the committed offset (the occurrence table absorbs what had been processed already).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence


def gapped(
    acked: Mapping[Hashable, Sequence[int]], committed: Mapping[Hashable, int | None]
) -> set[Hashable]:
    """Partitions whose acknowledged offsets start after the committed offset: a hole at the head."""
    return {
        tp
        for tp, offsets in acked.items()
        if offsets and committed.get(tp) is not None and min(offsets) > (committed[tp] or 0)
    }


class StallGuard:
    """Reports partitions that have been gapped at the same committed offset for `after_s`."""

    def __init__(self, *, after_s: float) -> None:
        self.after_s = after_s
        self._since: dict[Hashable, tuple[int | None, float]] = {}

    def check(
        self,
        acked: Mapping[Hashable, Sequence[int]],
        committed: Mapping[Hashable, int | None],
        *,
        now: float,
    ) -> set[Hashable]:
        holes = gapped(acked, committed)
        stalled = set()
        for tp in holes:
            offset, since = self._since.get(tp, (committed.get(tp), now))
            if offset != committed.get(tp):
                offset, since = committed.get(tp), now
            self._since[tp] = (offset, since)
            if now - since >= self.after_s:
                stalled.add(tp)
        for tp in set(self._since) - holes:
            del self._since[tp]
        return stalled
