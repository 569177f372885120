"""The supervisor against in-memory sources and checkpoint stores: health never waits on stopping
clusters, checkpoints Kafka cannot take now are kept and written later, a watch that fails
unexpectedly is restarted."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from collectors.checkpoints import Checkpoint
from collectors.config import ClusterSpec
from collectors.errors import PublishError
from collectors.leasekeeper import LeaseKeeper
from collectors.leasestore import MemoryLeaseStore
from collectors.metrics import WATCH_RESTARTS
from collectors.supervisor import FIRST_ATTEMPT_LIMIT_S, Supervisor, WatchSettings
from collectors.watching import EventPage, WatchEvent
from herald_runtime.backoff import Backoff
from tests.collectors.test_leasekeeper import TIMINGS, Clock
from tests.collectors.test_watching import Collected, _event
from tests.support import wait_until


@dataclass
class StuckSource:
    """Lists nothing at `list_rv`, then watches until `release` is set: it ignores `interrupt`,
    like a thread stuck in a call that does not return."""

    release: threading.Event
    list_rv: str = "7"
    fail_first_lists: int = 0
    lists: int = 0
    watching: threading.Event = field(default_factory=threading.Event)
    server: str = "https://fake"

    def list_page(self, *, limit: int, continue_token: str | None) -> EventPage:
        self.lists += 1
        if self.lists <= self.fail_first_lists:
            raise RuntimeError("a bug nobody foresaw")
        return EventPage([], self.list_rv, None)

    def current_resource_version(self) -> str:
        return self.list_rv

    def watch(self, *, resource_version: str, timeout_s: int) -> Iterator[WatchEvent]:
        self.watching.set()
        self.release.wait(30)
        return iter(())

    def interrupt(self) -> None:
        pass


@dataclass
class FakeStore:
    down: bool = False
    saved: list[tuple[str, str]] = field(default_factory=list)

    def save(self, scope: str, checkpoint: Checkpoint) -> None:
        if self.down:
            raise PublishError("the producer's queue is full")
        self.saved.append((scope, checkpoint.resource_version))


def _spec(name: str, *namespaces: str) -> ClusterSpec:
    return ClusterSpec(name=name, kubeconfig=Path("/dev/null"), namespaces=namespaces)


_STARTED: list[Supervisor] = []


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # let the stuck threads end
    while _STARTED:  # and no watch thread outlives its test
        _STARTED.pop().stop()


def _supervisor(
    sources: dict[str, StuckSource], store: FakeStore, *, stop_timeout_s: float = 15
) -> Supervisor:
    supervisor = Supervisor(
        connect=lambda spec, namespace: sources[f"{spec.name}/{namespace or '*'}"],
        sink=Collected(),
        store=store,
        checkpoints={},
        now=lambda: "2026-01-01T00:00:00Z",
        watch=WatchSettings(backoff=Backoff(base_s=0.01, cap_s=0.01)),
        stop_timeout_s=stop_timeout_s,
    )
    _STARTED.append(supervisor)
    return supervisor


def test_health_reads_never_wait_while_a_reload_stops_stuck_clusters(
    release: threading.Event,
) -> None:
    sources = {key: StuckSource(release) for key in ("a/*", "b/*")}
    supervisor = _supervisor(sources, FakeStore(), stop_timeout_s=2)
    supervisor.apply((_spec("a"), _spec("b")))
    for source in sources.values():
        assert source.watching.wait(10)
    started = time.monotonic()
    reload = threading.Thread(target=supervisor.apply, args=((),))
    reload.start()
    slowest = 0.0
    while reload.is_alive():
        asked = time.monotonic()
        supervisor.contact_ages(time.time())
        supervisor.clusters  # noqa: B018 - what /readyz reads
        slowest = max(slowest, time.monotonic() - asked)
        time.sleep(0.05)
    took = time.monotonic() - started
    assert slowest < 0.5, f"a health read waited {slowest:.1f}s on the reload"
    assert 1.5 < took < 3.5, f"two stuck clusters took {took:.1f}s to stop: not stopped together"
    assert supervisor.clusters == []


def test_a_checkpoint_kafka_cannot_take_now_is_kept_and_written_later(
    release: threading.Event,
) -> None:
    sources = {"a/*": StuckSource(release, list_rv="7"), "b/x": StuckSource(release, list_rv="9")}
    store = FakeStore(down=True)
    supervisor = _supervisor(sources, store)
    supervisor.apply((_spec("a"), _spec("b", "x")))
    for source in sources.values():
        assert source.watching.wait(10)
    assert supervisor.save_checkpoints() == 0  # no exception: the main loop goes on
    release.set()
    supervisor.apply((_spec("a"),))  # b is removed while Kafka is away: its checkpoint too is kept
    assert store.saved == []
    store.down = False
    assert supervisor.save_checkpoints() == 2
    assert sorted(store.saved) == [("a/*", "7"), ("b/x", "9")]
    assert supervisor.save_checkpoints() == 0  # written once


def test_a_watch_that_fails_unexpectedly_is_restarted_and_goes_on(
    release: threading.Event,
) -> None:
    source = StuckSource(release, fail_first_lists=2)
    before = WATCH_RESTARTS.labels("c", "unexpected_error")._value.get()
    supervisor = _supervisor({"c/*": source}, FakeStore())
    supervisor.apply((_spec("c"),))
    assert source.watching.wait(10)
    assert source.lists == 3
    wait_until(lambda: WATCH_RESTARTS.labels("c", "unexpected_error")._value.get() == before + 2)


def test_readiness_waits_for_each_watchs_first_attempt_only(release: threading.Event) -> None:
    sources = {"up/*": StuckSource(release), "down/*": StuckSource(release, fail_first_lists=99)}
    supervisor = _supervisor(sources, FakeStore())
    supervisor.apply((_spec("up"), _spec("down")))
    assert wait_until(lambda: supervisor.starting(time.time()) == [], timeout_s=10)
    assert supervisor.clusters == ["down", "up"]  # the one failing still runs, and retries


def test_a_watch_silent_at_its_first_attempt_holds_readiness_back_for_a_bounded_time(
    release: threading.Event,
) -> None:
    @dataclass
    class Silent(StuckSource):
        def list_page(self, *, limit: int, continue_token: str | None) -> EventPage:
            self.release.wait(30)
            return EventPage([], self.list_rv, None)

    supervisor = _supervisor({"slow/*": Silent(release)}, FakeStore())
    supervisor.apply((_spec("slow"),))
    assert supervisor.starting(time.time()) == ["slow/*"]
    assert supervisor.starting(time.time() + FIRST_ATTEMPT_LIMIT_S) == []


def test_checkpoints_read_again_replace_those_of_scopes_not_running_only(
    release: threading.Event,
) -> None:
    store = FakeStore()
    supervisor = _supervisor({"mine/*": StuckSource(release, list_rv="7")}, store)
    supervisor.apply((_spec("mine"),))
    assert wait_until(lambda: supervisor.save_checkpoints() or store.saved, timeout_s=10)
    supervisor.merge_checkpoints(
        {"mine/*": Checkpoint("1", "https://fake"), "theirs/*": Checkpoint("42", "https://x")}
    )
    assert supervisor.unsaved_clusters() == set()  # read from Kafka: nothing to write back
    release.set()
    supervisor.apply(())
    supervisor.merge_checkpoints({"mine/*": Checkpoint("8", "https://fake")})
    assert supervisor.save_checkpoints() == 0
    assert store.saved == [("mine/*", "7")]


def test_a_watch_whose_lease_expired_while_paused_publishes_and_checkpoints_nothing_more(
    release: threading.Event,
) -> None:
    """A replica paused past its renew deadline (SIGSTOP): when it runs again, the record its watch
    was about to publish is dropped and its watch stops, before the beat notices anything, and the
    checkpoint it has not written is forgotten rather than written over the next holder's."""
    clock = Clock()
    keeper = LeaseKeeper(
        MemoryLeaseStore(), holder="a", timings=TIMINGS, clock=clock, wall=clock.wall
    )
    keeper.want({"c"})
    keeper.beat()
    assert keeper.holds("c")
    paused = threading.Event()

    @dataclass
    class Pausing(StuckSource):
        def list_page(self, *, limit: int, continue_token: str | None) -> EventPage:
            return EventPage([_event("before", 7)], "7", None)

        def watch(self, *, resource_version: str, timeout_s: int) -> Iterator[WatchEvent]:
            self.watching.set()
            paused.wait(30)
            yield WatchEvent("ADDED", _event("after", 8))
            self.release.wait(30)

    store, sink = FakeStore(), Collected()
    supervisor = Supervisor(
        connect=lambda spec, namespace: source,
        sink=sink,
        store=store,
        checkpoints={},
        now=lambda: "2026-01-01T00:00:00Z",
        watch=WatchSettings(backoff=Backoff(base_s=0.01, cap_s=0.01)),
        holds=keeper.holds,
    )
    _STARTED.append(supervisor)
    source = Pausing(release)
    supervisor.apply((_spec("c"),))
    assert source.watching.wait(10)  # listed at 7: a checkpoint not written yet
    clock.now += TIMINGS.duration_s + 5  # paused: another replica may hold it by now
    paused.set()
    assert wait_until(lambda: all(not t.is_alive() for t in _threads(supervisor)), timeout_s=10)
    assert [r.object["metadata"]["name"] for r in sink.records] == ["before"]
    assert supervisor.save_checkpoints() == 0
    supervisor.apply(())
    assert store.saved == []
    assert supervisor.unsaved_clusters() == set()


def _threads(supervisor: Supervisor) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("watch-c-")]
