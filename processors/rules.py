"""What a compiled rule is: one row of a rule pack, ready to match. Pure.

A rule matches Events of a source (the involved object's API group and kind, the emitting
component), a reason, optionally an Event type, and an anchored pattern of the message (matched
whole, after the aggregation prefix is stripped); it names the domain event it gives (or none, for a
known format that is not a transition), how the pattern's groups become its fields
(`processors.converters`), and what it does to its object's state (`Effect`, judged in
`processors.interpreting`). Rules are written as data in rule packs (`processors.packs` loads them);
`processors.catalogue` indexes them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from processors.converters import Converter, FieldError, NotThisRule

__all__ = ["Effect", "FieldError", "Fields", "Rule", "Source"]

Fields = dict[str, Any]


class Effect(enum.StrEnum):
    """What an event does to its object's abort state (`processors.interpreting.RolloutState`); a
    rule declares it as `state: <effect>`."""

    NONE = "none"
    PROGRESSES = "progresses"
    """The object moves on (an update, a step, a resume, a completion): it is no longer aborted."""
    ABORTS = "aborts"
    """An abort in the controller's own words (`Rollout aborted update to revision <n>[: ...]`): a
    new abort, unless it is the formatted notice that follows the progress-deadline notice of the
    same abort."""
    TIMES_OUT = "times_out"
    """The progress-deadline notice (`ReplicaSet "<rs>" has timed out progressing.`), which Argo
    Rollouts 1.0-1.10 emit as a `RolloutAborted` just before the formatted notice of the same abort:
    a new abort unless the object is already aborted. Its `revision` field, when null, is the
    object's as last named."""


@dataclass(frozen=True, eq=False)  # by identity: one per source of a loaded pack
class Source:
    """Whose Events a pack's rules read, and what every event from them carries."""

    pack: str
    group: str | None
    """The involved object's API group (`""` for the core group); None: any group."""
    kind: str
    components: tuple[str, ...]
    fields: Mapping[str, Converter] = field(default_factory=dict)
    """Fields every event from this source carries (of the Event: annotations, constants)."""
    field_specs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """The same fields as the pack writes them (the published schemas are derived from them)."""
    stateful: bool = False
    """Whether its objects keep state (a rule of the source declares an effect)."""
    owner_kinds: frozenset[str] | None = None
    """Only Events whose involved object has an owner of one of these kinds, as the collector
    resolved it (the raw record's `owners` chain and `workload`); None: any Event."""

    def admits(self, owner_kinds: frozenset[str] | None) -> bool:
        """Whether an Event whose involved object has owners of these kinds is this source's
        (None: whatever its owners)."""
        if self.owner_kinds is None or owner_kinds is None:
            return True
        return not self.owner_kinds.isdisjoint(owner_kinds)


@dataclass(frozen=True)
class Rule:
    source: Source
    reason: str
    pattern: re.Pattern[str]
    catalogue_name: str | None
    """The type without `dev.herald.` (e.g. `rollout.completed`); None: a known format that is not
    a transition (it produces nothing, and is not flagged)."""
    converters: Mapping[str, Converter]
    """The domain event's fields, each a converter of the match (every field of the type: a field
    the pack does not give is null)."""
    name: str = ""
    """Where the rule is written: `<pack>/<rule name or #index>`."""
    effect: Effect = Effect.NONE
    understood: bool = True
    """False on a flagged row (a reason's fallback): the message matched no known format."""
    event_type: str | None = None
    """Normal or Warning; None: either."""
    fallback: bool = False
    """The reason's fallback (`processors.catalogue`): tried last, matches any message."""

    @property
    def reason_key(self) -> tuple[str | None, str, str, str]:
        return (self.source.group, self.source.kind, self.source.pack, self.reason)

    def fields(self, found: re.Match[str], event: Mapping[str, Any]) -> Fields | None:
        """The fields from the match; None when a converter says the text is not this rule's.
        FieldError when one cannot be carried."""
        try:
            return {name: convert(found, event) for name, convert in self.converters.items()}
        except NotThisRule:
            return None
