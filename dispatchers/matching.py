"""Which subscriptions want an event. Pure.

A filter is a set of glob patterns per dimension; an empty set matches everything, otherwise one
pattern must match (case-sensitive, `*` also crosses dots).

- event type: a pattern matches the full CloudEvents `type` (`com.example.app.*`,
  `dev.herald.rollout.*`), and, for Herald's own events, also the catalogue name, the type without
  `dev.herald.` (`rollout.*`): so the filters subscriptions were created with keep their meaning.
  Such a short name of a built-in pack's family (`rollout.`, `application.`, `kubernetes.`,
  `flux.`) is Herald's: it never matches another producer's event, whatever its type says (a
  `rollout.completed` from elsewhere does not reach a `rollout.*` subscription). A user's pack's
  types are best named in full (`dev.herald.flagger.*`): the dispatcher does not load packs, so
  their short names are not known to be Herald's.
- `source` and `subject`: the CloudEvents attributes (an event without `subject` has the subject "",
  which only `*` or an empty filter matches).
- cluster, namespace, object name: read from the data of Herald's events. Another producer's event
  has none of them (whatever its data holds): it is "" in each, so only a pattern that matches ""
  takes it, such as `*` (which `subscriptions update` documents as "matches everything").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from herald_contracts import EVENT_TYPES, CloudEvent, DomainEvent

HERALD_FAMILIES = tuple(sorted({t.split(".")[0] + "." for t in EVENT_TYPES}))
"""The built-in packs' type families (`rollout.`, ...): short names that are Herald's alone."""


@dataclass(frozen=True)
class SubscriptionFilter:
    event_types: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()


def matches(subscription: SubscriptionFilter, event: CloudEvent | DomainEvent) -> bool:
    herald = event if isinstance(event, DomainEvent) else event.herald
    data = herald.data if herald is not None else {}
    return (
        _type_matches(subscription.event_types, event.type, herald)
        and _any(subscription.sources, event.source)
        and _any(subscription.subjects, event.subject or "")
        and _any(subscription.clusters, str(data.get("cluster", "")))
        and _any(subscription.namespaces, str(data.get("namespace", "")))
        and _any(subscription.names, str(data.get("name", "")))
    )


def _type_matches(patterns: Sequence[str], event_type: str, herald: DomainEvent | None) -> bool:
    if not patterns:
        return True
    if herald is not None:
        return _any(patterns, event_type) or _any(patterns, herald.catalogue_name)
    theirs = [p for p in patterns if not p.startswith(HERALD_FAMILIES)]
    return any(fnmatchcase(event_type, p) for p in theirs)


def _any(patterns: Sequence[str], value: str) -> bool:
    return not patterns or any(fnmatchcase(value, p) for p in patterns)
