"""The catalogue: which Kubernetes Events stand for which domain events, as data. Pure.

A rule is a row: the involved object's family (Argo Rollouts' Rollout, Argo CD's Application), the
Event's reason, an anchored pattern of its message (matched whole, after the aggregation prefix is
stripped), the catalogue name of the domain event, and how the pattern's groups become its fields.
Adding a reason is one row here and one test. The message formats are the real format strings of
Argo Rollouts (v0.10 to v1.10) and Argo CD (up to 3.6); see shared/reference/argo-events.md.
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
    """What an event does to a rollout's aborted state (see `processors.interpreting`)."""

    NONE = "none"
    ABORTS = "aborts"
    PROGRESSES = "progresses"
    ABORTS_UNLESS_ABORTED = "aborts_unless_aborted"
    """The progress-deadline path can emit a second RolloutAborted for the same abort."""


@dataclass(frozen=True)
class Rule:
    family: Family
    reason: str
    pattern: re.Pattern[str]
    catalogue_name: str
    fields: Callable[[re.Match[str]], Fields]
    effect: Effect = Effect.NONE


class FieldError(ValueError):
    """A message matched a row but one of its fields cannot be carried (a number too large)."""


MAX_DIGITS = 18
"""Longest number a field takes: it stays below 2**63 (a Postgres bigint, a Java long)."""


def _int(found: re.Match[str], group: str) -> int | None:
    value = found[group]
    if value is None:
        return None
    if len(value) > MAX_DIGITS:
        raise FieldError(f"{group}: a number of {len(value)} digits (at most {MAX_DIGITS})")
    return int(value)


def _text(value: str | None) -> str | None:
    """Optional text: None when absent or empty."""
    return value or None


def _rule(  # noqa: PLR0917 - one catalogue row per call, positionally like a table
    family: Family,
    reason: str,
    pattern: str,
    name: str,
    fields: Callable[[re.Match[str]], Fields],
    effect: Effect = Effect.NONE,
) -> Rule:
    return Rule(family, reason, re.compile(pattern, re.DOTALL), name, fields, effect)


R, A = Family.ROLLOUT, Family.APPLICATION

RULES: tuple[Rule, ...] = (
    # --- Argo Rollouts v1.0+ --------------------------------------------------------------------
    _rule(
        R,
        "RolloutUpdated",
        r"Rollout updated to revision (?P<revision>\d+)",
        "rollout.update_started",
        lambda m: {"revision": _int(m, "revision")},
        Effect.PROGRESSES,
    ),
    _rule(
        R,
        "RolloutStepCompleted",
        r"Rollout step (?P<i>\d+)/(?P<total>\d+) completed \((?P<step>.*)\)",
        "rollout.step_advanced",
        lambda m: {
            "step_index": _int(m, "i"),
            "step_total": _int(m, "total"),
            "step": m["step"],
            "legacy": False,
        },
        Effect.PROGRESSES,
    ),
    _rule(
        R,
        "RolloutPaused",
        r"Rollout is paused \((?P<reason>.*)\)",
        "rollout.paused",
        lambda m: {"pause_reason": m["reason"]},
    ),
    _rule(
        R,
        "RolloutResumed",
        r"Rollout is resumed",
        "rollout.resumed",
        lambda m: {},
        Effect.PROGRESSES,
    ),
    _rule(
        R,
        "RolloutAborted",
        r"Rollout aborted update to revision (?P<revision>\d+)(?:: (?P<detail>.*))?",
        "rollout.aborted",
        lambda m: {"revision": _int(m, "revision"), "detail": _text(m["detail"])},
        Effect.ABORTS,
    ),
    _rule(
        R,
        "RolloutAborted",
        r"(?P<detail>.+)",
        "rollout.aborted",
        lambda m: {"revision": None, "detail": m["detail"]},
        Effect.ABORTS_UNLESS_ABORTED,
    ),
    _rule(
        R,
        "RolloutCompleted",
        r"Rollout completed update to revision (?P<revision>\d+) \((?P<hash>[^)]*)\): (?P<detail>.*)",
        "rollout.completed",
        lambda m: {
            "revision": _int(m, "revision"),
            "pod_hash": m["hash"],
            "detail": m["detail"],
            "legacy": False,
        },
        Effect.PROGRESSES,
    ),
    # --- Argo Rollouts <= v0.10 -----------------------------------------------------------------
    _rule(
        R,
        "SetStepIndex",
        r"Set Step Index to (?P<i>\d+)",
        "rollout.step_advanced",
        lambda m: {"step_index": _int(m, "i"), "step_total": None, "step": None, "legacy": True},
        Effect.PROGRESSES,
    ),
    _rule(
        R,
        "SettingStableRS",
        r"Completed all steps",
        "rollout.completed",
        lambda m: {"revision": None, "pod_hash": None, "detail": m[0], "legacy": True},
        Effect.PROGRESSES,
    ),
    # --- Argo CD ---------------------------------------------------------------------------------
    _rule(
        A,
        "ResourceUpdated",
        r"Updated health status: (?P<from>\S*) -> (?P<to>\S+)(?: \((?P<detail>.*)\))?",
        "application.health_changed",
        lambda m: {"from": m["from"], "to": m["to"], "detail": _text(m["detail"])},
    ),
    _rule(
        A,
        "ResourceUpdated",
        r"Updated sync status: (?P<from>\S*) -> (?P<to>\S+)",
        "application.sync_changed",
        lambda m: {"from": m["from"], "to": m["to"]},
    ),
    _rule(
        A,
        "OperationStarted",
        r"Initiated automated sync to '(?P<revision>.*)'",
        "application.operation_started",
        lambda m: {
            "initiator": "automated",
            "user": None,
            "revision": m["revision"],
            "target_revision": None,
        },
    ),
    _rule(
        A,
        "OperationStarted",
        r"(?P<user>.+) initiated (?:partial )?sync to (?P<target>.+) \((?P<sha>[0-9a-f]{40})\)",
        "application.operation_started",
        lambda m: {
            "initiator": "user",
            "user": m["user"],
            "revision": m["sha"],
            "target_revision": m["target"],
        },
    ),
    _rule(
        A,
        "OperationCompleted",
        r"(?:Partial sync|Sync) operation(?: to (?P<revision>\S*))? succeeded",
        "application.operation_completed",
        lambda m: {"phase": "Succeeded", "revision": _text(m["revision"]), "detail": None},
    ),
    _rule(
        A,
        "OperationCompleted",
        r"(?:Partial sync|Sync) operation(?: to (?P<revision>\S*))? failed: (?P<detail>.*)",
        "application.operation_completed",
        lambda m: {"phase": "Failed", "revision": _text(m["revision"]), "detail": m["detail"]},
    ),
    _rule(
        A,
        "ResourceActionRan",
        r"(?P<user>.+?) ran action (?P<action>\S+)(?: on resource (?P<resource>\S+))?",
        "application.resource_action",
        lambda m: {"user": m["user"], "action": m["action"], "resource": _text(m["resource"])},
    ),
)

CATALOGUE_NAMES = tuple(sorted({rule.catalogue_name for rule in RULES}))


def match(family: Family, reason: str, text: str) -> tuple[Rule, Fields] | None:
    """The first rule of this family and reason whose pattern matches the whole text; FieldError
    when it matches but a field cannot be carried."""
    for rule in RULES:
        if rule.family is family and rule.reason == reason:
            found = rule.pattern.fullmatch(text)
            if found is not None:
                return rule, rule.fields(found)
    return None
