"""Property tests of the collector stage with arbitrary bad input: malformed watch objects mixed into
valid Events, through the real `Watcher` (in-memory source and sink), and arbitrary replay lines.

Whatever the bad input, the stage never raises, sets each bad object aside once, and publishes the
valid Events exactly as it would without the bad ones."""

from __future__ import annotations

import json
import threading
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.events import event_problem
from collectors.replay import replay
from collectors.watching import EventPage, Watcher, WatchEvent
from herald_contracts import is_time
from herald_runtime.backoff import Backoff
from tests.collectors.test_watching import Collected, ScriptedSource

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
NOT_A_STRING = JSON.filter(lambda v: not isinstance(v, str))
NOT_A_TIME = st.one_of(
    NOT_A_STRING.filter(lambda v: v is not None), st.text().filter(lambda t: not is_time(t))
)
TIMES = st.sampled_from(
    ["2026-08-20T09:16:53Z", "2026-08-20T09:16:53.123456Z", "2026-08-20T11:16:53+02:00"]
)


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """A core/v1 Event as an API server could send it (fields drawn, optional ones sometimes)."""
    event: dict[str, Any] = {
        "metadata": {
            "name": draw(st.text(min_size=1, max_size=20)),
            "namespace": draw(st.text(max_size=10)),
            "uid": draw(st.uuids()).hex,
            "resourceVersion": "0",  # numbered in stream order below
            "creationTimestamp": draw(TIMES),
        },
        "involvedObject": {
            "kind": draw(st.sampled_from(["Rollout", "Application", "Pod"])),
            "namespace": draw(st.text(max_size=10)),
            "name": draw(st.text(max_size=10)),
        },
    }
    optional = {
        "kind": st.just("Event"),
        "apiVersion": st.just("v1"),
        "reason": st.text(max_size=30),
        "message": st.text(max_size=200),
        "type": st.sampled_from(["Normal", "Warning"]),
        "count": st.integers(min_value=1, max_value=10_000),
        "firstTimestamp": TIMES | st.none(),
        "lastTimestamp": TIMES | st.none(),
        "eventTime": TIMES | st.none(),
        "source": st.fixed_dictionaries({}, optional={"component": st.text(max_size=20)}),
        "series": st.fixed_dictionaries({"count": st.integers(0, 99), "lastObservedTime": TIMES}),
    }
    for field, strategy in optional.items():
        if draw(st.booleans()):
            event[field] = draw(strategy)
    return event


@st.composite
def corrupted_events(draw: st.DrawFn) -> Any:
    """A valid Event with one thing wrong that makes it no core/v1 Event."""
    event = draw(valid_events())
    fault = draw(
        st.sampled_from(
            [
                "drop_metadata",
                "drop_uid",
                "drop_involved",
                "string_field",
                "time",
                "count",
                "kind",
                "involved_not_object",
            ]
        )
    )
    if fault == "drop_metadata":
        del event["metadata"]
    elif fault == "drop_uid":
        event["metadata"]["uid"] = draw(st.none() | st.just("") | st.integers())
    elif fault == "drop_involved":
        del event["involvedObject"]
    elif fault == "string_field":
        event[draw(st.sampled_from(["reason", "message", "type"]))] = draw(NOT_A_STRING)
    elif fault == "time":
        event[draw(st.sampled_from(["firstTimestamp", "lastTimestamp", "eventTime"]))] = draw(
            NOT_A_TIME
        )
    elif fault == "count":
        event["count"] = draw(NOT_A_STRING.filter(lambda v: type(v) is not int) | st.text())
    elif fault == "kind":
        event["kind"] = draw(JSON.filter(lambda v: v != "Event"))
    else:
        event["involvedObject"] = draw(JSON.filter(lambda v: not isinstance(v, dict)))
    return event


BAD_OBJECTS = st.one_of(
    corrupted_events(),
    JSON.filter(lambda v: not isinstance(v, dict)),
    st.dictionaries(st.text(max_size=8), JSON, max_size=4).filter(
        lambda d: "involvedObject" not in d
    ),
)
BAD_WATCH_TYPES = st.text(max_size=10).filter(
    lambda t: t not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR")
)


