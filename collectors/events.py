"""What counts as a core/v1 Event, checked where one enters the collector: a watch event, a list
item, a replayed line. Pure.

The raw topic promises a core/v1 Event (`docs/contracts.md`, `schemas/kube-event-record.v1.schema.json`)
and the processors refuse a record without `metadata.uid` or `involvedObject`. A real API server
only sends valid Events, but a proxy in between, a simulated server or a hand-written replay file may
not. An object that fails here is set aside by the caller (counted, logged once with what it was)
and never published; the stream moves on. The check follows the schema and the Kubernetes types: it
does not judge the content (any reason or message is an Event's business), only the shape the
consumers rely on. Times are checked as RFC 3339 (`herald_contracts.times`), since the processors take
an Event's time from them.
"""

from __future__ import annotations

from typing import Any

from herald_contracts import ContractError, parse_time

_EVENT_STRINGS = (
    "reason",
    "message",
    "type",
    "action",
    "reportingComponent",
    "reportingInstance",
)
_TIMES = ("firstTimestamp", "lastTimestamp", "eventTime")
_METADATA_REQUIRED = ("name", "namespace", "resourceVersion")
_METADATA_STRINGS = (*_METADATA_REQUIRED, "generateName")
_REFERENCE_STRINGS = (
    "kind",
    "namespace",
    "name",
    "uid",
    "apiVersion",
    "resourceVersion",
    "fieldPath",
)


def event_problem(obj: object) -> str | None:
    """Why `obj` is not a core/v1 Event the raw topic can carry, or None if it is one.

    Required: `metadata.uid` (a non-empty string), `metadata.name`, `.namespace` and
    `.resourceVersion` (strings: the raw record's schema requires them, and every Event an API
    server stores has them), and `involvedObject` (an object). When present:
    `kind` is `Event` and `apiVersion` is `v1` (list items carry neither); the metadata's, the
    involved object's and the Event's string fields are strings; `count` and `series.count` are
    integers; `source` and `series` are objects (`related` too, or null); labels and annotations map
    strings to strings; times are RFC 3339 or null (Kubernetes writes null for a zero time).
    """
    if not isinstance(obj, dict):
        return f"not a JSON object but {_kind_of(obj)}"
    for field, wanted in (("kind", "Event"), ("apiVersion", "v1")):
        if field in obj and obj[field] != wanted:
            return f"{field} is {_shown(obj[field])}, not {wanted!r}"
    problem = _metadata_problem(obj.get("metadata"))
    if problem:
        return problem
    involved = obj.get("involvedObject")
    if not isinstance(involved, dict):
        return "no involvedObject object"
    return (
        _strings(involved, _REFERENCE_STRINGS, "involvedObject")
        or _strings(obj, _EVENT_STRINGS, "")
        or _times(obj, _TIMES, "")
        or _integer(obj, "count", "")
        or _object(obj, "source")
        or _source(obj.get("source"))
        or _object(obj, "related", nullable=True)
        or _series(obj)
    )


def _metadata_problem(metadata: object) -> str | None:
    if not isinstance(metadata, dict):
        return "no metadata object"
    uid = metadata.get("uid")
    if not isinstance(uid, str) or not uid:
        return "no metadata.uid"
    for field in _METADATA_REQUIRED:
        if field not in metadata:
            return f"no metadata.{field}"
    return (
        _strings(metadata, _METADATA_STRINGS, "metadata")
        or _string_map(metadata, "labels")
        or _string_map(metadata, "annotations")
        or _times(metadata, ("creationTimestamp", "deletionTimestamp"), "metadata")
    )


def _strings(parent: dict[str, Any], fields: tuple[str, ...], where: str) -> str | None:
    for field in fields:
        if field in parent and not isinstance(parent[field], str):
            return f"{_path(where, field)} is {_kind_of(parent[field])}, not a string"
    return None


def _string_map(metadata: dict[str, Any], field: str) -> str | None:
    if field not in metadata or metadata[field] is None:
        return None
    value = metadata[field]
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return f"metadata.{field} is not a map of strings"
    return None


def _times(parent: dict[str, Any], fields: tuple[str, ...], where: str) -> str | None:
    for field in fields:
        value = parent.get(field)
        if value is not None:
            try:
                parse_time(value, field=_path(where, field))
            except ContractError as e:
                return str(e)
    return None


def _integer(parent: dict[str, Any], field: str, where: str) -> str | None:
    if field not in parent:
        return None
    value = parent[field]
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{_path(where, field)} is {_kind_of(value)}, not an integer"
    return None


def _object(parent: dict[str, Any], field: str, *, nullable: bool = False) -> str | None:
    if field not in parent or (nullable and parent[field] is None):
        return None
    if not isinstance(parent[field], dict):
        return f"{field} is {_kind_of(parent[field])}, not an object"
    return None


def _source(source: object) -> str | None:
    if isinstance(source, dict):
        return _strings(source, ("component", "host"), "source")
    return None


def _series(obj: dict[str, Any]) -> str | None:
    if "series" not in obj:
        return None
    series = obj["series"]
    if not isinstance(series, dict):
        return f"series is {_kind_of(series)}, not an object"
    return _integer(series, "count", "series") or _times(series, ("lastObservedTime",), "series")


def _path(where: str, field: str) -> str:
    return f"{where}.{field}" if where else field


def _kind_of(value: object) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names |= {list: "an array", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
