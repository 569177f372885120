"""The list-then-watch loop against an in-memory EventSource (no HTTP, no Kafka)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from collectors.errors import ExpiredError, KubeError, PublishError, RecordRefusedError
from collectors.filters import EventFilter, Selection
from collectors.progress import Progress
from collectors.watching import EventPage, Watcher, WatchEvent
from herald_contracts import RawRecord, encode_raw_record
from herald_runtime.backoff import Backoff


def _event(name: str, rv: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": name, "resourceVersion": str(rv)},
        "involvedObject": {"kind": "Rollout", "namespace": "ns", "name": "r"},
    }


@dataclass
class ScriptedSource:
    """Pages for each list, and a script per watch call: events, or an exception to raise.

    The server's current resourceVersion (`current_resource_version`) is `current` if given, else
    the newest in the script, or what it sent since if newer: a server is never behind that."""

    pages: list[list[EventPage]]
    watches: list[list[WatchEvent | Exception | float]]
    """A float in a script is seconds passing on `clock` (e.g. `[300.0]`: a quiet watch that the
    server's 300 s timeout ends)."""
    stop: threading.Event
    list_calls: int = 0
    watch_from: list[str] = field(default_factory=list)
    current: str | None = None
    now: float = 0.0
    sent: int = 0
    """The newest resourceVersion a watch carried."""

    def clock(self) -> float:
        return self.now

    def __post_init__(self) -> None:
        if self.current is None:
            versions = [p.resource_version for pages in self.pages for p in pages] + [
                e.object["metadata"]["resourceVersion"]
                for script in self.watches
                for e in script
                if isinstance(e, WatchEvent)
                and isinstance(e.object, dict)
                and isinstance(e.object.get("metadata"), dict)
                and str(e.object["metadata"].get("resourceVersion", "")).isdecimal()
            ]
            self.current = str(max((int(v) for v in versions if v.isdecimal()), default=0))

    def current_resource_version(self) -> str:
        assert self.current is not None
        self.current = str(max(int(self.current), self.sent))
        return self.current

    def list_page(self, *, limit: int, continue_token: str | None) -> EventPage:
        pages = self.pages[min(self.list_calls, len(self.pages) - 1)]
        index = int(continue_token or 0)
        if index == len(pages) - 1:
            self.list_calls += 1
        return pages[index]

    def watch(self, *, resource_version: str, timeout_s: int) -> Iterator[WatchEvent]:
        self.watch_from.append(resource_version)
        if not self.watches:
            self.stop.set()
            return
        for item in self.watches.pop(0):
            if isinstance(item, Exception):
                raise item
            if isinstance(item, float):
                self.now += item
                continue
            rv = item.object.get("metadata", {}) if isinstance(item.object, dict) else None
            rv = rv.get("resourceVersion") if isinstance(rv, dict) else None
            if isinstance(rv, str) and rv.isdecimal():
                self.sent = max(self.sent, int(rv))
            yield item


@dataclass
class Collected:
    """An in-memory sink (acknowledging at once, or failing the records it is told to) and observer."""

    records: list[RawRecord] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)
    dropped_reasons: list[str] = field(default_factory=list)
    set_aside_reasons: list[str] = field(default_factory=list)
    shortened_count: int = 0
    fail_next: int = 0
    contacts: int = 0

    def publish(
        self, record: RawRecord, *, on_delivery: Callable[[str | None], None], stop: threading.Event
    ) -> None:
        if self.fail_next:
            self.fail_next -= 1
            on_delivery("_MSG_TIMED_OUT")
            return
        self.records.append(record)
        on_delivery(None)

    def received(self, watch_type: str) -> None:
        pass

    def observed(self, event: dict[str, Any]) -> None:
        pass

    def dropped(self, reason: str) -> None:
        self.dropped_reasons.append(reason)

    def set_aside(self, reason: str) -> None:
        self.set_aside_reasons.append(reason)

    def shortened(self) -> None:
        self.shortened_count += 1

    def restarted(self, cause: str) -> None:
        self.causes.append(cause)

    def relisted(self, cause: str) -> None:
        self.causes.append(f"relist:{cause}")

    def contacted(self) -> None:
        self.contacts += 1


def _watcher(source: ScriptedSource, sink: Collected) -> Watcher:
    return Watcher(
        cluster="c1",
        source=source,
        sink=sink,
        observer=sink,
        now=lambda: "2026-01-01T00:00:00Z",
        stop=source.stop,
        backoff=Backoff(base_s=0.001, cap_s=0.001),
        clock=source.clock,
    )


