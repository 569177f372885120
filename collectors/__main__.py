"""Composition root of the collector: `python -m collectors [run]` (or `herald-collector`), and
`python -m collectors replay FILE [--cluster NAME]`.

Run: loads and validates the settings, configures logging, creates the producer and the checkpoint
store, serves metrics and health, waits for Kafka (checking the topics, `collectors.topics`) and reads
the checkpoints, starts the supervisor on the clusters this replica owns, re-reads the cluster file
every few seconds, writes moved checkpoints every second, and on SIGTERM or SIGINT stops the
watches, flushes the producer, writes the last checkpoints and reports anything unsent.

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
from collectors.errors import KafkaUnavailableError
from collectors.kafka import KafkaRecordSink, producer_config
from collectors.kube import KubeEventSource, api_client
from collectors.kubemeta import KubeMetadataSource
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
        _run(settings, sink, store, initial)


def _load_clusters(settings: CollectorSettings) -> tuple[ClusterSpec, ...]:
    if settings.clusters_file is None:
        assert settings.single_cluster is not None  # noqa: S101 - from_env guarantees one of them
        return (settings.single_cluster,)
    path = settings.clusters_file
    return parse_cluster_file(path.read_text(), source=str(path))


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
    one), the reason it is waiting for Kafka, if it is, and the supervisor once it runs."""

    def __init__(self, *, live_limit_s: float, contact_limit_s: float) -> None:
        self._live_limit_s = live_limit_s
        self._contact_limit_s = contact_limit_s
        self.tick = time.monotonic()
        self.waiting_for: str | None = "starting"
        self.supervisor: Supervisor | None = None

    def beat(self) -> None:
        self.tick = time.monotonic()

    def live(self) -> tuple[bool, dict[str, Any]]:
        age = time.monotonic() - self.tick
        return age < self._live_limit_s, {"loop_age_s": round(age, 1)}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        supervisor, waiting_for = self.supervisor, self.waiting_for
        if supervisor is None:
            return False, {"waiting_for": waiting_for}
        ages = supervisor.contact_ages(time.time())
        stale = {k: v for k, v in ages.items() if v is None or v > self._contact_limit_s}
        return not stale, {"clusters": supervisor.clusters, "not_in_contact": sorted(stale)}


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


def _run(
    settings: CollectorSettings,
    sink: KafkaRecordSink,
    store: KafkaCheckpointStore,
    initial: tuple[ClusterSpec, ...],
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
    supervisor = Supervisor(
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
        replica_index=settings.replica_index,
        replica_count=settings.replica_count,
        connect_owners=_connect_owners(settings),
    )
    supervisor.apply(initial)
    state.supervisor = supervisor
    log.info(
        "collector replica %d/%d publishing to %s; watching %s",
        settings.replica_index,
        settings.replica_count,
        settings.raw_topic,
        ", ".join(supervisor.clusters) or "nothing",
    )
    last_text = settings.clusters_file.read_text() if settings.clusters_file else None
    next_reload = time.monotonic() + settings.clusters_reload_s
    while not stop.wait(settings.checkpoint_interval_s):
        state.beat()
        supervisor.save_checkpoints()
        if settings.clusters_file is not None and time.monotonic() >= next_reload:
            next_reload = time.monotonic() + settings.clusters_reload_s
            last_text = _reload(settings.clusters_file, last_text, supervisor)
    supervisor.stop()
    unsent = sink.flush(10)
    supervisor.save_checkpoints()
    sink.flush(5)
    if unsent:
        log.error(
            "%d records were not acknowledged by Kafka at shutdown; they will be re-read", unsent
        )
    log.info("collector stopped")


def _reload(path: Path, last_text: str | None, supervisor: Supervisor) -> str | None:
    try:
        text = path.read_text()
    except OSError as e:
        metrics.CONFIG_ERRORS.inc()
        log.error(  # noqa: TRY400 - a user error, no traceback
            "cannot read the cluster file %s: %s; keeping the previous configuration", path, e
        )
        return last_text
    if text == last_text:
        return last_text
    try:
        specs = parse_cluster_file(text, source=str(path))
    except ConfigError as e:
        metrics.CONFIG_ERRORS.inc()
        log.error("%s; keeping the previous configuration", e)  # noqa: TRY400 - a user error, no traceback
        return text  # reported once; a later edit is read again
    log.info("cluster file %s changed; applying it", path)
    supervisor.apply(specs)
    return text


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
