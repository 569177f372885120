"""The list-then-watch loop for one watch scope (a cluster, or one namespace of it).

Every Event the API server holds reaches the sink at least once:
- with no position, it lists (paginated) and publishes every item as ADDED, skipping the items whose
  resourceVersion shows they were published and acknowledged before (at or before the checkpoint);
- before each watch it asks the server its current resourceVersion (a list of one item); a server
  behind the position (etcd wiped or restored behind the same URL: it would hold the watch silent
  until its version passed the position) drops the position and the checkpoint: relist, skipping
  nothing;
- it watches from the position with bookmarks on and a server-side timeout, and resumes from the last
  resourceVersion seen (bookmarks included) when the stream ends or breaks. A real API server sends
  no bookmarks for Events: a quiet watch carries nothing until the server's timeout ends it, cleanly.
  That end is contact, not a failure, and moves the position to the version asked before the watch
  (`_advance_after_quiet_watch`), so that a quiet scope does not fall behind a compaction;
- a 410 Expired (on the watch, or on a list's continue token) drops the position: relist;
- any other API error backs off exponentially with jitter and carries on from the same position
  (a 403 shortly after a start or a connection failure is an API server's RBAC warming up: logged
  at INFO, counted apart);
- a record Kafka did not take restarts the watch from the checkpoint, which re-reads everything after it,
  after the same kind of backoff (whatever made Kafka refuse it, the loop never spins);
- an object that is not a core/v1 Event (`collectors.events`), or a record Kafka will never take
  (too large even with its message shortened, `collectors.records`), is set aside: counted, logged
  once with what it was, and the position moves past it, so it never holds back what follows;
- once stopped, a stream broken by the stop is the stop, not an error: nothing is logged or counted.

The checkpoint itself is `collectors.progress.Progress`'s business. The API client is behind the
`EventSource` protocol (`collectors.kube` is the real one), the producer behind `RecordSink`
(`collectors.kafka`), so the loop is tested against fakes.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from collectors.errors import ExpiredError, KubeError, PublishError, RecordRefusedError
from collectors.events import event_problem
from collectors.filters import ADMIT_ALL, EventFilter, admits
from collectors.progress import Progress, newer
from collectors.records import bound_message, to_raw_record
from herald_contracts import Ownership, RawRecord, WatchType
from herald_runtime.backoff import Backoff

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
_PUBLISHED_TYPES = frozenset(t.value for t in WatchType)


@dataclass(frozen=True)
class EventPage:
    items: list[Any]
    """The items as decoded: the loop checks each is an Event before it uses it."""
    resource_version: str
    continue_token: str | None


@dataclass(frozen=True)
class WatchEvent:
    type: str
    object: Any
    """The object as decoded: the loop checks it is an Event (or a Status, or a bookmark)."""


class EventSource(Protocol):
    def list_page(self, *, limit: int, continue_token: str | None) -> EventPage: ...

    def current_resource_version(self) -> str:
        """The server's resourceVersion now (a consistent list of at most one item tells it)."""
        ...

    def watch(self, *, resource_version: str, timeout_s: int) -> Iterator[WatchEvent]: ...


DeliveryCallback = Callable[[str | None], None]
"""Called once per record with None (acknowledged) or the error."""


class RecordSink(Protocol):
    def publish(
        self, record: RawRecord, *, on_delivery: DeliveryCallback, stop: threading.Event
    ) -> None: ...


class OwnerResolver(Protocol):
    """What the Event watch asks of the owner caches (`collectors.ownerwatch.OwnerCaches`)."""

    def resolve(self, involved: JsonObject) -> Ownership | None: ...