def _names(sink: Collected) -> list[str]:
    return [r.object["metadata"]["name"] for r in sink.records]


def test_every_page_of_the_list_is_published_then_the_watch_starts_at_the_list_version() -> None:
    stop = threading.Event()
    pages = [EventPage([_event("a", 1)], "5", "1"), EventPage([_event("b", 2)], "5", None)]
    source = ScriptedSource([pages], [[WatchEvent("ADDED", _event("c", 6))]], stop)
    sink = Collected()
    _watcher(source, sink).run()
    assert _names(sink) == ["a", "b", "c"]
    assert [r.watch_type.value for r in sink.records] == ["ADDED", "ADDED", "ADDED"]
    assert source.watch_from[0] == "5"


def test_a_stream_that_ends_is_resumed_from_the_last_version_seen_including_bookmarks() -> None:
    stop = threading.Event()
    bookmark = WatchEvent("BOOKMARK", {"metadata": {"resourceVersion": "9"}})
    source = ScriptedSource(
        [[EventPage([], "5", None)]],
        [[WatchEvent("ADDED", _event("a", 7))], [bookmark], []],
        stop,
    )
    sink = Collected()
    _watcher(source, sink).run()
    assert source.watch_from == ["5", "7", "9", "9"]
    assert source.list_calls == 1
    assert _names(sink) == ["a"]


def test_an_expired_watch_relists_and_carries_on() -> None:
    stop = threading.Event()
    expired = WatchEvent(
        "ERROR", {"kind": "Status", "code": 410, "message": "too old resource version"}
    )
    source = ScriptedSource(
        [
            [EventPage([_event("a", 1)], "5", None)],
            [EventPage([_event("a", 1), _event("b", 8)], "8", None)],
        ],
        [[expired], [WatchEvent("ADDED", _event("c", 9))]],
        stop,
    )
    sink = Collected()
    _watcher(source, sink).run()
    assert source.watch_from[:2] == ["5", "8"]
    assert _names(sink) == ["a", "b", "c"]  # "a" (rv 1) was published before: the relist skips it
    assert "relist:expired" in sink.causes


def test_api_errors_back_off_and_retry_without_losing_the_position() -> None:
    stop = threading.Event()
    source = ScriptedSource(
        [[EventPage([], "5", None)]],
        [
            [KubeError("500 Internal Server Error", status=500)],
            [WatchEvent("ADDED", _event("a", 6))],
        ],
        stop,
    )
    sink = Collected()
    _watcher(source, sink).run()
    assert source.watch_from[:2] == ["5", "5"]
    assert "http_500" in sink.causes
    assert _names(sink) == ["a"]


def test_an_expired_list_continue_relists_from_scratch() -> None:
    stop = threading.Event()

    class ExpiringSource(ScriptedSource):
        def list_page(self, *, limit: int, continue_token: str | None) -> EventPage:
            if continue_token and self.list_calls == 0:
                self.list_calls += 1
                raise ExpiredError("continue token too old", status=410)
            return super().list_page(limit=limit, continue_token=continue_token)

    pages = [EventPage([_event("a", 1)], "5", "1"), EventPage([_event("b", 2)], "5", None)]
    source = ExpiringSource([pages], [[]], stop)
    sink = Collected()
    _watcher(source, sink).run()
    assert _names(sink) == ["a", "a", "b"]


def test_backoff_grows_exponentially_up_to_the_cap_with_bounded_jitter() -> None:
    backoff = Backoff(base_s=0.5, cap_s=30, jitter=0.2)
    assert backoff.delay(1, rand=0.5) == 0.5
    assert backoff.delay(4, rand=0.5) == 4.0
    assert backoff.delay(20, rand=0.5) == 30
    assert backoff.delay(4, rand=0.0) == 4.0 * 0.8
    assert backoff.delay(4, rand=0.999999) < 4.0 * 1.2


