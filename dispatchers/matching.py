"""Which subscriptions want an event. Pure.

A filter is a set of glob patterns per dimension (event type as the catalogue name, e.g. `rollout.*`;
cluster; namespace; object name). An empty set matches everything; otherwise one pattern must match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from herald_contracts import DomainEvent


@dataclass(frozen=True)
class SubscriptionFilter:
    event_types: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    names: tuple[str, ...] = ()


def matches(subscription: SubscriptionFilter, event: DomainEvent) -> bool:
    data = event.data
    return (
        _any(subscription.event_types, event.catalogue_name)
        and _any(subscription.clusters, str(data.get("cluster", "")))
        and _any(subscription.namespaces, str(data.get("namespace", "")))
        and _any(subscription.names, str(data.get("name", "")))
    )


def _any(patterns: Sequence[str], value: str) -> bool:
    return not patterns or any(fnmatchcase(value, p) for p in patterns)
