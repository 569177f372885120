"""One view of an Event, whichever API wrote it: the facts every rule reads, normalized. Pure.

Kubernetes stores one Event object and serves it through two APIs; the raw topic carries the core/v1
view, exactly as the API server returned it (`herald_contracts.raw`). Which core/v1 fields hold the
emitting component, the occurrence count and the times depends on the API the emitter wrote through:

| fact | written through core/v1 (client-go `tools/record`; Argo CD's plain create) | written through `events.k8s.io/v1` (`tools/events`) |
|---|---|---|
| component | `source.component` (client-go >= 0.28 copies it to `reportingComponent`; older: `""`) | `source: {}`; `reportingComponent` |
| instance | `source.host` (often absent) | `reportingInstance`: `<controller>-<hostname>` |
| count | `count` | no `count`; `series.count` (>= 2) on repeats |
| times | `firstTimestamp`, `lastTimestamp` (seconds); `eventTime` null | both null; `eventTime`, `series.lastObservedTime` (microseconds) |

The mapping between the two views is kubernetes/kubernetes `pkg/apis/events/v1/conversion.go`:
`source <-> deprecatedSource`, `count <-> deprecatedCount`, `firstTimestamp <-> deprecatedFirstTimestamp`,
`lastTimestamp <-> deprecatedLastTimestamp`, `message <-> note`, `involvedObject <-> regarding`; the
rest by name, `reportingComponent` being the JSON name of the same Go field `ReportingController`
(k8s.io/api `core/v1/types.go` and `events/v1/types.go`). An Event created or updated through
events.k8s.io/v1 cannot carry the deprecated fields: `pkg/apis/core/validation/events.go`
(`ValidateEventCreate`) requires `source`, `count`, `firstTimestamp` and `lastTimestamp` unset, and
`ValidateEventUpdate` keeps them unchanged; it requires `eventTime`, `reportingController` and
`reportingInstance`, and `series.count >= 2` when there is a series. So such an Event's core/v1 view
reads with `source: {}` and no `count` for its whole life, and a repeat shows as `series.count` rising.
(Checked on kube-apiserver v1.37.2: the core/v1 view of an Event created through events.k8s.io/v1 has
`source: {}`, null `firstTimestamp`/`lastTimestamp` and no `count` key; an events.k8s.io/v1 PATCH of
`deprecatedCount` is refused as immutable; but a core/v1 PATCH can still add a `count` beside the
`series`, which is why the order of the count's sources is stated, not left to chance.)

`view_event` reads each fact from whichever field holds it, in the order kubectl uses to show Events
(kubernetes/kubernetes `pkg/printers/internalversion/printers.go`, `printEvent` and
`formatEventSource`: `source.component` else `reportingController`, `source.host` else
`reportingInstance`, `series.count` when there is a series else `count` else 1; kubectl takes a
series' count even when it is not a valid one, here such a count is absent and `count` decides, as
Herald's contract has always said). It never changes the Event: the raw record keeps the API server's
object, and every reader normalizes when reading.

What it does not do: judge whether an Event is one Herald cares about (that is the processors'
catalogue), or refuse a malformed Event (the raw decoder and the collectors do). It is total: any JSON
gives a view, a field of the wrong type or value counting as absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from herald_contracts.raw import RawRecord
from herald_contracts.times import is_time

MAX_COUNT = 2**31 - 1
"""Kubernetes declares `count` and `series.count` int32."""


class EventView:
    """The facts of one Event, the same for the core/v1 and the events.k8s.io/v1 writer.

    A view over the Event, not a copy: each fact is read from the Event when asked for (a few
    dictionary look-ups, and for a time an RFC 3339 check), so a reader that needs only the
    component, as for most records, which are not Herald's, pays only for that.
    """

    def __init__(self, event: Mapping[str, Any]) -> None:
        self._event = event

    @property
    def component(self) -> str | None:
        """Who emitted it, e.g. `rollouts-controller`: `source.component`, else `reportingComponent`
        (events.k8s.io/v1 `reportingController`); the first that is a non-empty string, else None."""
        return _first_text(self._source.get("component"), self._event.get("reportingComponent"))

    @property
    def instance(self) -> str | None:
        """Which instance of it, e.g. a node name or `<controller>-<hostname>`: `source.host`, else
        `reportingInstance`; the first that is a non-empty string, else None."""
        return _first_text(self._source.get("host"), self._event.get("reportingInstance"))

    @property
    def count(self) -> int:
        """The occurrence number, from 1: `series.count`, else `count` (events.k8s.io/v1
        `deprecatedCount`), else 1; each only if a positive int32 (else it counts as absent). A
        repeat raises it, whichever API wrote the Event: `(cluster, uid, count)` names one
        occurrence."""
        return _first_count(self._series.get("count"), self._event.get("count"))

    @property
    def observed_at(self) -> str | None:
        """When it was last observed, RFC 3339 as written (seconds for `lastTimestamp`,
        microseconds for the others): `series.lastObservedTime`, else `lastTimestamp`
        (`deprecatedLastTimestamp`), else `eventTime`, else `firstTimestamp`
        (`deprecatedFirstTimestamp`), else `metadata.creationTimestamp`; the first that is a valid
        RFC 3339 time (`herald_contracts.times`), else None (`observed_at(record)` then takes the
        record's `collected_at`)."""
        event = self._event
        return _first_time(
            self._series.get("lastObservedTime"),
            event.get("lastTimestamp"),
            event.get("eventTime"),
            event.get("firstTimestamp"),
            self._created,
        )

    @property
    def first_observed_at(self) -> str | None:
        """When it was first observed, RFC 3339 as written: `firstTimestamp`
        (`deprecatedFirstTimestamp`), else `eventTime`, else `metadata.creationTimestamp`; the
        first that is a valid RFC 3339 time, else None."""
        event = self._event
        return _first_time(event.get("firstTimestamp"), event.get("eventTime"), self._created)

    @property
    def _source(self) -> Mapping[str, Any]:
        return _mapping(self._event.get("source"))

    @property
    def _series(self) -> Mapping[str, Any]:
        return _mapping(self._event.get("series"))

    @property
    def _created(self) -> object:
        return _mapping(self._event.get("metadata")).get("creationTimestamp")

    def __repr__(self) -> str:
        facts = ("component", "instance", "count", "observed_at", "first_observed_at")
        return f"EventView({', '.join(f'{f}={getattr(self, f)!r}' for f in facts)})"


def view_event(event: Mapping[str, Any]) -> EventView:
    """The normalized facts of a core/v1 Event (a raw record's `object`), whichever API wrote it."""
    return EventView(event)


def observed_at(record: RawRecord) -> str:
    """When the Event of a raw record was last observed (`EventView.observed_at`), else the time
    the collector received it: always a valid RFC 3339 time (the raw decoder checked
    `collected_at`). The domain event's `time` and `observed_at`."""
    return view_event(record.object).observed_at or record.collected_at


def _first_text(*candidates: object) -> str | None:
    return next((c for c in candidates if isinstance(c, str) and c), None)


def _first_count(*candidates: object) -> int:
    # `type(c) is int`: a JSON true is a Python bool, which is an int but no count.
    return next((c for c in candidates if type(c) is int and 0 < c <= MAX_COUNT), 1)


def _first_time(*candidates: object) -> str | None:
    return next((c for c in candidates if isinstance(c, str) and is_time(c)), None)


def _mapping(value: object) -> Mapping[str, Any]:
    # `dict`, not `Mapping`: the Event is parsed JSON, and an ABC check costs more per record.
    return value if isinstance(value, dict) else {}
