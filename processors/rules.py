"""What a catalogue row is, and the helpers rows are written with. Pure.

A rule is a row: the involved object's family (Argo Rollouts' Rollout, Argo CD's Application), the
Event's reason, an anchored pattern of its message (matched whole, after the aggregation prefix is
stripped), the catalogue name of the domain event (or none, for a known format that is not a
transition), how the pattern's groups become its fields, and what it does to the rollout's abort
state. The rows are in `processors.argo_rollouts` and `processors.argo_cd`, one per message format
of each release; `processors.catalogue` puts them together.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Fields = dict[str, Any]


class Family(enum.StrEnum):
    ROLLOUT = "rollout"
    APPLICATION = "application"


class Effect(enum.StrEnum):
    """What an event does to its rollout's abort state (`processors.interpreting.RolloutState`)."""

    NONE = "none"
    PROGRESSES = "progresses"
    """The rollout moves on (an update, a step, a resume, a completion): it is no longer aborted."""
    ABORTS = "aborts"
    """An abort in Argo Rollouts' own words (`Rollout aborted update to revision <n>[: ...]`): a new
    abort, unless it is the formatted notice that follows the progress-deadline notice of the same
    abort."""
    TIMES_OUT = "times_out"
    """The progress-deadline notice (`ReplicaSet "<rs>" has timed out progressing.`), which Argo
    Rollouts 1.0-1.10 emit as a `RolloutAborted` just before the formatted notice of the same abort:
    a new abort unless the rollout is already aborted."""


@dataclass(frozen=True)
class Rule:
    family: Family
    reason: str
    pattern: re.Pattern[str]
    catalogue_name: str | None
    """None: a known format that is not a transition (it produces nothing, and is not flagged)."""
    fields: Callable[[re.Match[str]], Fields | None]
    """The domain event's fields from the match; None: the text is not this row's after all."""
    effect: Effect = Effect.NONE
    understood: bool = True
    """False on a reason's fallback row: the message matched no known format."""


class FieldError(ValueError):
    """A message matched a row but one of its fields cannot be carried (a number too large)."""


MAX_DIGITS = 18
"""Longest number a field takes: it stays below 2**63 (a Postgres bigint, a Java long)."""


def integer(found: re.Match[str], group: str) -> int | None:
    value = found[group]
    if value is None:
        return None
    if len(value) > MAX_DIGITS:
        raise FieldError(f"{group}: a number of {len(value)} digits (at most {MAX_DIGITS})")
    return int(value)


def text(value: str | None) -> str | None:
    """Optional text: None when absent or empty."""
    return value or None


def row(  # noqa: PLR0917 - one catalogue row per call, positionally like a table
    family: Family,
    reason: str,
    pattern: str,
    name: str | None,
    fields: Callable[[re.Match[str]], Fields | None],
    effect: Effect = Effect.NONE,
) -> Rule:
    return Rule(family, reason, re.compile(pattern, re.DOTALL), name, fields, effect)


def known(family: Family, reason: str, pattern: str) -> Rule:
    """A known format that is not a transition: it produces nothing and is not flagged."""
    return row(family, reason, pattern, None, lambda m: {})


def unparsed(family: Family, reason: str, pattern: str, name: str, fields: tuple[str, ...]) -> Rule:
    """A flagged row: a message of this shape in no known format still gives `name`, every catalogue
    field null and `understood` false (a narrower fallback than the reason's own)."""
    return Rule(
        family,
        reason,
        re.compile(pattern, re.DOTALL),
        name,
        lambda found: dict.fromkeys(fields),
        understood=False,
    )
