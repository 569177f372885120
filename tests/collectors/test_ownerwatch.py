"""The owner caches' list/watch loop, against an in-memory source: it lists every kind then follows
its watch, relists on 410, treats a kind the server does not serve as empty, keeps its bound, and
the Event watch publishes what it resolves (and, without waiting, what it cannot)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from collectors.errors import ExpiredError, KubeError
from collectors.owners import Resource
from collectors.ownerwatch import OwnerCaches, OwnerSettings
from collectors.watching import EventPage, Watcher, WatchEvent
from herald_runtime.backoff import Backoff
from tests.collectors.test_owners import DEPLOYMENT, POD, REPLICASET, involved, obj, ref
from tests.support import wait_until

_END = object()


class FakeMetadata:
    """Lists what `objects` holds per resource; each watch streams what the test puts on its
    resource's queue until `_END` (a clean end) or an exception (raised)."""

    def __init__(
        self, objects: dict[Resource, list[dict[str, Any]]], *, absent: set[Resource]
    ) -> None:
        self.objects = objects
        self.absent = absent
        self.streams: dict[Resource, queue.Queue[Any]] = {r: queue.Queue() for r in Resource}
        self.lists: dict[Resource, int] = dict.fromkeys(Resource, 0)
        self.version = "10"
        """The server's resourceVersion, as every list answers it."""
        self.interrupted = threading.Event()
        self.stop = threading.Event()
        """The caches' stop: a watch ends with it, as an interrupted stream does."""

    def list_page(self, resource: Resource, *, limit: int, continue_token: str | None) -> EventPage:
        if resource in self.absent:
            raise KubeError(f"{resource.value}: 404 Not Found", status=404)
        if limit > 1:  # (a list of one item asks the server's version before a watch)
            self.lists[resource] += 1
        items = self.objects.get(resource, [])
        start = int(continue_token or 0)
        rest = start + limit
        return EventPage(
            items=items[start:rest],
            resource_version=self.version,
            continue_token=str(rest) if rest < len(items) else None,
        )

    def watch(
        self, resource: Resource, *, resource_version: str, timeout_s: int
    ) -> Iterator[WatchEvent]:
        stream = self.streams[resource]
        while not self.interrupted.is_set() and not self.stop.is_set():
            try:
                item = stream.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    def interrupt(self) -> None:
        self.interrupted.set()


class Observed:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.events: list[tuple[str, ...]] = []

    def cached(self, kind: str, count: int) -> None:
        self.counts[kind] = count

    def refused(self, kind: str) -> None:
        self.events.append(("refused", kind))

    def relisted(self, kind: str, cause: str) -> None:
        self.events.append(("relisted", kind, cause))

    def failed(self, kind: str, cause: str) -> None:
        self.events.append(("failed", kind, cause))

    def resolved(self, outcome: str) -> None:
        self.events.append(("resolved", outcome))


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def start(
    source: FakeMetadata, stop: threading.Event, **settings: Any
) -> tuple[OwnerCaches, Observed]:
    observed = Observed()
    source.stop = stop
    caches = OwnerCaches(
        source,
        cluster="prod-eu",
        settings=OwnerSettings(
            **{
                "page_size": 2,
                "backoff": Backoff(base_s=0.01, cap_s=0.05),
                "sync_timeout_s": 10,
                **settings,
            }
        ),
        observer=observed,
        stop=stop,
        rand=lambda: 0.5,
    )
    caches.start()
    return caches, observed


