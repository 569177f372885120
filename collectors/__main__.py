"""Composition root of the collector: `python -m collectors [run]` (or `herald-collector`), and
`python -m collectors replay FILE [--cluster NAME]`.

Run: loads and validates the settings, configures logging, creates the producer and the checkpoint
store, serves metrics and health, waits for Kafka (checking the topics, `collectors.topics`) and reads
the checkpoints, starts the Lease keeper (`collectors.leasekeeper`, unless HERALD_LEASE_NAMESPACE is
unset: then this one collector watches every cluster) and the supervisor on the clusters whose
Leases this replica holds, re-reads the cluster file every few seconds, writes moved checkpoints
every second, and on SIGTERM or SIGINT stops the watches, flushes the producer, writes the last
checkpoints, reports anything unsent and releases its Leases.

Readiness (/readyz) is Kafka answered at start, the Leases can be read and renewed, and no watch is
still on its first attempt (for at most 10 s). Whether the clusters answer is not readiness: one
unreachable cluster would otherwise hold back every rollout of the collectors; it shows in the
metrics (`herald_collector_seconds_since_contact`, `herald_collector_watch_restarts_total`), the
logs, the alerts, and in /readyz's body (`not_in_contact`).

A Kafka that does not answer at start is waited for with backoff (logged; /healthz live, /readyz
503 with the reason), never reported as a bad setting: under Kubernetes that would crash-loop the
collector through every Kafka outage. Only settings that are wrong stop it, naming them.

Liveness (/healthz) is the main loop's tick, read without a lock by the health server's own thread:
nothing the loop does (writing checkpoints, which never blocks; stopping clusters on a reload, which
waits at most 15 s; waiting for Kafka, in steps of a few seconds) can stall it unseen.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from confluent_kafka import Producer

from collectors import metrics
from collectors.checkpoints import Checkpoint, KafkaCheckpointStore
from collectors.config import ClusterSpec, ConfigError, parse_cluster_file
from collectors.errors import KafkaUnavailableError, SettingsError
from collectors.kafka import KafkaRecordSink, producer_config
from collectors.kube import KubeEventSource, api_client
from collectors.kubemeta import KubeMetadataSource
from collectors.leasekeeper import LeaseKeeper, LeaseTimings
from collectors.leasestore import KubeLeaseStore
from collectors.ownerwatch import OwnerCaches, OwnerSettings
from collectors.replay import replay
from collectors.settings import WATCH_READ_MARGIN_S, CollectorSettings
from collectors.supervisor import ConnectOwners, Supervisor, WatchSettings
from collectors.topics import check_topics
from herald_runtime import health, logs, setting_names
from herald_runtime.backoff import Backoff
from herald_runtime.settings import stop_on_bad_settings, warn_unknown_names

log = logging.getLogger("collectors")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m collectors",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="watch the clusters and publish their Events (the default)")
    replaying = commands.add_parser("replay", help="publish a file of Events as the watcher would")
    replaying.add_argument("file", type=Path, help="JSON lines, one core/v1 Event each")
    replaying.add_argument("--cluster", help="cluster name for lines without '_cluster'")
    args = parser.parse_args(argv)
    with stop_on_bad_settings("collector"):
        settings = CollectorSettings.from_env(os.environ, need_clusters=args.command != "replay")
    logs.configure(log_format=settings.log_format, level=settings.log_level)
    warn_unknown_names(os.environ, reads=setting_names.COLLECTOR, log=log)
    producer = Producer(
        {
            **producer_config(
                settings.kafka_bootstrap,
                queue_max_messages=settings.kafka_queue_max_messages,
                queue_max_kbytes=settings.kafka_queue_max_kbytes,
                message_timeout_s=settings.kafka_message_timeout_s,
                message_max_bytes=settings.kafka_message_max_bytes,
            ),
            "logger": logging.getLogger("collectors.librdkafka"),
        }
    )
    sink = KafkaRecordSink(
        producer,
        topic=settings.raw_topic,
        message_max_bytes=settings.kafka_message_max_bytes,
        observe=metrics.delivered,
    )
    if args.command == "replay":
        sys.exit(_replay(settings, sink, args.file, args.cluster))
    try:
        initial = _load_clusters(settings)
    except (ConfigError, OSError) as e:
        sys.exit(f"collector: bad setting: {e}")
    store = KafkaCheckpointStore(
        producer, bootstrap=settings.kafka_bootstrap, topic=settings.checkpoint_topic
    )
    with stop_on_bad_settings("collector"):  # the topics' checks, the health endpoint's address
        keeper = _keeper(settings)  # the home cluster's config, when there are Leases
        _run(settings, sink, store, initial, keeper)


def _load_clusters(settings: CollectorSettings) -> tuple[ClusterSpec, ...]:
    if settings.clusters_file is None:
        assert settings.single_cluster is not None  # noqa: S101 - from_env guarantees one of them
        return (settings.single_cluster,)
    path = settings.clusters_file
    return parse_cluster_file(path.read_text(), source=str(path))


def _keeper(settings: CollectorSettings) -> LeaseKeeper | None:
    """The Lease keeper on the home cluster; None without HERALD_LEASE_NAMESPACE. SettingsError
    when the home cluster's config cannot be loaded (no in-cluster config outside a pod)."""
    if settings.lease_namespace is None:
        return None
    try:
        api = api_client(kubeconfig=settings.lease_kubeconfig, context=None)
    except SettingsError as e:
        raise SettingsError(
            f"HERALD_LEASE_NAMESPACE is set, so the Leases need the home cluster: {e} (set "
            "HERALD_LEASE_KUBECONFIG outside a pod, or unset HERALD_LEASE_NAMESPACE for one "
            "collector without Leases)"
        ) from e
    timings = LeaseTimings(
        duration_s=settings.lease_duration_s,
        renew_deadline_s=settings.lease_renew_deadline_s,
        retry_period_s=settings.lease_retry_period_s,
    )
    store = KubeLeaseStore(
        api,
        namespace=settings.lease_namespace,
        group=settings.lease_group,
        timeouts=(settings.connect_timeout_s, settings.lease_renew_deadline_s),
    )
    return LeaseKeeper(
        store, holder=settings.lease_holder, group=settings.lease_group, timings=timings
    )