def test_a_record_kafka_did_not_take_is_re_read_from_the_checkpoint() -> None:
    stop = threading.Event()
    source = ScriptedSource(
        [[EventPage([], "5", None)]],
        [
            [WatchEvent("ADDED", _event("a", 6)), WatchEvent("ADDED", _event("b", 7))],
            [WatchEvent("ADDED", _event("b", 7)), WatchEvent("ADDED", _event("c", 8))],
        ],
        stop,
    )
    sink = Collected()

    class FailSecond(Collected):
        def publish(
            self,
            record: RawRecord,
            *,
            on_delivery: Callable[[str | None], None],
            stop: threading.Event,
        ) -> None:
            if record.object["metadata"]["name"] == "b" and not any(
                c == "publish_failed" for c in sink.causes
            ):
                on_delivery("_MSG_TIMED_OUT")
                return
            sink.publish(record, on_delivery=on_delivery, stop=stop)

    watcher = _watcher(source, sink)
    watcher.sink = FailSecond()
    watcher.run()
    assert source.watch_from[:2] == ["5", "6"]  # the checkpoint stopped at a's position
    assert "publish_failed" in sink.causes
    assert _names(sink) == ["a", "b", "c"]


def test_a_checkpoint_resumes_the_watch_without_listing() -> None:
    stop = threading.Event()
    source = ScriptedSource(
        [[EventPage([_event("old", 1)], "5", None)]], [[WatchEvent("ADDED", _event("b", 9))]], stop
    )
    sink = Collected()
    watcher = _watcher(source, sink)
    watcher.progress = Progress("8")
    watcher.resource_version = "8"
    watcher.run()
    assert source.list_calls == 0
    assert source.watch_from[0] == "8"
    assert _names(sink) == ["b"]


def test_filtered_events_are_not_published_but_still_move_the_position() -> None:
    stop = threading.Event()
    pod = {**_event("pod", 6), "involvedObject": {"kind": "Pod", "namespace": "ns", "name": "p"}}
    source = ScriptedSource([[EventPage([], "5", None)]], [[WatchEvent("ADDED", pod)], []], stop)
    sink = Collected()
    watcher = _watcher(source, sink)
    watcher.event_filter = EventFilter(include=Selection(kinds=frozenset({"Rollout"})))
    watcher.run()
    assert sink.records == []
    assert sink.dropped_reasons == ["filtered"]
    assert watcher.progress.checkpoint == "6"
    assert source.watch_from[:2] == ["5", "6"]


def test_events_missing_only_optional_fields_are_published_as_they_are() -> None:
    stop = threading.Event()
    # Its identity and an involved object are all a core/v1 Event needs; the key's missing parts
    # are empty.
    bare = {
        "metadata": {"uid": "u1", "name": "n", "namespace": "ns", "resourceVersion": "6"},
        "involvedObject": {},
        "reason": "Odd",
    }
    source = ScriptedSource(
        [[EventPage([], "5", None)]], [[WatchEvent("ADDED", bare), WatchEvent("WEIRD", {})]], stop
    )
    sink = Collected()
    _watcher(source, sink).run()
    assert [r.object for r in sink.records] == [bare]
    assert sink.records[0].key == "c1///"
    assert sink.set_aside_reasons == ["not_an_event"]  # the WEIRD watch event


