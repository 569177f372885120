"""The catalogue: the rules of the enabled rule packs, indexed, and the match of one Event. Pure.

A reason that has rules giving a type is a *catalogued reason*, and an Event of a catalogued reason
is never dropped for its wording: a message no rule matches still yields the reason's domain event,
through the reason's fallback rule, with every catalogue field null, the message kept in
`source_message` and `source_message_understood` false (counted and alerted on by the processor), so
a new release's wording shows up on a dashboard instead of as missing notifications.

The fallback of a reason gives the reason's type and its first typed rule's effect. A reason whose
rules give more than one type (Argo CD's `ResourceUpdated`: health or sync) names its fallback type
in its source's `fallbacks`. Rules are indexed by (API group, kind, component, reason), so matching
an Event costs a few dictionary look-ups and the patterns of its reason only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from herald_contracts import view_event
from processors.converters import Converter
from processors.rules import Effect, FieldError, Fields, Rule, Source

__all__ = [
    "Catalogue",
    "Effect",
    "FieldError",
    "Matched",
    "Rule",
    "Source",
    "TypeSpec",
    "api_group",
]

_MATCH_ANYTHING = re.compile(r".*", re.DOTALL)

Key = tuple[str | None, str, str, str]
"""(API group or None for any, kind, component, reason)."""


@dataclass(frozen=True)
class TypeSpec:
    """A domain event type a pack declares: its catalogue fields and their JSON Schema shapes."""

    pack: str
    fields: Mapping[str, Mapping[str, Any]]
    """Field name -> its declaration in the pack (`type`, `nullable`, `enum`, `items`, ...)."""
    description: str = ""
    when_null: Mapping[str, Converter] = field(default_factory=dict)
    """Converters of the Event that fill a field the message left null (a wording no rule knows):
    Argo CD's user from the Event's `user` annotation."""


@dataclass(frozen=True)
class Matched:
    rule: Rule
    fields: Fields


def api_group(api_version: object) -> str | None:
    """The API group of an `apiVersion` (`argoproj.io/v1alpha1` -> `argoproj.io`, `v1` -> `""`);
    None when it is not a string."""
    if not isinstance(api_version, str):
        return None
    group, slash, _ = api_version.rpartition("/")
    return group if slash else ""


@dataclass(frozen=True)
class Catalogue:
    rules: tuple[Rule, ...]
    """Every rule of the enabled packs, in pack order (fallbacks not included)."""
    types: Mapping[str, TypeSpec]
    """Every catalogue name the packs declare."""
    fallback_types: Mapping[tuple[Source, str], str] = field(default_factory=dict)
    """(source, reason) -> the type of the reason's fallback, where its rules give several."""
    packs: tuple[str, ...] = ()
    fallbacks: tuple[Rule, ...] = field(init=False)
    _rules: dict[Key, tuple[Rule, ...]] = field(init=False, repr=False)
    _kinds: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        fallbacks = tuple(self._make_fallbacks())
        object.__setattr__(self, "fallbacks", fallbacks)
        # Each reason's rules, its fallback last: the rules of a reason are tried in one pass.
        object.__setattr__(self, "_rules", _index(self.rules + fallbacks))
        object.__setattr__(self, "_kinds", frozenset(r.source.kind for r in self.rules))

    @property
    def type_fields(self) -> dict[str, tuple[str, ...]]:
        """The catalogue fields of each type (`data` beyond the common fields)."""
        return {name: tuple(spec.fields) for name, spec in self.types.items()}

    def candidates(
        self, event: Mapping[str, Any], owner_kinds: frozenset[str] | None = frozenset()
    ) -> tuple[Rule, ...]:
        """The rules an Event's message is tried against, in order: its source's rules for its
        reason (those of a given API group before those of any group), then the fallback.
        `owner_kinds`: the kinds of the involved object's owners as the collector resolved them
        (for sources that name `owner_kinds`; None: the rules of every source, whatever its
        `owner_kinds`)."""
        involved = event.get("involvedObject")
        if not isinstance(involved, dict):
            return ()
        kind = involved.get("kind")
        reason = event.get("reason")
        if kind not in self._kinds or not isinstance(reason, str):
            return ()
        component = view_event(event).component or ""
        group = api_group(involved.get("apiVersion"))
        specific = self._rules.get((group, kind, component, reason), ())
        anywhere = self._rules.get((None, kind, component, reason), ())
        both = tuple(r for r in specific + anywhere if r.source.admits(owner_kinds))
        if not specific or not anywhere:
            return both
        # Rare (a user pack and a pack of any group on one kind): keep every fallback last.
        return (*(r for r in both if not r.fallback), *(r for r in both if r.fallback))

    def match(
        self, event: Mapping[str, Any], text: str, owner_kinds: frozenset[str] = frozenset()
    ) -> Matched | None:
        """The first rule for this Event whose pattern matches the whole text (the message without
        its aggregation prefix), else the reason's fallback; None for an Event outside the
        catalogue. FieldError when a rule matches but a field cannot be carried."""
        for rule in self.candidates(event, owner_kinds):
            if rule.event_type is not None and rule.event_type != event.get("type"):
                continue
            found = rule.pattern.fullmatch(text)
            if found is not None:
                fields = rule.fields(found, event)
                if fields is not None:
                    return Matched(rule, fields)
        return None

    def _make_fallbacks(self) -> Iterable[Rule]:
        reasons: dict[tuple[Source, str], list[Rule]] = {}
        for rule in self.rules:
            reasons.setdefault((rule.source, rule.reason), []).append(rule)
        for (source, reason), rows in reasons.items():
            names = {r.catalogue_name for r in rows if r.catalogue_name is not None}
            if not names:
                continue  # only known formats that are not transitions: not a catalogued reason
            name = self.fallback_types.get((source, reason))
            if name is None:
                if len(names) != 1:
                    raise ValueError(
                        f"{source.pack}/{reason} gives {sorted(names)}: name its fallback"
                    )
                [name] = names
            typed = next(r for r in rows if r.catalogue_name is not None)
            yield Rule(
                source,
                reason,
                _MATCH_ANYTHING,
                name,
                dict.fromkeys(self.types[name].fields, _null),
                name=f"{source.pack}/fallback of {reason}",
                effect=typed.effect,
                understood=False,
                fallback=True,
            )


def _null(_found: object, _event: object) -> None:
    return None


def _index(rules: Iterable[Rule]) -> dict[Key, tuple[Rule, ...]]:
    index: dict[Key, tuple[Rule, ...]] = {}
    for rule in rules:
        for component in rule.source.components:
            key = (rule.source.group, rule.source.kind, component, rule.reason)
            index[key] = (*index.get(key, ()), rule)
    return index