class _LeaseFollower:
    """Each tick, with Leases: run the watches of the clusters whose Leases this replica holds,
    and tell the keeper which still run (or whose last checkpoints are not in Kafka yet), so that
    it releases only what has stopped and is checkpointed."""

    def __init__(
        self,
        keeper: LeaseKeeper,
        supervisor: Supervisor,
        store: KafkaCheckpointStore,
        sink: KafkaRecordSink,
    ) -> None:
        self._keeper = keeper
        self._supervisor = supervisor
        self._store = store
        self._sink = sink
        self._unflushed: set[str] = set()

    def follow(self, specs: tuple[ClusterSpec, ...]) -> None:
        owned, view = self._keeper.owned()
        before = set(self._supervisor.clusters)
        # What is no longer this replica's stops first, before anything that may take a while.
        self._supervisor.apply(self._chosen(specs, owned & before))
        if owned - before:
            # Another replica may have watched them until just now: start from its checkpoints.
            try:
                self._supervisor.merge_checkpoints(self._store.load(timeout_s=5))
            except KafkaUnavailableError as e:
                log.warning(
                    "cannot read the checkpoints before starting %s (%s); trying again",
                    ", ".join(sorted(owned - before)),
                    e,
                )
            else:
                owned, view = self._keeper.owned()  # again: reading them took a moment
                self._supervisor.apply(self._chosen(specs, owned))
        stopped = before - set(self._supervisor.clusters)
        if stopped:
            # Their last checkpoints in Kafka before their Leases go: the next holder reads them.
            self._supervisor.save_checkpoints()
            self._unflushed |= stopped
        if self._unflushed and self._sink.flush(5 if stopped else 0) == 0:
            self._unflushed.clear()
        running = set(self._supervisor.clusters) | self._supervisor.unsaved_clusters()
        self._keeper.report(running | self._unflushed, view=view)

    @staticmethod
    def _chosen(
        specs: tuple[ClusterSpec, ...], names: set[str] | frozenset[str]
    ) -> tuple[ClusterSpec, ...]:
        return tuple(s for s in specs if s.enabled and s.name in names)