class CountingStop(threading.Event):
    """A stop event that records every wait (the loop's backoff) and stops the loop after `limit`
    calls of `watch` or waits, whichever comes first, so that a loop that never waits still ends."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.waits: list[float] = []
        self.limit = limit

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        if len(self.waits) >= self.limit:
            self.set()
        return self.is_set()


class RefusingSink(Collected):
    """Raises PublishError (the producer refused the record at once) for Events named `refuse`."""

    def __init__(self, refuse: str) -> None:
        super().__init__()
        self.refuse = refuse
        self.attempts = 0

    def publish(
        self, record: RawRecord, *, on_delivery: Callable[[str | None], None], stop: threading.Event
    ) -> None:
        if record.object["metadata"]["name"] == self.refuse:
            self.attempts += 1
            raise PublishError("cannot produce: Broker: Unknown topic or partition")
        super().publish(record, on_delivery=on_delivery, stop=stop)


def test_a_publish_error_restarts_the_watch_only_after_a_growing_backoff() -> None:
    stop = CountingStop(limit=6)
    again = [WatchEvent("ADDED", _event("a", 6)), WatchEvent("ADDED", _event("b", 7))]
    source = ScriptedSource([[EventPage([], "5", None)]], [list(again) for _ in range(50)], stop)
    sink = RefusingSink("b")
    watcher = _watcher(source, sink)
    watcher.sink = sink
    watcher.backoff = Backoff(base_s=0.5, cap_s=4, jitter=0)
    watcher.run()
    # Every attempt at the refused record is followed by a wait, doubling up to the cap: no
    # tight loop of watch requests, whatever made the producer refuse it.
    assert sink.attempts <= len(stop.waits)
    assert stop.waits[:5] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert sink.causes.count("publish_failed") >= 5


def test_a_record_the_producer_refused_does_not_freeze_the_checkpoint() -> None:
    stop = threading.Event()
    source = ScriptedSource(
        [[EventPage([], "5", None)]],
        [
            [WatchEvent("ADDED", _event("a", 6)), WatchEvent("ADDED", _event("b", 7))],
            [WatchEvent("ADDED", _event("b", 7)), WatchEvent("ADDED", _event("c", 8))],
        ],
        stop,
    )
    sink = Collected()

    class RefuseOnce(Collected):
        refused = False

        def publish(
            self,
            record: RawRecord,
            *,
            on_delivery: Callable[[str | None], None],
            stop: threading.Event,
        ) -> None:
            if record.object["metadata"]["name"] == "b" and not self.refused:
                self.refused = True
                raise PublishError("cannot produce: Local: Unknown partition")
            sink.publish(record, on_delivery=on_delivery, stop=stop)

    watcher = _watcher(source, sink)
    watcher.sink = RefuseOnce()
    watcher.run()
    assert _names(sink) == ["a", "b", "c"]
    assert source.watch_from[:2] == ["5", "6"]  # re-read from the checkpoint, after a's position
    assert watcher.progress.checkpoint == "8"  # the refused attempt left nothing pending behind it


NOT_EVENTS: list[Any] = [
    [1, 2, 3],
    "a string",
    None,
    {},
    {"metadata": "x", "involvedObject": {}},
    {"metadata": {"resourceVersion": "6"}, "reason": "Odd"},  # no uid, no involvedObject
    {**_event("bad-reason", 6), "reason": 42},
    {**_event("bad-time", 6), "lastTimestamp": "yesterday"},
    {**_event("bad-involved", 6), "involvedObject": ["Rollout"]},
]


@pytest.mark.parametrize("bad", NOT_EVENTS, ids=repr)
def test_an_object_that_is_not_a_core_v1_event_is_set_aside_and_the_stream_moves_on(
    bad: Any,
) -> None:
    stop = threading.Event()
    source = ScriptedSource(
        [[EventPage([_event("listed", 2), bad], "5", None)]],
        [
            [
                WatchEvent("ADDED", _event("a", 6)),
                WatchEvent("ADDED", bad),
                WatchEvent("MODIFIED", bad),
                WatchEvent("ADDED", _event("c", 8)),
            ]
        ],
        stop,
    )
    sink = Collected()
    _watcher(source, sink).run()
    assert _names(sink) == ["listed", "a", "c"]
    assert sink.set_aside_reasons == ["not_an_event"] * 3


def test_an_event_with_a_huge_message_is_published_once_shortened() -> None:
    stop = threading.Event()
    big = {**_event("big", 7), "message": "Liveness probe failed: " + "x" * 1_100_000}
    source = ScriptedSource(
        [[EventPage([], "5", None)]],
        [[WatchEvent("ADDED", _event("a", 6)), WatchEvent("ADDED", big)]],
        stop,
    )
    sink = Collected()
    watcher = _watcher(source, sink)
    watcher.message_max_bytes = 65_536
    watcher.run()
    assert _names(sink) == ["a", "big"]
    assert len(sink.records[1].object["message"].encode()) <= 65_536
    assert sink.shortened_count == 1
    assert watcher.progress.checkpoint == "7"


class SizeRefusingSink(Collected):
    """Refuses records over `limit` bytes as Kafka would, for good (`RecordRefusedError`)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.refused: list[str] = []

    def publish(
        self, record: RawRecord, *, on_delivery: Callable[[str | None], None], stop: threading.Event
    ) -> None:
        size = len(encode_raw_record(record))
        if size > self.limit:
            self.refused.append(record.object["metadata"]["name"])
            raise RecordRefusedError(f"the record takes {size} bytes", reason="too_large")
        super().publish(record, on_delivery=on_delivery, stop=stop)


