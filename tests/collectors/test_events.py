"""What counts as a core/v1 Event where one enters the collector (watch, list, replay)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from collectors.events import event_problem
from tests.support import rollout_event, validate


def _changed(path: str, value: Any) -> dict[str, Any]:
    """A valid Event with the field at the dotted `path` set to `value` (or removed: ...)."""
    event = rollout_event("RolloutPaused", "Rollout is paused (CanaryPauseStep)", count=2)
    *parents, last = path.split(".")
    target = event
    for part in parents:
        target = target.setdefault(part, {})
    if value is ...:
        target.pop(last, None)
    else:
        target[last] = value
    return event


VALID = {
    "as Argo Rollouts writes it": _changed("count", 2),
    "a list item: no kind or apiVersion": {
        k: v for k, v in _changed("count", 1).items() if k not in ("kind", "apiVersion")
    },
    "null times, as Kubernetes writes a zero time": _changed("firstTimestamp", None),
    "a MicroTime eventTime": _changed("eventTime", "2026-08-20T09:16:53.123456Z"),
    "a series": _changed("series", {"count": 4, "lastObservedTime": "2026-08-20T09:16:53.5Z"}),
    "no message (omitted when empty)": _changed("message", ...),
    "annotations": _changed("metadata.annotations", {"dest-server": "https://k"}),
    "an empty involved object": _changed("involvedObject", {}),
    "related null": _changed("related", None),
    "a control character and NUL in the message": _changed("message", "a\x00b\x1fc"),
}

INVALID = {
    "not an object": ([1, 2], "not a JSON object but an array"),
    "null": (None, "not a JSON object but null"),
    "another kind": (_changed("kind", "Pod"), "kind is 'Pod', not 'Event'"),
    "events.k8s.io": (_changed("apiVersion", "events.k8s.io/v1"), "apiVersion is"),
    "no metadata": (_changed("metadata", ...), "no metadata object"),
    "metadata not an object": (_changed("metadata", "x"), "no metadata object"),
    "no uid": (_changed("metadata.uid", ...), "no metadata.uid"),
    "empty uid": (_changed("metadata.uid", ""), "no metadata.uid"),
    "uid a number": (_changed("metadata.uid", 7), "no metadata.uid"),
    "no name": (_changed("metadata.name", ...), "no metadata.name"),
    "no resourceVersion": (
        _changed("metadata.resourceVersion", ...),
        "no metadata.resourceVersion",
    ),
    "resourceVersion a number": (
        _changed("metadata.resourceVersion", 12),
        "metadata.resourceVersion is a number, not a string",
    ),
    "annotations not strings": (
        _changed("metadata.annotations", {"a": 1}),
        "metadata.annotations is not a map of strings",
    ),
    "bad creationTimestamp": (
        _changed("metadata.creationTimestamp", "2026-13-01T00:00:00Z"),
        "metadata.creationTimestamp must be an RFC 3339 date-time",
    ),
    "no involvedObject": (_changed("involvedObject", ...), "no involvedObject object"),
    "involvedObject a list": (_changed("involvedObject", ["Rollout"]), "no involvedObject object"),
    "involvedObject kind a number": (
        _changed("involvedObject.kind", 3),
        "involvedObject.kind is a number, not a string",
    ),
    "reason a number": (_changed("reason", 42), "reason is a number, not a string"),
    "message null": (_changed("message", None), "message is null, not a string"),
    "message an object": (_changed("message", {"text": "x"}), "message is an object"),
    "lastTimestamp not a time": (
        _changed("lastTimestamp", "yesterday"),
        "lastTimestamp must be an RFC 3339 date-time, not 'yesterday'",
    ),
    "lastTimestamp a number": (_changed("lastTimestamp", 1700000000), "lastTimestamp must be"),
    "eventTime without a zone": (_changed("eventTime", "2026-08-20T09:16:53"), "eventTime must be"),
    "a leap second": (_changed("lastTimestamp", "2016-12-31T23:59:60Z"), "lastTimestamp"),
    "count a string": (_changed("count", "2"), "count is a string, not an integer"),
    "count a boolean": (_changed("count", True), "count is a boolean, not an integer"),
    "count a float": (_changed("count", 2.5), "count is a number, not an integer"),
    "source a string": (_changed("source", "kubelet"), "source is a string, not an object"),
    "source.component a list": (_changed("source.component", ["a"]), "source.component is an"),
    "series null": (_changed("series", None), "series is null, not an object"),
    "series.count a string": (_changed("series", {"count": "4"}), "series.count is a string"),
    "series.lastObservedTime bad": (
        _changed("series", {"count": 4, "lastObservedTime": "now"}),
        "series.lastObservedTime must be",
    ),
    "related a string": (_changed("related", "x"), "related is a string, not an object"),
}


@pytest.mark.parametrize("event", VALID.values(), ids=VALID.keys())
def test_a_valid_event_passes_and_matches_the_raw_record_schema(event: dict[str, Any]) -> None:
    assert event_problem(event) is None
    published = copy.deepcopy(event)
    published["metadata"].pop("managedFields", None)
    validate(
        "kube-event-record.v1.schema.json",
        {
            "cluster": "c",
            "watch_type": "ADDED",
            "collected_at": "2026-08-20T09:16:54Z",
            "object": published,
        },
    )


@pytest.mark.parametrize(("obj", "reason"), INVALID.values(), ids=INVALID.keys())
def test_an_invalid_event_is_refused_with_the_reason(obj: Any, reason: str) -> None:
    problem = event_problem(obj)
    assert problem is not None
    assert reason in problem