def test_every_kind_is_listed_then_followed_and_a_missing_crd_is_no_error(
    stop: threading.Event,
) -> None:
    pods = [POD, *(obj("Pod", f"other-{i}") for i in range(4))]  # three pages
    source = FakeMetadata(
        {
            Resource.PODS: pods,
            Resource.REPLICASETS: [REPLICASET],
            Resource.DEPLOYMENTS: [DEPLOYMENT],
        },
        absent={Resource.ROLLOUTS},
    )
    caches, observed = start(source, stop)
    assert caches.wait_synced()
    assert observed.counts["Pod"] == 5
    assert observed.counts["Rollout"] == 0
    assert not [e for e in observed.events if e[0] == "failed"]
    ownership = caches.resolve(involved(POD))
    assert ownership is not None
    assert ownership.workload == ref(DEPLOYMENT)

    newer = obj("Pod", "checkout-6f8b9-fghij", owner=REPLICASET)
    source.streams[Resource.PODS].put(WatchEvent("ADDED", newer))
    source.streams[Resource.PODS].put(WatchEvent("DELETED", POD))
    wait_until(lambda: caches.resolve(involved(newer)) is not None, timeout_s=5, interval_s=0.01)
    wait_until(lambda: caches.resolve(involved(POD)) is None, timeout_s=5, interval_s=0.01)
    assert ("resolved", "not_cached") in observed.events


def test_an_expired_watch_relists(stop: threading.Event) -> None:
    source = FakeMetadata({Resource.PODS: [POD]}, absent=set())
    caches, observed = start(source, stop)
    assert caches.wait_synced()
    source.objects[Resource.PODS] = []  # gone while the watch was away
    source.streams[Resource.PODS].put(
        WatchEvent("ERROR", {"kind": "Status", "code": 410, "message": "too old"})
    )
    wait_until(lambda: ("relisted", "Pod", "expired") in observed.events, timeout_s=5)
    wait_until(lambda: caches.resolve(involved(POD)) is None, timeout_s=5, interval_s=0.01)
    assert source.lists[Resource.PODS] == 2


def test_a_server_behind_the_cache_after_an_etcd_wipe_is_relisted(stop: threading.Event) -> None:
    source = FakeMetadata({Resource.PODS: [POD]}, absent=set())
    caches, observed = start(source, stop)
    assert caches.wait_synced()
    newer = obj("Pod", "checkout-6f8b9-fghij", owner=REPLICASET)
    source.streams[Resource.PODS].put(
        WatchEvent("ADDED", {**newer, "metadata": {**newer["metadata"], "resourceVersion": "20"}})
    )
    wait_until(lambda: caches.resolve(involved(newer)) is not None, timeout_s=5, interval_s=0.01)
    # etcd wiped behind the same URL: the server is at 3, the cache at 20, and it holds other Pods.
    source.version = "3"
    source.objects[Resource.PODS] = [obj("Pod", "after-the-wipe", owner=REPLICASET)]
    source.streams[Resource.PODS].put(_END)
    wait_until(lambda: ("relisted", "Pod", "server_behind") in observed.events, timeout_s=5)
    wait_until(lambda: caches.resolve(involved(newer)) is None, timeout_s=5, interval_s=0.01)
    assert caches.resolve(involved(obj("Pod", "after-the-wipe", owner=REPLICASET))) is not None
    assert source.lists[Resource.PODS] == 2
    assert observed.events.count(("relisted", "Pod", "server_behind")) == 1


def test_an_api_error_is_retried_with_backoff_and_counted(stop: threading.Event) -> None:
    source = FakeMetadata({Resource.PODS: []}, absent=set())
    caches, observed = start(source, stop)
    assert caches.wait_synced()
    source.objects[Resource.PODS] = [POD]
    source.streams[Resource.PODS].put(KubeError("watch stream broke", status=None))
    source.streams[Resource.PODS].put(ExpiredError("too old", status=410))
    wait_until(lambda: caches.resolve(involved(POD)) is not None, timeout_s=5, interval_s=0.01)
    assert ("failed", "Pod", "connection") in observed.events


def test_objects_past_the_bound_are_not_cached_and_counted(stop: threading.Event) -> None:
    source = FakeMetadata({Resource.PODS: [obj("Pod", f"p{i}") for i in range(3)]}, absent=set())
    caches, observed = start(source, stop, max_objects=2)
    assert caches.wait_synced()
    assert observed.counts["Pod"] == 2
    assert observed.events.count(("refused", "Pod")) == 1
    source.streams[Resource.PODS].put(WatchEvent("ADDED", obj("Pod", "p3")))
    wait_until(lambda: observed.events.count(("refused", "Pod")) == 2, timeout_s=5)