def test_a_record_kafka_refuses_for_good_is_set_aside_and_the_checkpoint_moves_past_it() -> None:
    stop = threading.Event()
    huge = _event("huge", 7)
    huge["metadata"]["annotations"] = {"dump": "x" * 2_000_000}  # not the message: cannot shorten
    source = ScriptedSource(
        [[EventPage([], "5", None)]],
        [
            [
                WatchEvent("ADDED", _event("a", 6)),
                WatchEvent("ADDED", huge),
                WatchEvent("ADDED", _event("c", 8)),
            ]
        ],
        stop,
    )
    sink = SizeRefusingSink(1_000_000)
    watcher = _watcher(source, sink)
    watcher.sink = sink
    watcher.run()
    assert _names(sink) == ["a", "c"]
    assert sink.refused == ["huge"]  # tried once, not again
    assert sink.set_aside_reasons == ["too_large"]
    assert "publish_failed" not in sink.causes
    assert watcher.progress.checkpoint == "8"


def test_a_watch_that_ends_at_once_with_nothing_in_it_is_watched_again_only_after_a_backoff() -> (
    None
):
    stop = CountingStop(limit=100)
    source = ScriptedSource(
        pages=[[EventPage([], "5", None)]], watches=[[] for _ in range(5)], stop=stop
    )
    sink = Collected()
    Watcher(
        cluster="c1",
        source=source,
        sink=sink,
        observer=sink,
        now=lambda: "2026-01-01T00:00:00Z",
        stop=stop,
        backoff=Backoff(base_s=0.5, cap_s=4, jitter=0),
        clock=lambda: 0.0,  # every stream ends the moment it starts
    ).run()
    assert len(source.watch_from) == 6  # five empty streams, then the script's end stops the loop
    assert stop.waits == [0.5, 1.0, 2.0, 4.0, 4.0]


# What a real API server does (docs/collectors.md, "What a real API server does"): no bookmarks for
# Events, a wiped or restored etcd behind the same URL, 403s while RBAC warms up, and the stop.

QUIET = 300.0
"""In a script: a watch that carried nothing until the server's timeout (the default 300 s) ended it."""


def _resumed(position: str, *, current: str, watches: list[list[Any]]) -> ScriptedSource:
    """A source asked to resume from `position`, whose server is at `current`."""
    return ScriptedSource(
        [[EventPage([], current, None)]], watches, threading.Event(), current=current
    )


def _resuming_watcher(source: ScriptedSource, sink: Collected, position: str) -> Watcher:
    watcher = _watcher(source, sink)
    watcher.progress = Progress(position)
    watcher.resource_version = position
    return watcher


def test_a_watch_the_server_ends_at_its_timeout_is_contact_and_not_a_restart() -> None:
    source = _resumed("5", current="5", watches=[[QUIET], [QUIET]])
    sink = Collected()
    _resuming_watcher(source, sink, "5").run()
    assert sink.causes == []
    # Each turn: the server's version asked before the watch, then the watch's clean end; and the
    # version asked before the third watch, which ends the script.
    assert sink.contacts == 5


def test_a_quiet_watch_that_runs_to_its_timeout_moves_the_position_to_the_servers_version() -> None:
    source = _resumed("5", current="9", watches=[[QUIET]])
    sink = Collected()
    watcher = _resuming_watcher(source, sink, "5")
    watcher.run()
    assert source.watch_from == ["5", "9"]
    assert watcher.progress.checkpoint == "9"  # a compaction past 5 no longer forces a relist


def test_a_watch_that_carried_something_moves_only_as_far_as_what_it_carried() -> None:
    # A reader slowed by Kafka may leave changes in the server's buffers when the timeout ends the
    # stream: the version asked before it is no proof they were delivered.
    source = _resumed("5", current="20", watches=[[WatchEvent("ADDED", _event("a", 7)), QUIET]])
    sink = Collected()
    watcher = _resuming_watcher(source, sink, "5")
    watcher.run()
    assert source.watch_from == ["5", "7"]
    assert watcher.progress.checkpoint == "7"


def test_a_quiet_watch_that_ends_before_its_timeout_does_not_move_the_position() -> None:
    source = _resumed("5", current="9", watches=[[30.0]])
    sink = Collected()
    watcher = _resuming_watcher(source, sink, "5")
    watcher.run()
    assert source.watch_from == ["5", "5"]
    assert sink.causes == ["stream_ended"]


def test_backoff_grows_only_with_failures_and_a_clean_end_starts_it_again() -> None:
    stop = CountingStop(limit=100)
    failure = KubeError("500 Internal Server Error", status=500)
    source = ScriptedSource(
        [[EventPage([], "5", None)]], [[failure], [failure], [QUIET], [failure]], stop
    )
    sink = Collected()
    watcher = _resuming_watcher(source, sink, "5")
    watcher.backoff = Backoff(base_s=0.5, cap_s=30, jitter=0)
    watcher.run()
    assert stop.waits == [0.5, 1.0, 0.5]
    assert sink.causes == ["http_500"] * 3


