from __future__ import annotations

import json

from collectors.filters import EventFilter, Selection
from collectors.records import to_raw_record
from collectors.replay import replay
from tests.collectors.test_watching import Collected, SizeRefusingSink
from tests.support import rollout_event


def _line(event: dict[str, object], **extra: str) -> str:
    return json.dumps({**event, **extra})


def test_replayed_events_become_the_records_the_watcher_would_publish() -> None:
    event = rollout_event("RolloutResumed", "Rollout is resumed", count=3)
    sink = Collected()
    report = replay([_line(event)], cluster="prod-eu", filters={}, sink=sink, now=lambda: "t")
    assert report.published == 1
    assert sink.records == [
        to_raw_record(cluster="prod-eu", watch_type="ADDED", event=event, collected_at="t")
    ]


def test_underscore_fields_override_the_flags_and_are_not_published() -> None:
    event = rollout_event("RolloutResumed", "Rollout is resumed")
    sink = Collected()
    replay(
        [_line(event, _cluster="staging", _watch_type="MODIFIED")],
        cluster="prod-eu",
        filters={},
        sink=sink,
        now=lambda: "t",
    )
    [record] = sink.records
    assert (record.cluster, record.watch_type.value) == ("staging", "MODIFIED")
    assert "_cluster" not in record.object
    assert "_watch_type" not in record.object


def test_the_clusters_filter_applies() -> None:
    only_pods = {"prod-eu": EventFilter(include=Selection(kinds=frozenset({"Pod"})))}
    sink = Collected()
    report = replay(
        [_line(rollout_event("X", "m"))],
        cluster="prod-eu",
        filters=only_pods,
        sink=sink,
        now=lambda: "t",
    )
    assert (report.published, report.filtered, sink.records) == (0, 1, [])


def test_unusable_lines_are_reported_by_number_and_the_rest_published() -> None:
    good = _line(rollout_event("X", "m"))
    bookmark = _line(rollout_event("X", "m"), _watch_type="BOOKMARK")
    lines = [good, "{not json", "[1]", bookmark, "", good]
    sink = Collected()
    report = replay(
        lines, cluster="prod-eu", filters={}, sink=sink, now=lambda: "t", source="events.jsonl"
    )
    assert report.published == 2
    assert [e.split(":")[1] for e in report.errors] == ["2", "3", "4"]
    assert "events.jsonl:2: not JSON" in report.errors[0]


def test_lines_without_a_cluster_are_refused() -> None:
    report = replay(
        [_line(rollout_event("X", "m"))],
        cluster=None,
        filters={},
        sink=Collected(),
        now=lambda: "t",
    )
    assert report.published == 0
    assert "no valid cluster" in report.errors[0]


def test_lines_that_are_not_core_v1_events_are_reported_with_the_reason() -> None:
    good = _line(rollout_event("X", "m"))
    no_uid = rollout_event("X", "m")
    del no_uid["metadata"]["uid"]
    lines = [
        good,
        json.dumps(no_uid),
        _line({**rollout_event("X", "m"), "reason": 42}),
        json.dumps({**rollout_event("X", "m"), "_watch_type": ["ADDED"]}),
        _line({**rollout_event("X", "m"), "lastTimestamp": "2026-02-30T00:00:00Z"}),
        good,
    ]
    sink = Collected()
    report = replay(lines, cluster="c", filters={}, sink=sink, now=lambda: "t", source="f")
    assert report.published == 2
    assert report.errors == [
        "f:2: not a core/v1 Event: no metadata.uid",
        "f:3: not a core/v1 Event: reason is a number, not a string",
        "f:4: '_watch_type' must be ADDED, MODIFIED or DELETED, not ['ADDED']",
        "f:5: not a core/v1 Event: lastTimestamp must be an RFC 3339 date-time, "
        "not '2026-02-30T00:00:00Z'",
    ]


def test_a_line_kafka_refuses_for_good_is_reported_and_the_rest_published() -> None:
    huge = rollout_event("X", "m")
    huge["metadata"]["annotations"] = {"dump": "x" * 2_000_000}
    long_message = rollout_event("Unhealthy", "Liveness probe failed: " + "y" * 2_000_000)
    lines = [_line(rollout_event("X", "a")), _line(huge), _line(long_message)]
    sink = SizeRefusingSink(1_000_000)
    report = replay(lines, cluster="c", filters={}, sink=sink, now=lambda: "t", source="f")
    assert report.published == 2
    [error] = report.errors
    assert error.startswith("f:2: not published: the record takes 2000")
    assert report.shortened == ["f:3: message shortened from 2000023 bytes to 65536"]
    assert len(sink.records[1].object["message"].encode()) <= 65_536


def test_a_line_kafka_did_not_acknowledge_is_reported_by_its_number() -> None:
    sink = Collected(fail_next=1)
    report = replay(
        [_line(rollout_event("X", "a")), _line(rollout_event("X", "b"))],
        cluster="c",
        filters={},
        sink=sink,
        now=lambda: "t",
        source="f",
    )
    assert (report.published, report.failed) == (1, 1)
    assert report.errors == ["f:1: not delivered: _MSG_TIMED_OUT"]