@st.composite
def streams(draw: st.DrawFn) -> list[tuple[bool, WatchEvent]]:
    """(valid?, watch event) in stream order; valid Events get increasing resourceVersions."""
    items: list[tuple[bool, WatchEvent]] = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["valid", "bad object", "bad type"]))
        if kind == "valid":
            watch_type = draw(st.sampled_from(["ADDED", "MODIFIED", "DELETED"]))
            items.append((True, WatchEvent(watch_type, draw(valid_events()))))
        elif kind == "bad object":
            watch_type = draw(st.sampled_from(["ADDED", "MODIFIED", "DELETED"]))
            items.append((False, WatchEvent(watch_type, draw(BAD_OBJECTS))))
        else:
            items.append((False, WatchEvent(draw(BAD_WATCH_TYPES), draw(valid_events()))))
    for rv, (_, event) in enumerate(items, start=10):
        if isinstance(event.object, dict) and isinstance(event.object.get("metadata"), dict):
            event.object["metadata"].setdefault("resourceVersion", str(rv))
            if event.object["metadata"]["resourceVersion"] == "0":
                event.object["metadata"]["resourceVersion"] = str(rv)
    return items


def _run(listed: list[Any], watched: list[WatchEvent]) -> Collected:
    stop = threading.Event()
    source = ScriptedSource([[EventPage(listed, "5", None)]], [watched], stop)
    sink = Collected()
    Watcher(
        cluster="c1",
        source=source,
        sink=sink,
        observer=sink,
        now=lambda: "2026-01-01T00:00:00Z",
        stop=stop,
        backoff=Backoff(base_s=0.001, cap_s=0.001),
    ).run()
    return sink


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(listed=streams(), watched=streams())
def test_bad_watch_objects_are_set_aside_once_and_the_valid_events_published_as_without_them(
    listed: list[tuple[bool, WatchEvent]], watched: list[tuple[bool, WatchEvent]]
) -> None:
    # The list carries objects only (no watch types): its "bad type" items are valid Events there.
    list_items = [e.object for _, e in listed]
    list_bad = sum(event_problem(o) is not None for o in list_items)
    assert list_bad == sum(
        not ok and e.type in ("ADDED", "MODIFIED", "DELETED") for ok, e in listed
    )

    mixed = _run(list_items, [e for _, e in watched])
    clean = _run(
        [o for o in list_items if event_problem(o) is None], [e for ok, e in watched if ok]
    )

    assert [(r.watch_type, r.object, r.key) for r in mixed.records] == [
        (r.watch_type, r.object, r.key) for r in clean.records
    ]
    bad = list_bad + sum(not ok for ok, _ in watched)
    assert mixed.set_aside_reasons == ["not_an_event"] * bad
    assert clean.set_aside_reasons == []
    assert "publish_failed" not in mixed.causes


def _line(draw: st.DrawFn, kind: str) -> str:
    if kind == "valid":
        event = draw(valid_events())
        if draw(st.booleans()):
            event["_watch_type"] = draw(st.sampled_from(["ADDED", "MODIFIED", "DELETED"]))
        return json.dumps(event)
    if kind == "corrupted":
        return json.dumps(draw(corrupted_events()))
    if kind == "bad extras":
        return json.dumps(
            {**draw(valid_events()), draw(st.sampled_from(["_cluster", "_watch_type"])): draw(JSON)}
        )
    if kind == "json":
        return json.dumps(draw(JSON))
    return draw(st.text().map(lambda t: t.replace("\n", " ")))


@st.composite
def files(draw: st.DrawFn) -> list[tuple[str, str]]:
    kinds = ["valid", "corrupted", "bad extras", "json", "text"]
    return [
        (kind, _line(draw, kind)) for kind in draw(st.lists(st.sampled_from(kinds), max_size=12))
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=files())
def test_replay_of_arbitrary_lines_reports_each_bad_one_by_number_and_publishes_the_rest(
    lines: list[tuple[str, str]],
) -> None:
    sink = Collected()
    report = replay(
        [text for _, text in lines],
        cluster="c1",
        filters={},
        sink=sink,
        now=lambda: "2026-01-01T00:00:00Z",
        source="f",
    )
    reported = [int(error.split(":")[1]) for error in report.errors]
    assert len(reported) == len(set(reported))  # each line at most once
    numbered = list(enumerate(lines, start=1))
    for number, (kind, text) in numbered:
        if kind == "valid":
            assert number not in reported
        elif kind in ("corrupted",) and text.strip():
            assert number in reported
    non_blank = sum(bool(text.strip()) for _, text in lines)
    assert report.published + report.filtered + len(report.errors) == non_blank
    assert report.published == len(sink.records)
    assert report.published >= sum(kind == "valid" for kind, _ in lines)
