"""Interpret one raw record: which domain events, if any, a Kubernetes Event stands for. Pure.

Matching is on the involved object (kind, apiVersion), the emitting component (`source.component`,
not `reportingComponent`, which is empty up to Argo Rollouts v1.6 and on aggregated Events), the
reason, and an anchored pattern of the message. A leading `(combined from similar events): ` is
stripped before matching and reported as `source_message_aggregated`.

The event id is derived from the occurrence `(cluster, Event uid, n)` and the domain type, where
`n` is `series.count`, else `count`, else 1: the same occurrence always yields the same id, so
reprocessing the raw topic or a crash between send and commit yields duplicates that consumers
absorb by id.

Not here yet (issue 4): the Argo CD Application catalogue, the legacy v0.10 reasons, RolloutAborted
with its still-aborted state, and the occurrence table that drops duplicates before they are sent.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from herald_contracts import EVENT_TYPE_PREFIX, DomainEvent, RawRecord, WatchType, object_source

AGGREGATED_PREFIX = "(combined from similar events): "
ROLLOUTS_COMPONENT = "rollouts-controller"
_ID_NAMESPACE = uuid.UUID("5b0c6f1e-8a4b-4d0e-9a51-6f1e2f3a4b5c")

JsonObject = dict[str, Any]
Fields = dict[str, Any]


@dataclass(frozen=True)
class _Rule:
    reason: str
    pattern: re.Pattern[str]
    catalogue_name: str
    fields: Callable[[re.Match[str]], Fields]


def _int(value: str | None) -> int | None:
    return int(value) if value is not None else None


_ROLLOUT_RULES = (
    _Rule(
        "RolloutUpdated",
        re.compile(r"Rollout updated to revision (?P<revision>\d+)"),
        "rollout.update_started",
        lambda m: {"revision": int(m["revision"])},
    ),
    _Rule(
        "RolloutStepCompleted",
        re.compile(r"Rollout step (?P<index>\d+)/(?P<total>\d+) completed \((?P<step>.*)\)"),
        "rollout.step_advanced",
        lambda m: {
            "step_index": int(m["index"]),
            "step_total": int(m["total"]),
            "step": m["step"],
            "legacy": False,
        },
    ),
    _Rule(
        "RolloutPaused",
        re.compile(r"Rollout is paused \((?P<reason>.*)\)"),
        "rollout.paused",
        lambda m: {"pause_reason": m["reason"]},
    ),
    _Rule("RolloutResumed", re.compile(r"Rollout is resumed"), "rollout.resumed", lambda m: {}),
    _Rule(
        "RolloutCompleted",
        re.compile(
            r"Rollout completed update to revision (?P<revision>\d+) \((?P<hash>[^)]*)\): (?P<detail>.*)",
            re.DOTALL,
        ),
        "rollout.completed",
        lambda m: {
            "revision": int(m["revision"]),
            "pod_hash": m["hash"],
            "detail": m["detail"],
            "legacy": False,
        },
    ),
)


def interpret(record: RawRecord) -> list[DomainEvent]:
    """The domain events one raw record stands for; empty for everything else."""
    if record.watch_type is WatchType.DELETED:
        return []  # the TTL removing an Event is not a transition
    event = record.object
    involved = _dict(event.get("involvedObject"))
    if not _is_rollout_event(involved, _dict(event.get("source"))):
        return []
    reason = event.get("reason")
    message = event.get("message")
    if not isinstance(reason, str) or not isinstance(message, str):
        return []
    aggregated = message.startswith(AGGREGATED_PREFIX)
    text = message.removeprefix(AGGREGATED_PREFIX)
    for rule in _ROLLOUT_RULES:
        if rule.reason != reason:
            continue
        match = rule.pattern.fullmatch(text)
        if match is None:
            continue
        return [
            _domain_event(record, involved, rule.catalogue_name, rule.fields(match), aggregated)
        ]
    return []


def _is_rollout_event(involved: JsonObject, source: JsonObject) -> bool:
    api_version = involved.get("apiVersion")
    return (
        involved.get("kind") == "Rollout"
        and isinstance(api_version, str)
        and api_version.startswith("argoproj.io/")
        and source.get("component") == ROLLOUTS_COMPONENT
    )


def occurrence(record: RawRecord) -> tuple[str, str, int]:
    """`(cluster, Event uid, n)`: what makes one occurrence of an Event distinct from a repeat."""
    event = record.object
    uid = _dict(event.get("metadata")).get("uid")
    series = _dict(event.get("series"))
    n = series.get("count") if series else event.get("count")
    return (record.cluster, str(uid or ""), n if isinstance(n, int) and n > 0 else 1)


def event_id(record: RawRecord, catalogue_name: str) -> str:
    cluster, uid, n = occurrence(record)
    return str(uuid.uuid5(_ID_NAMESPACE, f"{cluster}/{uid}/{n}/{catalogue_name}"))


def observed_time(event: JsonObject) -> str:
    """When the transition was observed: series.lastObservedTime, lastTimestamp, eventTime, ..."""
    series = _dict(event.get("series"))
    candidates = (
        series.get("lastObservedTime"),
        event.get("lastTimestamp"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        _dict(event.get("metadata")).get("creationTimestamp"),
    )
    return next((c for c in candidates if isinstance(c, str) and c), "1970-01-01T00:00:00Z")


def _domain_event(
    record: RawRecord, involved: JsonObject, catalogue_name: str, fields: Fields, aggregated: bool
) -> DomainEvent:
    kind, namespace, name = (str(involved.get(k) or "") for k in ("kind", "namespace", "name"))
    data: Fields = {
        "cluster": record.cluster,
        "namespace": namespace,
        "kind": kind,
        "name": name,
        "uid": involved.get("uid"),
        "reason": record.object.get("reason"),
        "message": record.object.get("message"),
        "source_message_aggregated": aggregated,
        **fields,
    }
    return DomainEvent(
        id=event_id(record, catalogue_name),
        source=object_source(cluster=record.cluster, namespace=namespace, kind=kind, name=name),
        type=EVENT_TYPE_PREFIX + catalogue_name,
        subject=name,
        time=observed_time(record.object),
        data=data,
        key=f"{record.cluster}/{namespace}/{kind}/{name}",
    )


def _dict(value: object) -> JsonObject:
    return value if isinstance(value, dict) else {}