def _connect(settings: CollectorSettings) -> Any:
    def connect(spec: ClusterSpec, namespace: str | None) -> KubeEventSource:
        return KubeEventSource.connect(
            kubeconfig=spec.kubeconfig,
            context=spec.context,
            namespace=namespace,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            watch_read_margin_s=WATCH_READ_MARGIN_S,
        )

    return connect


def _connect_owners(settings: CollectorSettings) -> ConnectOwners | None:
    if not settings.owner_resolution:
        return None
    owner_settings = OwnerSettings(
        selected_labels=settings.owner_labels,
        instance_label=settings.owner_instance_label,
        max_objects=settings.owner_cache_max_objects,
        page_size=settings.list_page_size,
        watch_timeout_s=settings.watch_timeout_s,
        sync_timeout_s=settings.owner_sync_timeout_s,
        backoff=Backoff(base_s=settings.backoff_base_s, cap_s=settings.backoff_max_s),
    )

    def connect(spec: ClusterSpec, namespace: str | None, stop: threading.Event) -> OwnerCaches:
        source = KubeMetadataSource(
            api_client(kubeconfig=spec.kubeconfig, context=spec.context),
            namespace=namespace,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            watch_read_margin_s=WATCH_READ_MARGIN_S,
        )
        return OwnerCaches(
            source,
            cluster=spec.name,
            settings=owner_settings,
            observer=metrics.OwnerMetrics(spec.name, namespace or "*"),
            stop=stop,
        )

    return connect


class _Health:
    """What /healthz and /readyz read: the main loop's tick (no lock: a stuck loop cannot hold
    one), the reason it is waiting for Kafka, if it is, the Lease keeper, and the supervisor once
    it runs."""

    def __init__(self, *, live_limit_s: float, contact_limit_s: float) -> None:
        self._live_limit_s = live_limit_s
        self._contact_limit_s = contact_limit_s
        self.tick = time.monotonic()
        self.waiting_for: str | None = "starting"
        self.supervisor: Supervisor | None = None
        self.keeper: LeaseKeeper | None = None

    def beat(self) -> None:
        self.tick = time.monotonic()

    def live(self) -> tuple[bool, dict[str, Any]]:
        age = time.monotonic() - self.tick
        return age < self._live_limit_s, {"loop_age_s": round(age, 1)}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        supervisor, keeper, waiting_for = self.supervisor, self.keeper, self.waiting_for
        if supervisor is None:
            return False, {"waiting_for": waiting_for}
        now = time.time()
        ages = supervisor.contact_ages(now)
        stale = sorted(k for k, v in ages.items() if v is None or v > self._contact_limit_s)
        starting = supervisor.starting(now)
        details: dict[str, Any] = {
            "clusters": supervisor.clusters,
            "not_in_contact": stale,
            "starting": starting,
        }
        leases_ok = True
        if keeper is not None:
            leases_ok, details["leases"] = keeper.health()
        return leases_ok and not starting, details


def _wait_for_kafka(
    settings: CollectorSettings,
    store: KafkaCheckpointStore,
    *,
    stop: threading.Event,
    state: _Health,
) -> dict[str, Checkpoint] | None:
    """Check the topics and read the checkpoints, waiting with backoff while Kafka does not answer;
    None if stopped meanwhile. SettingsError (from the checks) is for the caller: stop."""
    backoff = Backoff(base_s=settings.backoff_base_s, cap_s=settings.backoff_max_s)
    failures = 0
    while not stop.is_set():
        state.beat()
        try:
            check_topics(
                settings.kafka_bootstrap,
                raw_topic=settings.raw_topic,
                checkpoint_topic=settings.checkpoint_topic,
                message_max_bytes=settings.kafka_message_max_bytes,
            )
            state.beat()  # each step is bounded (a few seconds per call): liveness sees progress
            checkpoints = store.load(timeout_s=15)
        except KafkaUnavailableError as e:
            failures += 1
            delay = backoff.delay(failures, rand=random.random())  # noqa: S311 - jitter, not a secret
            state.waiting_for = f"Kafka: {e}"
            log.warning("waiting for Kafka: %s; trying again in %.1fs", e, delay)
            stop.wait(delay)
            continue
        if failures:
            log.info("Kafka answers at %s; starting", settings.kafka_bootstrap)
        state.waiting_for = None
        return checkpoints
    return None


