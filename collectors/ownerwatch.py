"""The owner caches of one watch scope: a metadata-only list+watch per owning kind, each feeding an
`OwnerIndex`, and `resolve` for the Event watch.

One list+watch per kind per scope (a cluster watched whole: one per kind per cluster), never a
request per Event, so the load on the API server does not grow with the Event rate. Each kind's
loop lists (paginated) then watches from the list's resourceVersion with bookmarks, resumes from
the last version seen, relists on 410 Expired and when the server's version is behind the cache's
(asked before each watch: etcd wiped or restored behind the same URL), and backs off on any other
error, like the Event watch (`collectors.watching`), whose checkpoints it does not share: a cache is
rebuilt by a list at every start.

A kind the server does not serve (404: Argo Rollouts' CRD not installed) is no error: the cache
stays empty, counts as synced, and the kind is asked again every `absent_recheck_s` (a CRD
installed later is picked up). Each index holds at most `max_objects`; objects past the bound are
not stored (counted as refused) and Events about them are published unresolved.

The Event watch waits for every kind's first list (`wait_synced`, bounded) before it starts, so
Events listed at start find their owners; an Event that arrives before the watch of its Pod
delivers the Pod (a Pod created and failing at once) is published without ownership and counted
(`herald_collector_owner_resolutions_total{outcome="not_cached"}`): the collector never holds
Events back for the caches.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from collectors.errors import ExpiredError, KubeError
from collectors.owners import (
    INSTANCE_LABEL,
    ObjectMeta,
    OwnerIndex,
    Resource,
    parse_meta,
    resolve,
)
from collectors.progress import newer
from collectors.watching import EventPage, WatchEvent
from herald_contracts import Ownership
from herald_runtime.backoff import Backoff

log = logging.getLogger(__name__)


QUIET_END_MIN_S = 1.0
"""A watch that ends sooner than this with nothing in it is followed by a backoff."""


class MetadataSource(Protocol):
    def list_page(
        self, resource: Resource, *, limit: int, continue_token: str | None
    ) -> EventPage: ...

    def watch(
        self, resource: Resource, *, resource_version: str, timeout_s: int
    ) -> Iterator[WatchEvent]: ...

    def interrupt(self) -> None: ...


class OwnerObserver(Protocol):
    """What the caches report; `collectors.metrics.OwnerMetrics` implements it."""

    def cached(self, kind: str, count: int) -> None: ...

    def refused(self, kind: str) -> None: ...

    def relisted(self, kind: str, cause: str) -> None: ...

    def failed(self, kind: str, cause: str) -> None: ...

    def resolved(self, outcome: str) -> None: ...


@dataclass(frozen=True)
class OwnerSettings:
    selected_labels: frozenset[str] = frozenset()
    instance_label: str = INSTANCE_LABEL
    max_objects: int = 200_000
    """Per kind and scope."""
    page_size: int = 500
    watch_timeout_s: int = 120
    sync_timeout_s: float = 30.0
    absent_recheck_s: float = 300.0
    forbidden_grace_s: float = 15.0
    """403s within this long of the start, or of a failure to reach the server, are an API server
    (re)starting while its RBAC warms up: logged at INFO (`forbidden_while_starting`)."""
    backoff: Backoff = field(default_factory=Backoff)
    resources: tuple[Resource, ...] = tuple(Resource)


class OwnerCaches:
    def __init__(
        self,
        source: MetadataSource,
        *,
        cluster: str,
        settings: OwnerSettings,
        observer: OwnerObserver,
        stop: threading.Event,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._cluster = cluster
        self._settings = settings
        self._observer = observer
        self._stop = stop
        self._rand = rand
        self._clock = clock
        self._indexes = {
            r.kind: OwnerIndex(max_objects=settings.max_objects) for r in settings.resources
        }
        self._synced = {r: threading.Event() for r in settings.resources}
        self._threads: list[threading.Thread] = []
        self._log = logging.LoggerAdapter(log, {"cluster": cluster})

    def interrupt(self) -> None:
        """Break the open watches now (from another thread), for the stop."""
        self._source.interrupt()

    @property
    def indexes(self) -> Mapping[str, OwnerIndex]:
        return self._indexes

    def start(self) -> None:
        for resource in self._settings.resources:
            thread = threading.Thread(
                target=self._run,
                args=(resource,),
                name=f"owners-{self._cluster}-{resource.value}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def wait_synced(self) -> bool:
        """Wait until every kind was listed once (or found absent), at most `sync_timeout_s` in
        all; False if some were not (they fill in later)."""
        deadline = time.monotonic() + self._settings.sync_timeout_s
        for resource, synced in self._synced.items():
            while not synced.wait(0.05):
                if self._stop.is_set():
                    return False
                if time.monotonic() >= deadline:
                    self._log.warning(
                        "owner cache of %s not listed yet; Events about their objects are "
                        "published without owners until it is",
                        resource.value,
                    )
                    return False
        return True

    def resolve(self, involved: Mapping[str, Any]) -> Ownership | None:
        """The ownership of an Event's involved object; None when its kind is not cached, or the
        object is not (yet) in its cache."""
        resolution = resolve(involved, self._indexes)
        if resolution is None:
            return None
        if not resolution.ownership.owners and not resolution.complete:
            self._observer.resolved("not_cached")
            return None
        self._observer.resolved("resolved" if resolution.complete else "partial")
        return resolution.ownership

    def _run(self, resource: Resource) -> None:
        failures = 0
        empty_ends = 0
        starting_until = self._clock() + self._settings.forbidden_grace_s
        resource_version: str | None = None
        while not self._stop.is_set():
            try:
                if resource_version is None:
                    resource_version = self._relist(resource)
                    if resource_version is None:  # absent: ask again later
                        self._stop.wait(self._settings.absent_recheck_s)
                        continue
                if self._server_behind(resource, resource_version):
                    resource_version = None
                    continue
                started = self._clock()
                resource_version, delivered = self._watch(resource, resource_version)
                failures = 0
                if delivered or self._clock() - started >= QUIET_END_MIN_S:
                    empty_ends = 0
                else:
                    # Ended at once with nothing in it (a proxy closing it): not as fast as it ends.
                    empty_ends += 1
                    self._stop.wait(self._settings.backoff.delay(empty_ends, rand=self._rand()))
            except ExpiredError:
                self._observer.relisted(resource.kind, "expired")
                resource_version = None
            except KubeError as e:
                if self._stop.is_set():
                    return
                failures += 1
                delay = self._settings.backoff.delay(failures, rand=self._rand())
                if e.status == 403 and self._clock() < starting_until:
                    # As the Event watch does (`collectors.watching`): an API server (re)starting
                    # forbids everything until its RBAC has warmed up.
                    self._log.info(
                        "owner cache of %s: the API server forbids the request (%s), as it does "
                        "while its RBAC warms up after a start; retrying in %.1fs",
                        resource.value,
                        e,
                        delay,
                    )
                    cause = "forbidden_while_starting"
                else:
                    self._log.warning(
                        "owner cache of %s: %s; retrying in %.1fs", resource.value, e, delay
                    )
                    cause = f"http_{e.status}" if e.status else "connection"
                    if e.status is None or e.status >= 500:
                        starting_until = self._clock() + self._settings.forbidden_grace_s
                self._observer.failed(resource.kind, cause)
                self._stop.wait(delay)

    def _server_behind(self, resource: Resource, resource_version: str) -> bool:
        """Whether the API server's version (a list of one item) is behind the cache's: its etcd
        was wiped or restored behind the same URL. A watch from the cache's version would then
        carry nothing until the server's passed it, with no error, and the cache would keep
        objects that are gone and miss new ones, so the kind is relisted (counted as
        `server_behind`), as the Event watch does (`collectors.watching`). A kind the server no
        longer serves (404) is relisted too, which empties it."""
        try:
            page = self._source.list_page(resource, limit=1, continue_token=None)
        except KubeError as e:
            if e.status != 404:
                raise
            return True
        if not newer(resource_version, page.resource_version) or newer(
            page.resource_version, resource_version
        ):
            return False
        self._log.warning(
            "owner cache of %s: the API server is at resourceVersion %s, behind the cache's %s: "
            "its etcd was wiped or restored; relisting",
            resource.value,
            page.resource_version,
            resource_version,
        )
        self._observer.relisted(resource.kind, "server_behind")
        return True

    def _parse(self, item: Any) -> ObjectMeta | None:
        return parse_meta(
            item,
            selected_labels=self._settings.selected_labels,
            instance_label=self._settings.instance_label,
        )

    def _relist(self, resource: Resource) -> str | None:
        """List the kind into its index; its resourceVersion, or None when the server does not
        serve it (404)."""
        metas = []
        token: str | None = None
        while True:
            try:
                page = self._source.list_page(
                    resource, limit=self._settings.page_size, continue_token=token
                )
            except KubeError as e:
                if e.status != 404:
                    raise
                if len(self._indexes[resource.kind]):
                    self._indexes[resource.kind].replace(())
                self._observer.cached(resource.kind, 0)
                if not self._synced[resource].is_set():
                    self._log.info(
                        "owner cache: the API server does not serve %s (%s); asking again every "
                        "%.0fs",
                        resource.value,
                        "CRD not installed" if resource.optional else "404",
                        self._settings.absent_recheck_s,
                    )
                self._synced[resource].set()
                return None
            for item in page.items:
                meta = self._parse(item)
                if meta is not None:
                    metas.append(meta)
            token = page.continue_token
            if not token:
                break
        index = self._indexes[resource.kind]
        for _ in range(index.replace(metas)):
            self._observer.refused(resource.kind)
        self._observer.cached(resource.kind, len(index))
        self._synced[resource].set()
        return page.resource_version

    def _watch(self, resource: Resource, resource_version: str) -> tuple[str, bool]:
        """Follow one watch stream; where it ended, and whether it delivered anything."""
        index = self._indexes[resource.kind]
        delivered = False
        for event in self._source.watch(
            resource, resource_version=resource_version, timeout_s=self._settings.watch_timeout_s
        ):
            obj = event.object
            delivered = True
            if event.type == "ERROR":
                code = obj.get("code") if isinstance(obj, dict) else None
                message = str(obj.get("message")) if isinstance(obj, dict) else "watch error"
                if code == 410:
                    raise ExpiredError(message, status=410)
                raise KubeError(message, status=code if isinstance(code, int) else None)
            metadata = obj.get("metadata") if isinstance(obj, dict) else None
            rv = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
            if event.type in ("ADDED", "MODIFIED", "DELETED"):
                meta = self._parse(obj)
                if meta is not None:
                    if event.type == "DELETED":
                        index.remove(meta)
                    elif not index.add(meta):
                        self._observer.refused(resource.kind)
                    self._observer.cached(resource.kind, len(index))
            if isinstance(rv, str) and rv:
                resource_version = rv
            if self._stop.is_set():
                break
        return resource_version, delivered
