"""The list-then-watch loop for one cluster: every Event the API server holds reaches the sink.

It lists (paginated), publishes every item as ADDED, then watches from the list's resourceVersion
with bookmarks; a stream that ends is resumed from the last resourceVersion seen; a 410 Expired
relists; any other API error backs off exponentially with jitter and carries on. The API client is
behind the `EventSource` protocol (the real one is `collectors.kube`), the producer behind
`RecordSink` (`collectors.kafka`), so the loop is tested against fakes.

Not here yet (issue 3): checkpoints across restarts and suppressing re-publication on relist; a
relist republishes what the cluster holds and the processors absorb the duplicates.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from collectors.errors import ExpiredError, KubeError
from collectors.records import to_raw_record
from herald_contracts import RawRecord, WatchType

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
_PUBLISHED_TYPES = frozenset(t.value for t in WatchType)


@dataclass(frozen=True)
class EventPage:
    items: list[JsonObject]
    resource_version: str
    continue_token: str | None


@dataclass(frozen=True)
class WatchEvent:
    type: str
    object: JsonObject


class EventSource(Protocol):
    def list_page(self, *, limit: int, continue_token: str | None) -> EventPage: ...

    def watch(self, *, resource_version: str, timeout_s: int) -> Iterator[WatchEvent]: ...


class RecordSink(Protocol):
    def publish(self, record: RawRecord) -> None: ...


class WatchObserver(Protocol):
    """What the loop reports; metrics implement it."""

    def received(self, watch_type: str) -> None: ...

    def restarted(self, cause: str) -> None: ...


@dataclass(frozen=True)
class Backoff:
    base_s: float = 0.5
    cap_s: float = 30.0
    jitter: float = 0.2

    def delay(self, failures: int, *, rand: float) -> float:
        """Seconds to wait after `failures` consecutive failures; `rand` is uniform in [0, 1)."""
        raw = min(self.cap_s, self.base_s * 2.0 ** max(0, failures - 1))
        return raw * (1 - self.jitter + 2 * self.jitter * rand)


@dataclass
class Watcher:
    cluster: str
    source: EventSource
    sink: RecordSink
    observer: WatchObserver
    now: Callable[[], str]
    """RFC 3339 UTC now, for `collected_at`."""
    stop: threading.Event = field(default_factory=threading.Event)
    page_size: int = 500
    watch_timeout_s: int = 300
    backoff: Backoff = field(default_factory=Backoff)
    rand: Callable[[], float] = random.random
    resource_version: str | None = None
    """Where the next watch starts; None means list first."""

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                if self.resource_version is None:
                    self.resource_version = self._relist()
                self._watch_once(self.resource_version)
                failures = 0
            except ExpiredError as e:
                log.info("cluster %s: %s; relisting", self.cluster, e)
                self.observer.restarted("expired")
                self.resource_version = None
            except KubeError as e:
                failures += 1
                delay = self.backoff.delay(failures, rand=self.rand())
                log.warning("cluster %s: API error (%s); retrying in %.1fs", self.cluster, e, delay)
                self.observer.restarted(f"http_{e.status}" if e.status else "connection")
                self.stop.wait(delay)

    def _relist(self) -> str:
        token: str | None = None
        while True:
            page = self.source.list_page(limit=self.page_size, continue_token=token)
            for item in page.items:
                self._publish(WatchType.ADDED.value, item)
            token = page.continue_token
            if not token:
                log.info(
                    "cluster %s: listed at resourceVersion %s", self.cluster, page.resource_version
                )
                return page.resource_version

    def _watch_once(self, resource_version: str) -> None:
        for event in self.source.watch(
            resource_version=resource_version, timeout_s=self.watch_timeout_s
        ):
            rv = _resource_version(event.object)
            if event.type == "ERROR":
                _raise_watch_error(event.object)
            if event.type in _PUBLISHED_TYPES:
                self._publish(event.type, event.object)
            else:
                self.observer.received(event.type)
            if rv:
                self.resource_version = rv
            if self.stop.is_set():
                return
        self.observer.restarted("stream_ended")

    def _publish(self, watch_type: str, obj: JsonObject) -> None:
        self.observer.received(watch_type)
        self.sink.publish(
            to_raw_record(
                cluster=self.cluster, watch_type=watch_type, event=obj, collected_at=self.now()
            )
        )


def _resource_version(obj: JsonObject) -> str | None:
    metadata = obj.get("metadata")
    rv = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
    return rv if isinstance(rv, str) and rv else None


def _raise_watch_error(status: JsonObject) -> None:
    code = status.get("code")
    message = str(status.get("message", "watch error"))
    if code == 410:
        raise ExpiredError(message, status=410)
    raise KubeError(message, status=code if isinstance(code, int) else None)