def _supervisor(
    settings: CollectorSettings,
    sink: KafkaRecordSink,
    store: KafkaCheckpointStore,
    checkpoints: dict[str, Checkpoint],
    keeper: LeaseKeeper | None,
) -> Supervisor:
    return Supervisor(
        connect=_connect(settings),
        sink=sink,
        store=store,
        checkpoints=checkpoints,
        now=_now,
        watch=WatchSettings(
            page_size=settings.list_page_size,
            watch_timeout_s=settings.watch_timeout_s,
            backoff=Backoff(base_s=settings.backoff_base_s, cap_s=settings.backoff_max_s),
            message_max_bytes=settings.event_message_max_bytes,
        ),
        connect_owners=_connect_owners(settings),
        holds=(lambda _cluster: True) if keeper is None else keeper.holds,
    )


def _start_leases(
    settings: CollectorSettings,
    keeper: LeaseKeeper,
    specs: tuple[ClusterSpec, ...],
) -> tuple[threading.Thread, threading.Event]:
    """The beat, in a thread of its own, with the event that stops it: it goes on until the
    watches have stopped and their checkpoints are written (`_stop`), so that their Leases stay
    valid until then."""
    keeper.want(s.name for s in specs if s.enabled)
    stop = threading.Event()
    beats = threading.Thread(target=keeper.run, args=(stop,), name="leases", daemon=True)
    beats.start()
    log.info(
        "collector %s publishing to %s; sharing %d clusters with the other replicas through "
        "Leases %s-* in namespace %s",
        keeper.holder,
        settings.raw_topic,
        sum(1 for s in specs if s.enabled),
        keeper.group,
        settings.lease_namespace,
    )
    return beats, stop


