"""The beat that keeps this replica's Leases, and the answer to "which clusters may I watch now".

Every retry period (`HERALD_LEASE_RETRY_PERIOD_S`) the keeper lists the collectors' Leases, asks
`collectors.leases.plan` what to write, and writes it, one Lease at a time, each naming the
resourceVersion it read. A cluster may be watched while its Lease was last written by this replica
less than the renew deadline (`HERALD_LEASE_RENEW_DEADLINE_S`) ago, counted from *before* that
write was sent. Another replica takes a Lease over only once it has seen it unchanged for the whole
lease duration (`HERALD_LEASE_DURATION_S`), counted from *after* that write reached the server: a
replica that cannot renew stops its watch at least `duration - deadline` before anyone else may
start one. A 409 on a write, or a list showing another holder, ends the right at once.
`holds(cluster)` answers the same question for one cluster at the moment it is asked, by this
replica's own clock: the supervisor asks it before publishing each record and before writing each
checkpoint, so a replica that was paused (SIGSTOP, a frozen VM) past its renew deadline publishes
nothing more for that cluster, however late its beat notices.

Handing a cluster over is done in order: the plan marks it to drop (its Lease is still renewed);
the main loop, which asks `owned()` every tick, stops its watch and writes its checkpoint, then
`report`s what still runs; only a report made from a view that already excluded the cluster lets
the next beat release the Lease. So a Lease is never released under a running watch, and the
replica taking it over reads a checkpoint that is already in Kafka.

The keeper runs in a thread of its own: the main loop (reloads, stopping clusters) never delays a
renewal, and a slow API server never delays the main loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from collectors import metrics
from collectors.errors import LeaseConflictError, LeaseError
from collectors.leases import (
    DEFAULT_GROUP,
    Action,
    Lease,
    LeaseKind,
    cluster_lease_name,
    observe,
    own_member,
    plan,
    release_all,
)
from collectors.leasestore import LeaseStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseTimings:
    """client-go's leader election defaults: 15 s, 10 s, 2 s."""

    duration_s: int = 15
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0