def test_a_checkpoint_newer_than_the_server_relists_and_publishes_everything_it_holds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # etcd wiped or restored behind the same URL: the server's versions start again below the
    # checkpoint. A watch from 50 would carry nothing until the server passed 50.
    stop = threading.Event()
    listed = [_event("a", 1), _event("b", 2)]
    source = ScriptedSource(
        [[EventPage(listed, "3", None)]], [[WatchEvent("ADDED", _event("c", 4))]], stop, current="3"
    )
    sink = Collected()
    watcher = _resuming_watcher(source, sink, "50")
    with caplog.at_level(logging.INFO, logger="collectors.watching"):
        watcher.run()
    assert _names(sink) == ["a", "b", "c"]  # none skipped as "at or before the checkpoint"
    assert "relist:server_behind" in sink.causes
    assert source.watch_from[0] == "3"
    assert watcher.progress.checkpoint == "4"
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert all(word in warning.getMessage() for word in ("c1", "50", "resourceVersion 3"))


def test_a_server_that_falls_behind_while_watched_is_relisted() -> None:
    stop = threading.Event()

    class WipedAfterFirstWatch(ScriptedSource):
        def current_resource_version(self) -> str:
            if len(self.watch_from) == 1:
                self.current, self.sent = "1", 1  # etcd wiped: at 1, and carries on from there
                return "1"
            return super().current_resource_version()

    source = WipedAfterFirstWatch(
        [[EventPage([_event("again", 1)], "1", None)]],
        [[WatchEvent("ADDED", _event("a", 8))], [WatchEvent("ADDED", _event("after", 2))]],
        stop,
    )
    sink = Collected()
    watcher = _resuming_watcher(source, sink, "7")
    watcher.run()
    assert _names(sink) == ["a", "again", "after"]
    assert source.watch_from[:2] == ["7", "1"]
    assert sink.causes.count("relist:server_behind") == 1


def test_a_stream_broken_by_the_stop_is_neither_a_warning_nor_a_restart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = threading.Event()

    class BrokenByStop(ScriptedSource):
        def watch(self, *, resource_version: str, timeout_s: int) -> Iterator[WatchEvent]:
            self.watch_from.append(resource_version)
            self.stop.set()  # SIGTERM: the supervisor sets the stop and interrupts the stream
            raise KubeError("watch stream broke: Connection broken")
            yield  # a generator, like the real one

    source = BrokenByStop([[EventPage([], "5", None)]], [], stop)
    sink = Collected()
    with caplog.at_level(logging.INFO, logger="collectors.watching"):
        _resuming_watcher(source, sink, "5").run()
    assert sink.causes == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_403s_right_after_the_start_are_rbac_warming_up_not_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    forbidden = KubeError("403 Forbidden", status=403)
    source = _resumed(
        "5",
        current="6",
        watches=[[forbidden], [1.0, forbidden], [WatchEvent("ADDED", _event("a", 6))]],
    )
    sink = Collected()
    with caplog.at_level(logging.INFO, logger="collectors.watching"):
        _resuming_watcher(source, sink, "5").run()
    assert sink.causes[:2] == ["forbidden_while_starting"] * 2
    assert "http_403" not in sink.causes
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert _names(sink) == ["a"]


def test_a_403_that_lasts_past_the_grace_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    forbidden = KubeError("403 Forbidden", status=403)
    source = _resumed("5", current="5", watches=[[forbidden], [20.0, forbidden], [forbidden]])
    sink = Collected()
    with caplog.at_level(logging.INFO, logger="collectors.watching"):
        _resuming_watcher(source, sink, "5").run()
    assert sink.causes == ["forbidden_while_starting", "http_403", "http_403"]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


def test_403s_right_after_the_server_was_unreachable_are_rbac_warming_up() -> None:
    forbidden = KubeError("403 Forbidden", status=403)
    source = _resumed(
        "5",
        current="5",
        watches=[
            [QUIET],  # long after the start
            [KubeError("API server unreachable: Connection refused")],  # it restarts ...
            [forbidden],  # ... and forbids while its RBAC warms up
            [forbidden],
        ],
    )
    sink = Collected()
    _resuming_watcher(source, sink, "5").run()
    assert sink.causes == ["connection", "forbidden_while_starting", "forbidden_while_starting"]
