"""The processor's state: what it keeps, how a record reads it, and when it is forgotten. Pure.

Two maps (Faust tables in the worker, dicts in tests), each value a `Kept`, stored as the JSON array
`[partition, at, timeline]` (a third smaller in memory than an object with named fields): the raw
partition it belongs to, the record time of its last change, and its timeline
(`processors.timelines`):
- occurrences, per `<cluster>/<Event uid>`: the occurrence numbers `n` processed;
- rollouts, per `<cluster>/<namespace>/<name>`: the rollout's `RolloutState` (its abort state and
  last named revision), stored as `[abort, revision]` (an earlier version's `true`/`false` read as
  aborted / not aborted).

Rules (docs/processors.md, "State"), `retention_s` being two `HERALD_OCCURRENCE_WINDOW_S` (24 h):
- A record reads an entry only if the entry's last change is at most `retention_s` older than the
  record itself; an older entry reads as absent. The decision depends on the records alone, never
  on whether a sweep has run yet, so a record read again decides the same.
- `expired` names what a sweep deletes: occurrences and aborted rollouts whose last change is older
  than `retention_s` (by the wall clock), rollouts no longer aborted once every change is below the
  committed offset (no re-reading can need them: not aborted is the default), and values of any
  other shape (an older version's windowed entries). Deleting goes to the changelog too, so the next
  recovery reads less; entries already past their retention are dropped while recovering.

Why forgetting is safe: a duplicate that comes after its occurrence was forgotten yields the event
of the same occurrence again, with the same id, which consumers absorb (Kubernetes repeats an Event
within its TTL, 1 h by default, far inside 24 h). An abort forgotten after 24 h lets a
progress-deadline `RolloutAborted` of a rollout still aborted then be reported once more; an
explicit abort is always reported anyway.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

from processors import timelines
from processors.interpreting import Abort, Occurrence, Outcome, RolloutState
from processors.timelines import Timeline

Name = Literal["occurrences", "rollouts"]


@dataclass(frozen=True)
class Kept:
    partition: int
    at: float
    """Record time (Unix seconds) of the last change."""
    timeline: Timeline

    def to_json(self) -> list[Any]:
        return [self.partition, self.at, self.timeline]


def kept(value: object) -> Kept | None:
    """A stored value read back; None when it is not of this shape."""
    if not isinstance(value, list) or len(value) != 3:
        return None
    partition, at, timeline = value
    if (
        type(partition) is not int
        or not isinstance(at, int | float)
        or isinstance(at, bool)
        or not isinstance(timeline, list)
        or not all(
            isinstance(change, list) and len(change) == 2 and type(change[0]) is int
            for change in timeline
        )
    ):
        return None
    return Kept(partition, float(at), timeline)


@dataclass(frozen=True)
class Doomed:
    """An entry a sweep deletes, and why."""

    table: Name
    key: Any
    value: object
    """The value judged: delete only if the key still holds this very value."""
    partition: int | None
    """None: not known (a value of another shape); it is then only dropped from memory."""
    why: str


class Keeper:
    """The rules, over two mutable maps of stored values (see the module docstring)."""

    def __init__(
        self,
        occurrences: MutableMapping[Any, Any],
        rollouts: MutableMapping[Any, Any],
        *,
        retention_s: float,
    ) -> None:
        self.occurrences = occurrences
        self.rollouts = rollouts
        self.retention_s = retention_s

    def _timeline(self, table: Mapping[Any, Any], key: str, *, at: float) -> Timeline:
        entry = kept(table.get(key))
        if entry is None or at - entry.at > self.retention_s:
            return []
        return entry.timeline

    def before(
        self, occurrence: Occurrence, rollout: str | None, *, offset: int, at: float
    ) -> tuple[int | None, RolloutState]:
        """The last n processed for the Event uid (None: never), and the rollout's state, both as
        they stood before `offset`, for a record of time `at`."""
        last_n = timelines.value_before(
            self._timeline(self.occurrences, occurrence.key, at=at), offset, 0
        )
        state = RolloutState()
        if rollout is not None:
            state = rollout_state(
                timelines.value_before(self._timeline(self.rollouts, rollout, at=at), offset, None)
            )
        return last_n or None, state

    def remember(
        self,
        outcome: Outcome,
        *,
        partition: int,
        offset: int,
        at: float,
        rollout_before: RolloutState,
        committed: int | None,
    ) -> None:
        """What a record of `partition`, `offset` and time `at` changed (nothing for noise or a
        duplicate). `committed`: the partition's committed offset, if known."""
        if outcome.occurrence is None:
            return
        self._change(
            self.occurrences,
            outcome.occurrence.key,
            outcome.occurrence.n,
            partition=partition,
            offset=offset,
            at=at,
            committed=committed,
        )
        if outcome.rollout_key is not None and outcome.rollout not in (None, rollout_before):
            self._change(
                self.rollouts,
                outcome.rollout_key,
                stored(outcome.rollout),
                partition=partition,
                offset=offset,
                at=at,
                committed=committed,
            )

    def _change(
        self,
        table: MutableMapping[Any, Any],
        key: str,
        value: Any,
        *,
        partition: int,
        offset: int,
        at: float,
        committed: int | None,
    ) -> None:
        entry = kept(table.get(key))
        live = entry is not None and at - entry.at <= self.retention_s
        timeline = timelines.record(
            entry.timeline if entry is not None and live else [],
            offset,
            value,
            committed=committed,
        )
        last = max(at, entry.at) if entry is not None and live else at
        table[key] = Kept(partition, last, timeline).to_json()

    def expired(
        self, *, now: float, committed: Mapping[int, int], owned: set[int] | None = None
    ) -> Iterator[Doomed]:
        """What a sweep at wall-clock time `now` deletes. `committed`: the committed offset per raw
        partition; `owned`: the partitions this worker may write (None: all)."""
        tables: tuple[tuple[Name, MutableMapping[Any, Any]], ...] = (
            ("occurrences", self.occurrences),
            ("rollouts", self.rollouts),
        )
        for name, table in tables:
            for key, value in list(table.items()):
                why = self._why_gone(name, value, now=now, committed=committed)
                if why is None:
                    continue
                entry = kept(value)
                partition = entry.partition if entry is not None else None
                if owned is not None and partition is not None and partition not in owned:
                    continue
                yield Doomed(name, key, value, partition, why)

    def _why_gone(
        self, table: str, value: object, *, now: float, committed: Mapping[int, int]
    ) -> str | None:
        entry = kept(value)
        if entry is None:
            return "not a value of this version"
        if now - entry.at > self.retention_s:
            return f"last changed more than {self.retention_s:.0f}s ago"
        if table == "rollouts":
            done = committed.get(entry.partition)
            if (
                done is not None
                and all(at < done for at, _ in entry.timeline)
                and rollout_state(timelines.value_before(entry.timeline, done, None))
                == RolloutState()
            ):
                return "nothing to remember"
        return None


def stored(state: RolloutState | None) -> list[Any]:
    """A rollout's state as a timeline stores it: `[abort, revision]`."""
    state = state or RolloutState()
    return [state.abort.value, state.revision]


def rollout_state(value: object) -> RolloutState:
    """A rollout's state read back from a timeline; an earlier version's `true`/`false` read as
    aborted / not aborted, anything else as the default."""
    if value is True:
        return RolloutState(Abort.ABORTED)
    if isinstance(value, list) and len(value) == 2:
        abort, revision = value
        if abort in Abort.__members__.values() and (revision is None or type(revision) is int):
            return RolloutState(Abort(abort), revision)
    return RolloutState()


def dead_on_arrival(value: object, *, now: float, retention_s: float) -> bool:
    """Whether a value read from a changelog while recovering is dropped at once: past its
    retention, or of another shape."""
    entry = kept(value)
    return entry is None or now - entry.at > retention_s
