"""The catalogue: which Kubernetes Events stand for which domain events, as data. Pure.

The rows are those of `processors.argo_rollouts` and `processors.argo_cd`, one per message format
of each release. A reason that has rows is a *catalogued reason*, and an Event of a catalogued
reason is never dropped for its wording: a message no row matches still yields the reason's domain
event, through the reason's fallback row, with every catalogue field null, the message kept in
`source_message` and `source_message_understood` false (counted and alerted on by the processor),
so a new release's wording shows up on a dashboard instead of as missing notifications.

The fallback of a reason gives the reason's domain event type and its first row's effect. A reason
whose rows give more than one type (`ResourceUpdated`: health or sync) names its fallback in
`FALLBACK_TYPES`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from processors.argo_cd import ARGOCD_RULES
from processors.argo_rollouts import ROLLOUT_RULES
from processors.rules import Effect, Family, FieldError, Fields, Rule

__all__ = [
    "CATALOGUE_NAMES",
    "RULES",
    "TYPE_FIELDS",
    "Effect",
    "Family",
    "FieldError",
    "Matched",
    "Rule",
    "match",
]

TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    "rollout.update_started": ("revision",),
    "rollout.step_advanced": ("step_index", "step_total", "step", "legacy"),
    "rollout.paused": ("pause_reason",),
    "rollout.resumed": (),
    "rollout.aborted": ("revision", "detail"),
    "rollout.completed": ("revision", "pod_hash", "detail", "legacy"),
    "application.health_changed": ("from", "to", "detail"),
    "application.sync_changed": ("from", "to"),
    "application.operation_started": (
        "initiator",
        "user",
        "operation",
        "partial",
        "local",
        "revision",
        "revisions",
        "target_revision",
        "target_revisions",
        "rollback_id",
    ),
    "application.operation_completed": ("phase", "partial", "revision", "revisions", "detail"),
    "application.resource_action": ("user", "action", "resource"),
}
"""The catalogue fields of each domain event type (`data` beyond the common fields)."""

FALLBACK_TYPES: dict[tuple[Family, str], str] = {
    # An Application's ResourceUpdated is a health or a sync change (or a user's edit, known rows);
    # a new wording that still says `Updated sync status` has its own flagged row
    # (processors.argo_cd); any other is taken for health, the one that gained a suffix in 3.6.
    (Family.APPLICATION, "ResourceUpdated"): "application.health_changed",
}

_MATCH_ANYTHING = re.compile(r".*", re.DOTALL)


def _nulls(fields: tuple[str, ...]) -> Callable[[re.Match[str]], Fields | None]:
    return lambda found: dict.fromkeys(fields)


def _fallbacks(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
    """One fallback row per catalogued reason (see the module docstring)."""
    reasons: dict[tuple[Family, str], list[Rule]] = {}
    for rule in rules:
        reasons.setdefault((rule.family, rule.reason), []).append(rule)
    fallbacks = []
    for (family, reason), rows in reasons.items():
        names = {r.catalogue_name for r in rows if r.catalogue_name is not None}
        if not names:
            continue  # only known formats that are not transitions: not a catalogued reason
        name = FALLBACK_TYPES.get((family, reason))
        if name is None:
            if len(names) != 1:
                raise ValueError(f"{family}/{reason} gives {sorted(names)}: name its fallback")
            [name] = names
        fields = TYPE_FIELDS[name]
        fallbacks.append(
            Rule(
                family,
                reason,
                _MATCH_ANYTHING,
                name,
                _nulls(fields),
                next(r.effect for r in rows if r.catalogue_name is not None),
                understood=False,
            )
        )
    return tuple(fallbacks)


RULES: tuple[Rule, ...] = ROLLOUT_RULES + ARGOCD_RULES
FALLBACKS: tuple[Rule, ...] = _fallbacks(RULES)
CATALOGUE_NAMES = tuple(sorted({r.catalogue_name for r in RULES if r.catalogue_name}))

_BY_REASON: dict[tuple[Family, str], tuple[Rule, ...]] = {}
for _rule in RULES + FALLBACKS:
    _BY_REASON[_rule.family, _rule.reason] = (
        *_BY_REASON.get((_rule.family, _rule.reason), ()),
        _rule,
    )


@dataclass(frozen=True)
class Matched:
    rule: Rule
    fields: Fields


def match(family: Family, reason: str, text: str) -> Matched | None:
    """The first row of this family and reason whose pattern matches the whole text, else the
    reason's fallback; None for a reason outside the catalogue. FieldError when a row matches but
    a field cannot be carried."""
    for rule in _BY_REASON.get((family, reason), ()):
        found = rule.pattern.fullmatch(text)
        if found is not None:
            fields = rule.fields(found)
            if fields is not None:
                return Matched(rule, fields)
    return None
