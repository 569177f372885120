"""Runs one watch per cluster scope it is given, and keeps that set in line with what it is given.

`apply` reconciles the running clusters with a configuration (the enabled clusters of the cluster
file whose Leases this replica holds, `collectors.leasekeeper`): clusters no longer given (removed,
disabled, their Lease lost or handed over) are stopped cleanly, changed ones restarted, new ones
started.
Each scope runs in a thread of its own, so one cluster's failures (a wrong kubeconfig, an API
server that is down) never hold up the others: that cluster retries with backoff and reports.
A watch that fails in a way nobody foresaw (a bug) is logged with its traceback and restarted from
its checkpoint with backoff, rather than ending that cluster's collection without a word.
`save_checkpoints` writes every scope's checkpoint that moved since it was last written.

With Leases, `holds(cluster)` (`LeaseKeeper.holds`) is asked before each record of a cluster is
published and before each of its checkpoints is written: a record of a cluster whose Lease is no
longer valid (this replica was paused past its renew deadline, say) is not published and ends that
cluster's watch (the next holder re-reads it from its checkpoint), and its checkpoint is not written
but forgotten (this replica reads the checkpoints from Kafka again before it watches it again). So
nothing is published for a cluster, nor its checkpoint moved, once another replica may hold it.

What health reads (`clusters`, `contact_ages`, `starting`) never waits on anything slow: stopping
clusters (joining their threads, up to `stop_timeout_s`, all at once) happens outside the lock those
take, and writing a checkpoint never blocks: when the producer cannot take one now (its queue is full
while Kafka is away), the checkpoint is kept and written on a later call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from collectors.checkpoints import Checkpoint, CheckpointStore, scope_key
from collectors.config import ClusterSpec
from collectors.errors import PublishError, SettingsError
from collectors.metrics import CLUSTERS_WATCHED, LAGS, ScopeMetrics
from collectors.progress import Progress
from collectors.watching import DeliveryCallback, EventSource, OwnerResolver, RecordSink, Watcher
from herald_contracts import RawRecord
from herald_runtime.backoff import Backoff

log = logging.getLogger(__name__)


class Source(EventSource, Protocol):
    @property
    def server(self) -> str: ...

    def interrupt(self) -> None: ...


Connect = Callable[[ClusterSpec, str | None], Source]
"""Build the API client of one scope (cluster, namespace or None); SettingsError if it cannot."""


class Owners(OwnerResolver, Protocol):
    """The owner caches of one scope (`collectors.ownerwatch.OwnerCaches`)."""

    def start(self) -> None: ...

    def wait_synced(self) -> bool: ...

    def interrupt(self) -> None: ...


ConnectOwners = Callable[[ClusterSpec, str | None, threading.Event], Owners]
"""Build the owner caches of one scope, stopping with the event; SettingsError if it cannot."""


FIRST_ATTEMPT_LIMIT_S = 10.0
"""How long a scope's first attempt (its first list) may hold readiness back at most."""


class _ScopeState(ScopeMetrics):
    """A scope's metrics, and whether its first attempt ended (an answer, or a failure)."""

    def __init__(self, cluster: str, scope: str) -> None:
        super().__init__(cluster, scope)
        self.started = time.time()
        self.failed = False

    def restarted(self, cause: str) -> None:
        self.failed = True
        super().restarted(cause)


@dataclass(frozen=True)
class WatchSettings:
    page_size: int = 500
    watch_timeout_s: int = 120
    backoff: Backoff = field(default_factory=Backoff)
    message_max_bytes: int = 65_536


@dataclass
class _Scope:
    key: str
    server: str
    progress: Progress
    source: Source
    owners: Owners | None = None


def _always(cluster: str) -> bool:
    return True


class _HeldSink:
    """The sink of one cluster's watches: publishes only while `holds(cluster)`; else drops the
    record (its ticket stays pending, so the checkpoint never passes it) and stops the watches."""

    def __init__(
        self,
        sink: RecordSink,
        *,
        cluster: str,
        holds: Callable[[str], bool],
        stop: threading.Event,
    ) -> None:
        self._sink = sink
        self._cluster = cluster
        self._holds = holds
        self._stop = stop

    def publish(
        self, record: RawRecord, *, on_delivery: DeliveryCallback, stop: threading.Event
    ) -> None:
        if not self._holds(self._cluster):
            if not self._stop.is_set():
                log.warning(
                    "cluster %s: its Lease is no longer valid; stopping its watch without "
                    "publishing more (the next holder re-reads from the checkpoint)",
                    self._cluster,
                    extra={"cluster": self._cluster},
                )
                self._stop.set()
            return
        self._sink.publish(record, on_delivery=on_delivery, stop=stop)