def _run(
    settings: CollectorSettings,
    sink: KafkaRecordSink,
    store: KafkaCheckpointStore,
    initial: tuple[ClusterSpec, ...],
    keeper: LeaseKeeper | None,
) -> None:
    stop = threading.Event()

    def shutdown(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    state = _Health(
        live_limit_s=max(30.0, 3 * settings.clusters_reload_s),
        contact_limit_s=settings.contact_limit_s,
    )
    if settings.metrics_port:
        health.serve(
            host=settings.metrics_host,
            port=settings.metrics_port,
            live=state.live,
            ready=state.ready,
        )
    checkpoints = _wait_for_kafka(settings, store, stop=stop, state=state)
    if checkpoints is None:
        log.info("collector stopped before Kafka answered")
        return
    reports = threading.Thread(
        target=sink.serve_reports, args=(stop,), name="delivery-reports", daemon=True
    )
    reports.start()
    supervisor = _supervisor(settings, sink, store, checkpoints, keeper)
    specs = initial
    follower: _LeaseFollower | None = None
    beats: tuple[threading.Thread, threading.Event] | None = None
    tick = settings.checkpoint_interval_s
    if keeper is None:
        supervisor.apply(specs)
        log.info(
            "collector publishing to %s; no Leases (HERALD_LEASE_NAMESPACE unset): watching %s",
            settings.raw_topic,
            ", ".join(supervisor.clusters) or "nothing",
        )
    else:
        follower = _LeaseFollower(keeper, supervisor, store, sink)
        beats = _start_leases(settings, keeper, specs)
        state.keeper = keeper
        # Often enough that a watch stops well within the margin its Lease leaves.
        tick = min(tick, settings.lease_retry_period_s / 2)
    state.supervisor = supervisor
    last_text = settings.clusters_file.read_text() if settings.clusters_file else None
    next_reload = time.monotonic() + settings.clusters_reload_s
    next_save = time.monotonic() + settings.checkpoint_interval_s
    while not stop.wait(tick):
        state.beat()
        if time.monotonic() >= next_save:
            next_save = time.monotonic() + settings.checkpoint_interval_s
            supervisor.save_checkpoints()
        if settings.clusters_file is not None and time.monotonic() >= next_reload:
            next_reload = time.monotonic() + settings.clusters_reload_s
            last_text, changed = _reload(settings.clusters_file, last_text)
            if changed is not None:
                specs = changed
                _apply(specs, supervisor, keeper)
        if follower is not None:
            follower.follow(specs)
    _stop(settings, supervisor, sink, keeper, beats)


def _apply(
    specs: tuple[ClusterSpec, ...], supervisor: Supervisor, keeper: LeaseKeeper | None
) -> None:
    """A new cluster file: without Leases, watch it all; with them, want its Leases."""
    if keeper is None:
        supervisor.apply(specs)
    else:
        keeper.want(s.name for s in specs if s.enabled)


def _stop(
    settings: CollectorSettings,
    supervisor: Supervisor,
    sink: KafkaRecordSink,
    keeper: LeaseKeeper | None,
    beats: tuple[threading.Thread, threading.Event] | None,
) -> None:
    supervisor.stop()
    unsent = sink.flush(10)
    supervisor.save_checkpoints()
    sink.flush(5)
    if unsent:
        log.error(
            "%d records were not acknowledged by Kafka at shutdown; they will be re-read", unsent
        )
    if keeper is not None and beats is not None:
        thread, stop_beats = beats
        stop_beats.set()
        thread.join(timeout=settings.lease_renew_deadline_s)
        keeper.release()  # after the last checkpoints: the replicas taking over read them
    log.info("collector stopped")


def _reload(path: Path, last_text: str | None) -> tuple[str | None, tuple[ClusterSpec, ...] | None]:
    """The file's text now, and its clusters if it changed and parses (None otherwise)."""
    try:
        text = path.read_text()
    except OSError as e:
        metrics.CONFIG_ERRORS.inc()
        log.error(  # noqa: TRY400 - a user error, no traceback
            "cannot read the cluster file %s: %s; keeping the previous configuration", path, e
        )
        return last_text, None
    if text == last_text:
        return last_text, None
    try:
        specs = parse_cluster_file(text, source=str(path))
    except ConfigError as e:
        metrics.CONFIG_ERRORS.inc()
        log.error("%s; keeping the previous configuration", e)  # noqa: TRY400 - a user error, no traceback
        return text, None  # reported once; a later edit is read again
    log.info("cluster file %s changed; applying it", path)
    return text, specs


def _replay(
    settings: CollectorSettings, sink: KafkaRecordSink, path: Path, cluster: str | None
) -> int:
    filters = {}
    if settings.clusters_file is not None:
        try:
            specs = parse_cluster_file(
                settings.clusters_file.read_text(), source=str(settings.clusters_file)
            )
        except ConfigError as e:
            print(f"collector: bad setting: {e}", file=sys.stderr)
            return 2
        filters = {s.name: s.filter for s in specs}
    elif settings.single_cluster is not None:
        filters = {settings.single_cluster.name: settings.single_cluster.filter}
        cluster = cluster or settings.single_cluster.name
    try:
        with path.open() as lines:
            report = replay(
                lines,
                cluster=cluster,
                filters=filters,
                sink=sink,
                now=_now,
                source=str(path),
                message_max_bytes=settings.event_message_max_bytes,
            )
    except (OSError, UnicodeDecodeError) as e:
        print(f"collector: cannot read {path}: {e}", file=sys.stderr)
        return 2
    unsent = sink.flush(60)
    for notice in report.shortened:
        print(notice, file=sys.stderr)
    for error in report.errors:
        print(error, file=sys.stderr)
    print(
        f"replayed {path}: {report.published} published ({len(report.shortened)} shortened), "
        f"{report.filtered} filtered out, {len(report.errors)} not published"
        + (f", {unsent} not acknowledged in time" if unsent else "")
    )
    return 0 if not report.errors and not unsent else 1


if __name__ == "__main__":
    main()
