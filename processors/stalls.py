"""A guard against partitions that stop making progress. Pure.

Faust (faust-streaming) has several ways of leaving a partition stuck after a restart or a
rebalance: records fetched during table recovery can be dropped from its in-memory queues and never
fetched again (issue #596), leaving a hole that its contiguous-run commit never passes; a partition
taken over from a worker that died can be assigned and never fetched. Either way the committed
offset stops moving while records wait. The guard watches, for every raw partition assigned to the
worker, its committed offset against the partition's end; one that has work and has not committed
anything for `after_s` (while the worker is not recovering) is stalled, and `processors.app` then
restarts the worker in place, which re-reads from the committed offsets. Nothing is lost either way:
an offset is committed only once its record was processed, and a record read again decides the same
as the first time (`processors.timelines`).

Faust can also hang in a rebalance or a table recovery that never completes (faust issues #21, #74,
#133): the commit clocks are off then, so `UnreadyGuard` bounds how long a worker may stay
rebalancing or recovering before it is restarted the same way.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping


class StallGuard:
    """Reports partitions with records waiting whose committed offset has not moved for `after_s`."""

    def __init__(self, *, after_s: float) -> None:
        self.after_s = after_s
        self._since: dict[Hashable, tuple[int | None, float]] = {}

    def check(
        self, progress: Mapping[Hashable, tuple[int | None, int | None]], *, now: float
    ) -> set[Hashable]:
        """`progress`: per assigned partition, (committed offset or None, end offset or None)."""
        stalled = set()
        waiting = {
            tp
            for tp, (committed, end) in progress.items()
            if end is not None and end > (committed or 0)
        }
        for tp in waiting:
            committed = progress[tp][0]
            offset, since = self._since.get(tp, (committed, now))
            if offset != committed:
                offset, since = committed, now
            self._since[tp] = (offset, since)
            if now - since >= self.after_s:
                stalled.add(tp)
        for tp in set(self._since) - waiting:
            del self._since[tp]
        return stalled

    def reset(self) -> None:
        """Forget every clock: the worker is recovering or rebalancing, and not expected to commit."""
        self._since.clear()


class UnreadyGuard:
    """Reports a worker that has been rebalancing or recovering its tables for `after_s`."""

    def __init__(self, *, after_s: float) -> None:
        self.after_s = after_s
        self._since: float | None = None

    def check(self, *, unready: bool, now: float) -> bool:
        if not unready:
            self._since = None
            return False
        if self._since is None:
            self._since = now
        return now - self._since >= self.after_s


def skipped(expected: int | None, offset: int, log_start: int | None) -> range:
    """The offsets of a raw partition the agent should have been handed before `offset` and was
    not (empty when none): from `expected` (the offset after the last one it handled, or the
    committed offset, whichever is higher; None when it has handled none and nothing is committed)
    or the partition's first offset still held (`log_start`, None when unknown), whichever is
    higher, up to `offset`.

    Why: records Faust fetched while recovering its tables can be dropped before they reach the
    agent (issue #596). Where the partition has a committed offset past its start, the hole stops
    the commits and `StallGuard` restarts the worker; where it has none (a new group, or every
    commit failed while Kafka was away), Faust's contiguous-run commit takes no committed offset
    for "no hole" and commits past the records it dropped, and they are lost. A record beyond the
    expected offset is that hole, unless retention deleted what lies between (`log_start`)."""
    lower = [x for x in (expected, log_start) if x is not None]
    start = max(lower) if lower else offset
    return range(start, offset) if offset > start else range(0)


def committable(handled: int | None, committed: int | None) -> int | None:
    """The offset a raw partition may be committed to: `handled` (the offset after the last record
    the agent handled in an unbroken run from the committed offset; None when it has handled none
    on this partition), only forward of `committed` (None when nothing is, or Faust takes 0 for
    nothing); None when it may not commit.

    Why not Faust's contiguous run of acked offsets: Faust acks records it never handed to the
    agent. Its stream skips, and acks, every record of an older consumer generation and every
    record that arrives while its flow control is suspended (a rebalance, a table recovery: issue
    #596); its run goes past any hole at all where nothing is committed yet; and where its fetcher
    saw an offset gap (a transaction marker) it counts the record after the gap as acked before
    the agent handled it, while a commit capped below Faust's run stopped the partition for good
    (Faust had dropped the acked offsets it took). The records the agent handled are the truth."""
    if handled is None:
        return None
    return handled if committed is None or handled > committed else None