class WatchObserver(Protocol):
    """What the loop reports; `collectors.metrics` implements it."""

    def received(self, watch_type: str) -> None: ...

    def observed(self, event: JsonObject) -> None: ...

    def dropped(self, reason: str) -> None: ...

    def set_aside(self, reason: str) -> None: ...

    def shortened(self) -> None: ...

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
    clock: Callable[[], float] = time.monotonic
    quiet_end_min_s: float = 1.0
    """A watch that ends with nothing in it sooner than this counts as a failure (backoff)."""
    forbidden_grace_s: float = 15.0
    """403s within this long of the start, or of a failure to reach the server, are an API server
    (re)starting while its RBAC warms up: logged at INFO, counted as `forbidden_while_starting`."""
    message_max_bytes: int = 65_536
    """Longer messages are shortened (`collectors.records.bound_message`)."""
    resource_version: str | None = None
    """Where the next watch starts; None means list first. Starts at the checkpoint, if any."""
    owners: OwnerResolver | None = None
    """Resolves the owners of each Event's involved object into its record; None: not at all."""

    def __post_init__(self) -> None:
        if self.resource_version is None:
            self.resource_version = self.progress.checkpoint
        self._log = logging.LoggerAdapter(log, {"cluster": self.cluster})
        self._answered = False
        self._publish_failures = 0
        self._restarted_at: str | None = None
        self._starting_until = 0.0

    def run(self) -> None:
        failures = 0
        empty_ends = 0
        self._starting_until = self.clock() + self.forbidden_grace_s
        while not self.stop.is_set():
            self._answered = False
            try:
                if self.progress.failure is not None:
                    self._restart_from_checkpoint()
                    continue
                start = self._start()
                if start is None:
                    continue  # the server was behind the position: relist next turn
                position, current = start
                started = self.clock()
                if not self._watch_once(position):
                    continue  # stopped, or a record failed: the next turn sees to it
                failures = 0
                empty_ends = self._ended(current, self.clock() - started, empty_ends)
            except ExpiredError as e:
                self._log.info("%s; relisting", e)
                self.observer.relisted("expired")
                self.resource_version = None
            except PublishError:
                # `_publish` marked the record failed: the next turn backs off, logs and restarts
                # from the checkpoint.
                continue
            except KubeError as e:
                if self.stop.is_set():
                    # The stop broke the stream (the supervisor interrupts open watches).
                    self._log.debug("watch ended by the stop (%s)", e)
                    return
                # Back off on consecutive failures; a stream that worked for a while and then broke
                # starts the count again.
                failures = 1 if self._answered else failures + 1
                self._retry_after(e, failures)

    def _start(self) -> tuple[str, str] | None:
        """Where the next watch starts and the server's version before it (listing first when
        there is no position); None when the server is behind the position (then: relist)."""
        if self.resource_version is None:
            self.resource_version = self._relist()
            return self.resource_version, self.resource_version
        current = self.source.current_resource_version()
        self.observer.contacted()
        if _known_newer(self.resource_version, current):
            self._relist_behind_server(current)
            return None
        return self.resource_version, current

    def _ended(self, current: str, elapsed: float, empty_ends: int) -> int:
        """A stream the server ended by itself: contact. Returns the count of consecutive streams
        that ended at once with nothing in them."""
        self.observer.contacted()
        if elapsed >= self.watch_timeout_s - min(1.0, self.watch_timeout_s / 10):
            # The server's timeout ended it: the ordinary end of a watch, not a restart.
            if not self._answered:
                self._advance_after_quiet_watch(current)
            return 0
        self.observer.restarted("stream_ended")  # before its timeout: a proxy, a cut
        if self._answered or elapsed >= self.quiet_end_min_s:
            return 0
        # A stream that ends at once with nothing in it (a proxy closing it, a server refusing
        # quietly) would otherwise be watched again as fast as it answers.
        self.stop.wait(self.backoff.delay(empty_ends + 1, rand=self.rand()))
        return empty_ends + 1

    def _retry_after(self, error: KubeError, failures: int) -> None:
        """Log and count an API error, then wait before the next attempt."""
        delay = self.backoff.delay(failures, rand=self.rand())
        if error.status == 403 and self.clock() < self._starting_until:
            self._log.info(
                "API server forbids the request (%s), as it does while its RBAC warms up after "
                "a start; retrying in %.1fs",
                error,
                delay,
            )
            self.observer.restarted("forbidden_while_starting")
        else:
            self._log.warning("API error (%s); retrying in %.1fs", error, delay)
            self.observer.restarted(f"http_{error.status}" if error.status else "connection")
            if error.status is None or error.status >= 500:
                # Unreachable or failing: what follows may be an API server (re)starting.
                self._starting_until = self.clock() + self.forbidden_grace_s
        self.stop.wait(delay)

    def _relist_behind_server(self, current: str) -> None:
        """The server is behind the position: etcd was wiped or restored from a backup behind the
        same URL. A watch from the position would carry nothing until the server's version passed
        it (no error: silent loss), and the Events the server holds now have versions at or below
        the checkpoint, which a relist would skip: forget both, relist and publish everything."""
        self._log.warning(
            "cluster %s: the API server is at resourceVersion %s, behind this watch's position %s "
            "(checkpoint %s): its etcd was wiped or restored; relisting and publishing every Event "
            "it holds",
            self.cluster,
            current,
            self.resource_version,
            self.progress.checkpoint or "none",
        )
        self.observer.relisted("server_behind")
        self.progress.forget()
        self.resource_version = None

    def _advance_after_quiet_watch(self, current: str) -> None:
        """A watch that carried nothing, from its start to the end the server gave it at its
        timeout, moves the position to `current`, the server's version asked just before it began
        (never backwards).

        Every Event change at or before `current` existed before the watch began: a watch from an
        older position sends those first, at once (from etcd's history). One that ran to its clean
        end with nothing in it has therefore delivered every change up to `current`: there was
        none. Without this a quiet scope's position would stay where its last Event left it, and
        the first compaction past it would force a full relist. Not after a watch that carried
        something: a slow reader (Kafka pushing back) may leave changes in the server's buffers
        when the timeout ends the stream; the position then moves with what was delivered.
        """
        if _known_newer(current, self.resource_version):
            self.progress.reached(current)
            self.resource_version = current

    def _restart_from_checkpoint(self) -> None:
        """Wait (longer after each failure that made no progress), then re-read from the checkpoint.

        Without the wait, a record Kafka refuses at once (an unknown topic, a broker that refuses
        the producer) would make the loop re-read and re-send it as fast as the API server answers.
        """
        checkpoint = self.progress.checkpoint
        if checkpoint != self._restarted_at:
            self._publish_failures = 0  # the checkpoint moved since the last restart: progress
        self._publish_failures += 1
        delay = self.backoff.delay(self._publish_failures, rand=self.rand())
        self._log.warning(
            "Kafka did not take a record (%s); re-reading from resourceVersion %s in %.1fs",
            self.progress.failure,
            checkpoint or "(relist)",
            delay,
        )
        self.observer.restarted("publish_failed")
        if self.stop.wait(delay):
            return
        self.resource_version = self._restarted_at = self.progress.restart()

    def _relist(self) -> str:
        known = self.progress.checkpoint
        token: str | None = None
        while True:
            page = self.source.list_page(limit=self.page_size, continue_token=token)
            self.observer.contacted()
            for item in page.items:
                self.observer.received(WatchType.ADDED.value)
                problem = event_problem(item)
                if problem is not None:
                    self._set_aside_object(WatchType.ADDED.value, item, problem)
                elif not newer(_resource_version(item), known):
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

    def _watch_once(self, resource_version: str) -> bool:
        """Read one watch stream; True if it ended by itself (not stopped, no record failed)."""
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
                self._set_aside_object(event.type, event.object, "not a watch event type")
                rv = self._past(rv)
            elif (problem := event_problem(event.object)) is not None:
                self._set_aside_object(event.type, event.object, problem)
                rv = self._past(rv)
            elif admits(self.event_filter, event.object):
                self._publish(event.type, event.object, position=rv)
            else:
                self.observer.dropped("filtered")
                if rv:
                    self.progress.reached(rv)
            if rv:
                self.resource_version = rv
            if self.stop.is_set() or self.progress.failure is not None:
                return False
        return not self.stop.is_set()

    def _past(self, rv: str | None) -> str | None:
        """The position of an object set aside, if it is one to resume from: an integer newer than
        the current position (what an object that is not an Event says of itself is not trusted
        further; resuming from a made-up version would fail every watch after it)."""
        if rv is None or not rv.isdecimal() or not newer(rv, self.resource_version):
            return None
        self.progress.reached(rv)
        return rv

    def _set_aside_object(self, watch_type: str, obj: Any, problem: str) -> None:
        self.observer.set_aside("not_an_event")
        self._log.error(
            "cluster %s: set aside a %s watch object that is not a core/v1 Event (%s): %s",
            self.cluster,
            watch_type,
            problem,
            _shown(obj),
        )

    def _publish(self, watch_type: str, obj: JsonObject, *, position: str | None) -> None:
        self.observer.observed(obj)
        bounded = bound_message(obj, max_bytes=self.message_max_bytes)
        if bounded.shortened_from is not None:
            self.observer.shortened()
            self._log.warning(
                "shortened the message of Event %s (%d bytes) to %d bytes",
                _identity(self.cluster, obj),
                bounded.shortened_from,
                self.message_max_bytes,
            )
        record = to_raw_record(
            cluster=self.cluster,
            watch_type=watch_type,
            event=bounded.event,
            collected_at=self.now(),
            ownership=None if self.owners is None else self.owners.resolve(obj["involvedObject"]),
        )
        ticket = self.progress.sent(position)
        progress = self.progress

        def delivered(error: str | None) -> None:
            if error is None:
                progress.acknowledged(ticket)
            else:
                progress.failed(ticket, error)

        try:
            self.sink.publish(record, on_delivery=delivered, stop=self.stop)
        except RecordRefusedError as e:
            # Kafka will never take it: publishing it again would only stop everything behind it.
            progress.acknowledged(ticket)
            self.observer.set_aside(e.reason)
            self._log.error("set aside Event %s: %s", _identity(self.cluster, obj), e)
        except PublishError as e:
            # Not in flight: without this its ticket would stay pending, and the checkpoint with it.
            progress.failed(ticket, str(e))
            raise


def _known_newer(resource_version: str | None, than: str | None) -> bool:
    """True if both are integers (as etcd's are) and `resource_version` is the greater."""
    return newer(resource_version, than) and not newer(than, resource_version)


def _resource_version(obj: Any) -> str | None:
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    rv = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
    return rv if isinstance(rv, str) and rv else None


def _identity(cluster: str, event: JsonObject) -> str:
    """cluster/namespace/name (uid) of a valid Event, for logs."""
    metadata = event["metadata"]
    name = f"{cluster}/{metadata.get('namespace', '')}/{metadata.get('name', '')}"
    return f"{name} (uid {metadata['uid']})"


def _shown(obj: Any, limit: int = 300) -> str:
    try:
        text = json.dumps(obj, ensure_ascii=True, default=repr)
    except ValueError:
        text = repr(obj)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _raise_watch_error(status: Any) -> None:
    if not isinstance(status, dict):
        raise KubeError(f"watch error without a Status: {_shown(status)}")
    code = status.get("code")
    message = str(status.get("message", "watch error"))
    if code == 410:
        raise ExpiredError(message, status=410)
    raise KubeError(message, status=code if isinstance(code, int) else None)