@dataclass
class _ClusterRun:
    spec: ClusterSpec
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    scopes: dict[str, _Scope] = field(default_factory=dict)
    metrics: dict[str, _ScopeState] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Supervisor:
    def __init__(
        self,
        *,
        connect: Connect,
        sink: RecordSink,
        store: CheckpointStore,
        checkpoints: dict[str, Checkpoint],
        now: Callable[[], str],
        watch: WatchSettings,
        stop_timeout_s: float = 15,
        connect_owners: ConnectOwners | None = None,
        holds: Callable[[str], bool] = _always,
    ) -> None:
        """`apply`, `stop` and `save_checkpoints` are called from one thread (the main loop);
        `clusters` and `contact_ages` from any. `holds(cluster)`: this replica may publish the
        cluster's records and write its checkpoints now (its Lease is valid); without Leases,
        always."""
        self._holds = holds
        self._connect = connect
        self._connect_owners = connect_owners
        self._sink = sink
        self._store = store
        self._checkpoints = dict(checkpoints)
        """The newest checkpoint known per scope, written or not (a restarted cluster starts there)."""
        self._saved = {k: c.resource_version for k, c in checkpoints.items()}
        self._checkpoints_lock = threading.Lock()
        self._save_failing = False
        self._now = now
        self._watch = watch
        self._stop_timeout_s = stop_timeout_s
        self._runs: dict[str, _ClusterRun] = {}
        self._metrics: dict[str, _ScopeState] = {}
        self._lock = threading.Lock()
        """Guards `_runs` and `_metrics`; never held while waiting for anything."""

    @property
    def clusters(self) -> list[str]:
        with self._lock:
            return sorted(self._runs)

    def apply(self, specs: tuple[ClusterSpec, ...]) -> None:
        desired = {s.name: s for s in specs if s.enabled}
        with self._lock:
            stopping = [run for name, run in self._runs.items() if desired.get(name) != run.spec]
            for run in stopping:
                log.info(
                    "cluster %s: stopping (%s)",
                    run.spec.name,
                    "changed"
                    if run.spec.name in desired
                    else "removed, disabled, or its Lease not held",
                )
                del self._runs[run.spec.name]
            CLUSTERS_WATCHED.set(len(self._runs))
        # Outside the lock: health goes on answering while the threads finish.
        self._stop_runs(stopping)
        self._save_checkpoints(stopping)
        with self._lock:
            for name, spec in desired.items():
                if name not in self._runs:
                    log.info("cluster %s: starting %d watch(es)", name, len(spec.scopes))
                    self._runs[name] = self._start_run(spec)
            CLUSTERS_WATCHED.set(len(self._runs))

    def stop(self) -> None:
        """Stop every watch; `save_checkpoints` still writes their last checkpoints afterwards."""
        with self._lock:
            runs = list(self._runs.values())
        self._stop_runs(runs)
        CLUSTERS_WATCHED.set(0)

    def save_checkpoints(self) -> int:
        """Write the checkpoints that moved; return how many were written. Never blocks and never
        raises for Kafka: what cannot be written now is written by a later call."""
        with self._lock:
            runs = list(self._runs.values())
        return self._save_checkpoints(runs)

    def _save_checkpoints(self, runs: list[_ClusterRun]) -> int:
        scopes: list[_Scope] = []
        for run in runs:
            with run.lock:
                scopes.extend(run.scopes.values())
        with self._checkpoints_lock:
            for scope in scopes:
                rv = scope.progress.checkpoint
                if rv is not None:
                    self._checkpoints[scope.key] = Checkpoint(rv, scope.server)
            for key in [k for k in self._checkpoints if not self._holds(k.partition("/")[0])]:
                # Not this replica's any more: forgotten, read from Kafka again before a restart.
                if self._saved.get(key) != self._checkpoints[key].resource_version:
                    log.warning(
                        "not writing the checkpoint of %s: its cluster's Lease is not valid", key
                    )
                del self._checkpoints[key]
                self._saved.pop(key, None)
            unsaved = [
                (key, checkpoint)
                for key, checkpoint in self._checkpoints.items()
                if self._saved.get(key) != checkpoint.resource_version
            ]
        written = 0
        for key, checkpoint in unsaved:
            try:
                self._store.save(key, checkpoint)
            except PublishError as e:
                if not self._save_failing:
                    log.warning("cannot write checkpoints now (%s); retrying every turn", e)
                    self._save_failing = True
                return written
            with self._checkpoints_lock:
                self._saved[key] = checkpoint.resource_version
            written += 1
        if self._save_failing:
            log.info("checkpoints written again")
            self._save_failing = False
        return written

    def contact_ages(self, now: float) -> dict[str, float | None]:
        """Seconds since each running scope last heard from its API server (None: never)."""
        ages: dict[str, float | None] = {}
        with self._lock:
            for run in self._runs.values():
                for namespace in run.spec.scopes:
                    metrics = self._metrics.get(scope_key(run.spec.name, namespace))
                    last = metrics.last_contact if metrics else None
                    ages[scope_key(run.spec.name, namespace)] = None if last is None else now - last
        return ages

    def starting(self, now: float) -> list[str]:
        """The running scopes still on their first attempt (no answer from their API server and
        no failure yet), for at most FIRST_ATTEMPT_LIMIT_S: what /readyz waits for at start."""
        with self._lock:
            states = list(self._metrics.items())
        return sorted(
            key
            for key, state in states
            if state.last_contact is None
            and not state.failed
            and now - state.started < FIRST_ATTEMPT_LIMIT_S
        )

    def merge_checkpoints(self, loaded: dict[str, Checkpoint]) -> None:
        """Checkpoints read from Kafka again (before taking clusters over from another replica):
        they replace what this replica knew of every scope it does not run now."""
        with self._lock:
            running = {
                scope_key(run.spec.name, namespace)
                for run in self._runs.values()
                for namespace in run.spec.scopes
            }
        with self._checkpoints_lock:
            for key, checkpoint in loaded.items():
                if key not in running:
                    self._checkpoints[key] = checkpoint
                    self._saved[key] = checkpoint.resource_version

    def unsaved_clusters(self) -> set[str]:
        """Clusters with a checkpoint not yet handed to the producer."""
        with self._checkpoints_lock:
            return {
                key.partition("/")[0]
                for key, checkpoint in self._checkpoints.items()
                if self._saved.get(key) != checkpoint.resource_version
            }

    def _start_run(self, spec: ClusterSpec) -> _ClusterRun:
        run = _ClusterRun(spec)
        for namespace in spec.scopes:
            metrics = _ScopeState(spec.name, namespace or "*")
            self._metrics[scope_key(spec.name, namespace)] = metrics
            run.metrics[scope_key(spec.name, namespace)] = metrics
            LAGS.add(metrics)
            thread = threading.Thread(
                target=self._run_scope,
                args=(run, namespace, metrics),
                name=f"watch-{spec.name}-{namespace or 'all'}",
                daemon=True,
            )
            run.threads.append(thread)
            thread.start()
        return run

    def _stop_runs(self, runs: list[_ClusterRun]) -> None:
        """Stop the runs' watches all at once, waiting at most `stop_timeout_s` in all."""
        for run in runs:
            run.stop.set()
            with run.lock:
                scopes = list(run.scopes.values())
            for scope in scopes:
                scope.source.interrupt()
                if scope.owners is not None:
                    scope.owners.interrupt()
        deadline = time.monotonic() + self._stop_timeout_s
        for run in runs:
            for thread in run.threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    log.warning(
                        "cluster %s: %s did not stop within %.0fs",
                        run.spec.name,
                        thread.name,
                        self._stop_timeout_s,
                    )
        with self._lock:
            for run in runs:
                for key, metrics in run.metrics.items():
                    if self._metrics.get(key) is metrics:
                        del self._metrics[key]
                        LAGS.remove(metrics)

    def _run_scope(self, run: _ClusterRun, namespace: str | None, metrics: _ScopeState) -> None:
        spec = run.spec
        key = scope_key(spec.name, namespace)
        failures = 0
        while True:
            if run.stop.is_set():
                return
            try:
                source = self._connect(spec, namespace)
                owners = (
                    None
                    if self._connect_owners is None
                    else self._connect_owners(spec, namespace, run.stop)
                )
                break
            except SettingsError as e:
                failures += 1
                delay = self._watch.backoff.delay(failures, rand=0.5)
                log.error(  # noqa: TRY400 - a configuration problem, not a bug: no traceback
                    "cluster %s: %s; retrying in %.0fs",
                    spec.name,
                    e,
                    delay,
                    extra={"cluster": spec.name},
                )
                metrics.restarted("config")
                run.stop.wait(delay)
        with self._checkpoints_lock:
            checkpoint = self._checkpoints.get(key)
        start = (
            checkpoint.resource_version
            if checkpoint and checkpoint.server == source.server
            else None
        )
        if start is None:
            metrics.relisted("start")
        else:
            log.info("cluster %s: resuming %s from resourceVersion %s", spec.name, key, start)
        progress = Progress(start)
        with run.lock:
            run.scopes[key] = _Scope(key, source.server, progress, source, owners)
        if owners is not None:
            # Before the Event watch, so that the Events it lists find their owners (bounded).
            owners.start()
            owners.wait_synced()
        failures = 0
        sink = _HeldSink(self._sink, cluster=spec.name, holds=self._holds, stop=run.stop)
        while not run.stop.is_set():
            try:
                Watcher(
                    cluster=spec.name,
                    source=source,
                    sink=sink,
                    observer=metrics,
                    now=self._now,
                    progress=progress,
                    event_filter=spec.filter,
                    stop=run.stop,
                    page_size=self._watch.page_size,
                    watch_timeout_s=self._watch.watch_timeout_s,
                    backoff=self._watch.backoff,
                    message_max_bytes=self._watch.message_max_bytes,
                    owners=owners,
                ).run()
            except Exception:  # a bug must not end this cluster's collection unseen
                failures += 1
                delay = self._watch.backoff.delay(failures, rand=0.5)
                log.exception(
                    "cluster %s: the watch of %s failed unexpectedly; restarting it from its "
                    "checkpoint in %.0fs",
                    spec.name,
                    key,
                    delay,
                    extra={"cluster": spec.name},
                )
                metrics.restarted("unexpected_error")
                run.stop.wait(delay)
                progress.restart()  # what was in flight is re-read from the checkpoint