@pytest.mark.parametrize(
    ("grace_s", "cause"),
    [
        pytest.param(60.0, "forbidden_while_starting", id="rbac-warming-up-after-a-start"),
        pytest.param(0.0, "http_403", id="forbidden-for-good"),
    ],
)
def test_a_kind_never_listed_ends_the_wait_at_its_timeout(
    stop: threading.Event, grace_s: float, cause: str
) -> None:
    class Failing(FakeMetadata):
        def list_page(self, resource: Resource, **kwargs: Any) -> EventPage:
            if resource is Resource.JOBS:
                raise KubeError("jobs: 403 Forbidden", status=403)
            return super().list_page(resource, **kwargs)

    caches, observed = start(
        Failing({}, absent=set()), stop, sync_timeout_s=0.2, forbidden_grace_s=grace_s
    )
    assert not caches.wait_synced()
    wait_until(lambda: ("failed", "Job", cause) in observed.events, timeout_s=5)


class Sink:
    def __init__(self) -> None:
        self.records: list[Any] = []

    def publish(self, record: Any, *, on_delivery: Any, stop: threading.Event) -> None:
        self.records.append(record)
        on_delivery(None)


class Quiet:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def _kubelet_event(pod: dict[str, Any], rv: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"e{rv}",
            "namespace": "shop",
            "uid": f"e-{rv}",
            "resourceVersion": rv,
        },
        "involvedObject": involved(pod),
        "reason": "BackOff",
        "message": "Back-off restarting failed container",
        "source": {"component": "kubelet"},
    }


def test_the_event_watch_publishes_resolved_events_and_unresolved_ones_without_waiting(
    stop: threading.Event,
) -> None:
    source = FakeMetadata(
        {
            Resource.PODS: [POD],
            Resource.REPLICASETS: [REPLICASET],
            Resource.DEPLOYMENTS: [DEPLOYMENT],
        },
        absent=set(),
    )
    caches, observed = start(source, stop)
    assert caches.wait_synced()
    not_yet = obj("Pod", "checkout-6f8b9-zzzzz", owner=REPLICASET)  # its watch event not in yet

    class Events:
        def list_page(self, *, limit: int, continue_token: str | None) -> EventPage:
            items = [_kubelet_event(POD, "11"), _kubelet_event(not_yet, "12")]
            return EventPage(items=items, resource_version="12", continue_token=None)

        def current_resource_version(self) -> str:
            return "12"

        def watch(self, *, resource_version: str, timeout_s: int) -> Iterator[WatchEvent]:
            stop.set()
            return iter(())

    sink = Sink()
    Watcher(
        cluster="prod-eu",
        source=Events(),
        sink=sink,
        observer=Quiet(),
        now=lambda: "2026-08-20T09:17:00Z",
        owners=caches,
        stop=stop,
    ).run()
    resolved, unresolved = sink.records
    assert resolved.ownership is not None
    assert resolved.ownership.owners == (ref(REPLICASET), ref(DEPLOYMENT))
    assert unresolved.ownership is None
    assert ("resolved", "resolved") in observed.events
    assert ("resolved", "not_cached") in observed.events


class CountingStop(threading.Event):
    """A stop whose waits return at once and are recorded; set after `limit` of them."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is None:
            return super().wait()
        self.waits.append(timeout)
        if len(self.waits) >= self.limit:
            self.set()
        return self.is_set()


def test_a_watch_that_ends_at_once_with_nothing_is_reopened_after_a_growing_backoff() -> None:
    class Closing(FakeMetadata):
        def watch(self, resource: Resource, **kwargs: Any) -> Iterator[WatchEvent]:
            if resource is Resource.PODS:
                return iter(())  # a proxy closing every watch at once
            return super().watch(resource, **kwargs)

    stop = CountingStop(limit=3)
    backoff = Backoff(base_s=0.2, cap_s=10)
    try:
        start(Closing({}, absent=set()), stop, backoff=backoff)
        wait_until(stop.is_set, timeout_s=5, interval_s=0.01)
    finally:
        stop.set()
    assert stop.waits == [backoff.delay(n, rand=0.5) for n in (1, 2, 3)]