class LeaseKeeper:
    def __init__(
        self,
        store: LeaseStore,
        *,
        holder: str,
        group: str = DEFAULT_GROUP,
        timings: LeaseTimings,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`beat` and `release` are called from one thread; `want`, `owned`, `report` and
        `health` from any."""
        self._store = store
        self.holder = holder
        self.group = group
        self._timings = timings
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        """Guards what the main loop and the beat share; never held during an API call."""
        self._clusters: frozenset[str] = frozenset()
        self._valid_until: dict[str, float] = {}
        self._drop: frozenset[str] = frozenset()
        self._asked: dict[str, int] = {}
        """Per cluster to drop: how many views had been handed out when it was first dropped."""
        self._views = 0
        self._running: frozenset[str] = frozenset()
        self._reported_view = 0
        self._last_ok: float | None = None
        self._members = 0
        self._share = 0
        self._seen: dict[str, tuple[str | None, float]] = {}
        self._failing = False
        self._delete_failing = False

    # -- the main loop's side ---------------------------------------------------------------

    def want(self, clusters: Iterable[str]) -> None:
        """The enabled clusters of the cluster file."""
        with self._lock:
            self._clusters = frozenset(clusters)
            metrics.CLUSTERS_CONFIGURED.set(len(self._clusters))

    def owned(self) -> tuple[frozenset[str], int]:
        """The clusters whose watches may run now, and the number of this view (for `report`)."""
        with self._lock:
            self._views += 1
            now = self._clock()
            owned = frozenset(
                cluster
                for cluster, until in self._valid_until.items()
                if until > now and cluster not in self._drop and cluster in self._clusters
            )
            return owned, self._views

    def holds(self, cluster: str) -> bool:
        """This replica's Lease on the cluster is valid now, by its own clock: last renewed (the
        write sent) less than the renew deadline ago, and not lost since."""
        with self._lock:
            return self._valid_until.get(cluster, float("-inf")) > self._clock()

    def report(self, running: Iterable[str], *, view: int) -> None:
        """What runs (or has checkpoints not yet written) after applying the view `view`."""
        with self._lock:
            if view >= self._reported_view:
                self._running = frozenset(running)
                self._reported_view = view

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Working: a beat listed the Leases within the renew deadline."""
        with self._lock:
            last_ok, members, share = self._last_ok, self._members, self._share
            held = sorted(c for c, until in self._valid_until.items() if until > self._clock())
        age = None if last_ok is None else self._clock() - last_ok
        ok = age is not None and age < self._timings.renew_deadline_s
        return ok, {
            "holder": self.holder,
            "members": members,
            "share": share,
            "held": held,
            "seconds_since_beat": None if age is None else round(age, 1),
        }

    # -- the beat -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Beat every retry period until `stop`."""
        while not stop.is_set():
            started = self._clock()
            try:
                self.beat()
            except Exception:  # a bug must not end the sharing unseen: the next beat tries again
                log.exception("the lease beat failed unexpectedly")
            stop.wait(max(0.0, self._timings.retry_period_s - (self._clock() - started)))

    def beat(self) -> None:
        started = self._clock()
        try:
            leases = self._store.list()
        except LeaseError as e:
            self._failed("list", e)
            return
        # Seen once the answer is here (as client-go does): never earlier than the change was made.
        listed = self._clock()
        self._seen = observe(self._seen, leases, listed)
        with self._lock:
            clusters = self._clusters
            for cluster in list(self._valid_until):
                lease = leases.get(cluster_lease_name(self.group, cluster))
                if lease is None or lease.holder != self.holder:
                    self._lost(cluster, "it is held by " + (lease.holder if lease else "nobody"))
            stopped = self._stopped_predicate()
        decided = plan(
            me=self.holder,
            group=self.group,
            clusters=clusters,
            leases=leases,
            seen=self._seen,
            clock=listed,
            wall=self._wall(),
            duration_s=self._timings.duration_s,
            stopped=stopped,
        )
        with self._lock:
            # A cluster dropped again later is asked anew: an old report must not release it.
            self._asked = {c: v for c, v in self._asked.items() if c in decided.drop}
            for cluster in decided.drop - self._drop:
                self._asked.setdefault(cluster, self._views)
                log.info(
                    "cluster %s: handing it over (%d replicas, a share of %d); stopping its watch",
                    cluster,
                    decided.members,
                    decided.share,
                    extra={"cluster": cluster},
                )
            self._drop = decided.drop
            for write in decided.writes:
                if write.action is Action.RELEASE and write.lease.kind is LeaseKind.CLUSTER:
                    self._valid_until.pop(write.lease.subject, None)
            self._members, self._share = decided.members, decided.share
        failed = False
        for write in decided.writes:
            failed |= not self._write(write.action, write.lease)
        for lease in decided.deletes:  # housekeeping: its failures are no failed beat
            self._delete(lease, "nobody has renewed it for long")
        with self._lock:
            if not failed:
                self._last_ok = started
            if self._failing and not failed:
                log.info("the Leases answer again")
                self._failing = False
            self._publish_metrics()

    def release(self) -> None:
        """On a graceful stop, after the watches stopped and their checkpoints were written:
        release every cluster Lease this replica holds, so that the others take them at once, and
        delete its membership Lease (pod names are unique: nobody would ever renew it again)."""
        with self._lock:
            self._valid_until.clear()
            self._clusters = frozenset()
            self._publish_metrics()
        try:
            leases = self._store.list()
        except LeaseError as e:
            log.warning("cannot release the Leases (%s); they expire on their own", e)
            return
        for write in release_all(me=self.holder, leases=leases, wall=self._wall()):
            self._write(write.action, write.lease)
        member = own_member(me=self.holder, group=self.group, leases=leases)
        if member is not None:
            self._delete(member, "this replica stops")

    # -- internals --------------------------------------------------------------------------

    def _stopped_predicate(self) -> Callable[[str], bool]:
        """Under the lock: released only what a report from a view without it says is stopped."""
        running, reported, asked = self._running, self._reported_view, dict(self._asked)

        def stopped(cluster: str) -> bool:
            return cluster in asked and reported > asked[cluster] and cluster not in running

        return stopped

    def _write(self, action: Action, lease: Lease) -> bool:
        sent = self._clock()
        cluster = lease.subject if lease.kind is LeaseKind.CLUSTER else None
        try:
            written = self._store.write(lease)
        except LeaseConflictError as e:
            metrics.LEASE_ERRORS.labels("conflict").inc()
            if cluster is not None:
                with self._lock:
                    self._lost(cluster, f"another replica wrote its Lease first ({e})")
            else:
                log.warning("membership Lease %s: %s", lease.name, e)
            return True  # the API server answered: the machinery works
        except LeaseError as e:
            self._failed(f"{action.value} {lease.name}", e)
            return False
        self._seen[written.name] = (written.version, self._clock())
        if cluster is None:
            return True
        with self._lock:
            if action is Action.RELEASE:
                self._asked.pop(cluster, None)
                log.info(
                    "cluster %s: Lease %s released", cluster, lease.name, extra={"cluster": cluster}
                )
            else:
                if cluster not in self._valid_until:
                    log.info(
                        "cluster %s: Lease %s acquired",
                        cluster,
                        lease.name,
                        extra={"cluster": cluster},
                    )
                self._valid_until[cluster] = sent + self._timings.renew_deadline_s
        return True

    def _delete(self, lease: Lease, why: str) -> None:
        """Delete a Lease at the version seen; a failure is logged (once until one succeeds) and
        counted, and tried again at the next beat."""
        try:
            self._store.delete(lease)
        except LeaseConflictError:
            return  # renewed or deleted meanwhile: nothing to do
        except LeaseError as e:
            metrics.LEASE_ERRORS.labels(
                "connection" if e.status is None else f"http_{e.status}"
            ).inc()
            if not self._delete_failing:
                log.warning("cannot delete Lease %s (%s); trying again every beat", lease.name, e)
                self._delete_failing = True
            return
        self._delete_failing = False
        self._seen.pop(lease.name, None)
        log.info("Lease %s deleted: %s", lease.name, why)

    def _lost(self, cluster: str, why: str) -> None:
        """Under the lock."""
        if self._valid_until.pop(cluster, None) is not None:
            log.warning("cluster %s: Lease lost: %s", cluster, why, extra={"cluster": cluster})
        self._asked.pop(cluster, None)

    def _failed(self, what: str, error: LeaseError) -> None:
        metrics.LEASE_ERRORS.labels(
            "connection" if error.status is None else f"http_{error.status}"
        ).inc()
        if not self._failing:
            log.warning(
                "cannot %s (%s); retrying every %.1fs, and watches whose Lease is not renewed "
                "within %.1fs stop",
                what,
                error,
                self._timings.retry_period_s,
                self._timings.renew_deadline_s,
            )
            self._failing = True

    def _publish_metrics(self) -> None:
        """Under the lock."""
        now = self._clock()
        held = {c for c, until in self._valid_until.items() if until > now}
        metrics.publish_leases(held=held, members=self._members)
