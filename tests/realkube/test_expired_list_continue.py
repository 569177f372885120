"""A list whose continue token expires between two pages (etcd compacted meanwhile) is started
again from scratch, and loses nothing: the real `KubeEventSource` and `Watcher`, in-process, against
the real server. In-process because the moment between two pages cannot be hit from outside the
collector's process: a wrapper around the source compacts etcd right after the first page."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.kube import KubeEventSource
from collectors.settings import WATCH_READ_MARGIN_S
from collectors.watching import DeliveryCallback, EventPage, Watcher, WatchEvent
from herald_contracts import RawRecord
from herald_dev.realkube import RealKube
from herald_runtime.backoff import Backoff
from tests.realkube.kube import core_event, create, create_many, uids
from tests.support import wait_until


@dataclass
class CompactingAfterFirstPage:
    """The real source, but etcd is compacted right after the first page of the first list: the
    token that page carries is then too old."""

    source: KubeEventSource
    kube: RealKube
    pages: list[str] = field(default_factory=list)
    """What each list call gave: "page of N", or the error."""

    def list_page(self, *, limit: int, continue_token: str | None) -> EventPage:
        try:
            page = self.source.list_page(limit=limit, continue_token=continue_token)
        except Exception as e:
            self.pages.append(type(e).__name__)
            raise
        self.pages.append(f"page of {len(page.items)}")
        if len(self.pages) == 1 and page.continue_token:
            self.kube.compact()
        return page

    def watch(self, *, resource_version: str, timeout_s: int) -> Iterator[WatchEvent]:
        return self.source.watch(resource_version=resource_version, timeout_s=timeout_s)

    def current_resource_version(self) -> str:
        return self.source.current_resource_version()


@dataclass
class Collected:
    """A sink that acknowledges at once, and an observer that keeps what it is told."""

    records: list[RawRecord] = field(default_factory=list)
    relists: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(
        self, record: RawRecord, *, on_delivery: DeliveryCallback, stop: threading.Event
    ) -> None:
        with self.lock:
            self.records.append(record)
        on_delivery(None)

    def uids(self) -> list[str]:
        with self.lock:
            return [r.object["metadata"]["uid"] for r in self.records]

    def relisted(self, cause: str) -> None:
        self.relists.append(cause)

    def received(self, watch_type: str) -> None: ...
    def observed(self, event: dict[str, Any]) -> None: ...
    def dropped(self, reason: str) -> None: ...
    def set_aside(self, reason: str) -> None: ...
    def shortened(self) -> None: ...
    def restarted(self, cause: str) -> None: ...
    def contacted(self) -> None: ...


def test_a_list_whose_continue_token_expired_is_listed_again_and_loses_nothing(
    real_kube: RealKube, namespace: str, tmp_path: Path
) -> None:
    held = create_many(real_kube, [core_event(namespace, name=f"e-{i:03d}") for i in range(25)])
    source = KubeEventSource.connect(
        kubeconfig=real_kube.collector_kubeconfig(tmp_path / "kubeconfig"),
        context=None,
        namespace=namespace,
        connect_timeout_s=2,
        read_timeout_s=30,
        watch_read_margin_s=WATCH_READ_MARGIN_S,
    )
    wrapped = CompactingAfterFirstPage(source, real_kube)
    collected = Collected()
    watcher = Watcher(
        cluster="real",
        source=wrapped,
        sink=collected,
        observer=collected,
        now=lambda: "2026-11-30T00:00:00Z",
        page_size=10,
        watch_timeout_s=30,
        backoff=Backoff(base_s=0.05, cap_s=0.5),
    )
    thread = threading.Thread(target=watcher.run, name="watcher", daemon=True)
    thread.start()
    try:
        wait_until(lambda: uids(held) <= set(collected.uids()), timeout_s=30)
        after = create(real_kube, core_event(namespace, name="after-the-relist"))
        wait_until(lambda: after["metadata"]["uid"] in collected.uids(), timeout_s=30)
    finally:
        watcher.stop.set()
        source.interrupt()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert wrapped.pages == ["page of 10", "ExpiredError", "page of 10", "page of 10", "page of 5"]
    assert collected.relists == ["expired"]
    published = collected.uids()
    # The first page was published before its token expired, then again by the new list: the
    # at-least-once price of a list that has no checkpoint to skip by. Nothing else is repeated.
    first_page = set(published[:10])
    assert len(published) == 10 + 25 + 1
    assert set(published) == uids(held) | {after["metadata"]["uid"]}
    assert {uid for uid in set(published) if published.count(uid) == 2} == first_page
