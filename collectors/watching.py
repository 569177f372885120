"""The list-then-watch loop for one watch scope (a cluster, or one namespace of it).

Every Event the API server holds reaches the sink at least once:
- with no position, it lists (paginated) and publishes every item as ADDED, skipping the items whose
  resourceVersion shows they were published and acknowledged before (at or before the checkpoint);
- it watches from the position with bookmarks on and a server-side timeout, and resumes from the last
  resourceVersion seen (bookmarks included) when the stream ends or breaks;
- a 410 Expired (on the watch, or on a list's continue token) drops the position: relist;
- any other API error backs off exponentially with jitter and carries on from the same position;
- a record Kafka did not take restarts the watch from the checkpoint, which re-reads everything after it.

The checkpoint itself is `collectors.progress.Progress`'s business. The API client is behind the
`EventSource` protocol (`collectors.kube` is the real one), the producer behind `RecordSink`
(`collectors.kafka`), so the loop is tested against fakes.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from collectors.errors import ExpiredError, KubeError, PublishError
from collectors.filters import ADMIT_ALL, EventFilter, admits
from collectors.progress import Progress, newer
from collectors.records import to_raw_record
from herald_contracts import RawRecord, WatchType
from herald_runtime.backoff import Backoff

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


DeliveryCallback = Callable[[str | None], None]
"""Called once per record with None (acknowledged) or the error."""


class RecordSink(Protocol):
    def publish(
        self, record: RawRecord, *, on_delivery: DeliveryCallback, stop: threading.Event
    ) -> None: ...


class WatchObserver(Protocol):
    """What the loop reports; `collectors.metrics` implements it."""

    def received(self, watch_type: str) -> None: ...

    def observed(self, event: JsonObject) -> None: ...

    def dropped(self, reason: str) -> None: ...

    def restarted(self, cause: str) -> None: ...

    def relisted(self, cause: str) -> None: ...

    def contacted(self) -> None: ...


@dataclass
class Watcher:
    cluster: str
    source: EventSource
    sink: RecordSink
    observer: WatchObserver
    now: Callable[[], str]
    """RFC 3339 UTC now, for `collected_at`."""
    progress: Progress = field(default_factory=Progress)
    event_filter: EventFilter = ADMIT_ALL
    stop: threading.Event = field(default_factory=threading.Event)
    page_size: int = 500
    watch_timeout_s: int = 300
    backoff: Backoff = field(default_factory=Backoff)
    rand: Callable[[], float] = random.random
    resource_version: str | None = None
    """Where the next watch starts; None means list first. Starts at the checkpoint, if any."""

    def __post_init__(self) -> None:
        if self.resource_version is None:
            self.resource_version = self.progress.checkpoint
        self._log = logging.LoggerAdapter(log, {"cluster": self.cluster})
        self._answered = False

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            self._answered = False
            try:
                if self.progress.failure is not None:
                    self._restart_from_checkpoint()
                if self.resource_version is None:
                    self.resource_version = self._relist()
                self._watch_once(self.resource_version)
                failures = 0
            except ExpiredError as e:
                self._log.info("%s; relisting", e)
                self.observer.relisted("expired")
                self.resource_version = None
            except PublishError as e:
                self._log.warning("%s", e)
            except KubeError as e:
                # Back off on consecutive failures; a stream that worked for a while and then broke
                # starts the count again.
                failures = 1 if self._answered else failures + 1
                delay = self.backoff.delay(failures, rand=self.rand())
                self._log.warning("API error (%s); retrying in %.1fs", e, delay)
                self.observer.restarted(f"http_{e.status}" if e.status else "connection")
                self.stop.wait(delay)

    def _restart_from_checkpoint(self) -> None:
        error = self.progress.failure
        self.resource_version = self.progress.restart()
        self._log.warning(
            "Kafka did not take a record (%s); re-reading from resourceVersion %s",
            error,
            self.resource_version or "(relist)",
        )
        self.observer.restarted("publish_failed")

    def _relist(self) -> str:
        known = self.progress.checkpoint
        token: str | None = None
        while True:
            page = self.source.list_page(limit=self.page_size, continue_token=token)
            self.observer.contacted()
            for item in page.items:
                self.observer.received(WatchType.ADDED.value)
                if not newer(_resource_version(item), known):
                    self.observer.dropped("already_published")
                elif not admits(self.event_filter, item):
                    self.observer.dropped("filtered")
                else:
                    self._publish(WatchType.ADDED.value, item, position=None)
            token = page.continue_token
            if not token:
                self.progress.reached(page.resource_version)
                self._log.info("listed at resourceVersion %s", page.resource_version)
                return page.resource_version

    def _watch_once(self, resource_version: str) -> None:
        stream = self.source.watch(
            resource_version=resource_version, timeout_s=self.watch_timeout_s
        )
        for event in stream:
            self._answered = True
            self.observer.contacted()
            self.observer.received(event.type)
            rv = _resource_version(event.object)
            if event.type == "ERROR":
                _raise_watch_error(event.object)
            elif event.type == "BOOKMARK":
                if rv:
                    self.progress.reached(rv)
            elif event.type not in _PUBLISHED_TYPES:
                self._log.warning("ignoring a watch event of type %r", event.type)
            elif admits(self.event_filter, event.object):
                self._publish(event.type, event.object, position=rv)
            else:
                self.observer.dropped("filtered")
                if rv:
                    self.progress.reached(rv)
            if rv:
                self.resource_version = rv
            if self.stop.is_set() or self.progress.failure is not None:
                return
        self.observer.restarted("stream_ended")

    def _publish(self, watch_type: str, obj: JsonObject, *, position: str | None) -> None:
        self.observer.observed(obj)
        record = to_raw_record(
            cluster=self.cluster, watch_type=watch_type, event=obj, collected_at=self.now()
        )
        ticket = self.progress.sent(position)
        progress = self.progress

        def delivered(error: str | None) -> None:
            if error is None:
                progress.acknowledged(ticket)
            else:
                progress.failed(ticket, error)

        self.sink.publish(record, on_delivery=delivered, stop=self.stop)


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
