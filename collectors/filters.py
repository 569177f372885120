"""Which Events a cluster publishes: optional include and exclude lists. Pure.

A filter looks at the involved object's kind and namespace and at the reason. An empty include list
admits everything; an Event is published when every non-empty include list holds its value and no
exclude list does. The default filter admits every Event, since other subscribers may want them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Selection:
    kinds: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()
    reasons: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.kinds or self.namespaces or self.reasons)


@dataclass(frozen=True)
class EventFilter:
    include: Selection = Selection()
    exclude: Selection = Selection()


ADMIT_ALL = EventFilter()


def admits(event_filter: EventFilter, event: dict[str, Any]) -> bool:
    involved = event.get("involvedObject")
    involved = involved if isinstance(involved, dict) else {}
    values = (involved.get("kind"), involved.get("namespace"), event.get("reason"))
    include, exclude = event_filter.include, event_filter.exclude
    for wanted, unwanted, value in zip(
        (include.kinds, include.namespaces, include.reasons),
        (exclude.kinds, exclude.namespaces, exclude.reasons),
        values,
        strict=True,
    ):
        if wanted and value not in wanted:
            return False
        if value in unwanted:
            return False
    return True
