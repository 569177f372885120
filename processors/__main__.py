"""Composition root of the processor: `python -m processors` (or `herald-processor`).

Loads and validates settings, finds the raw topic's partition count (the tables are co-partitioned
with it), then runs a Faust worker for the app (which installs its own signal handlers and shuts down
cleanly on SIGTERM or SIGINT).
"""

from __future__ import annotations

import os
import sys

import faust
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from herald_runtime import health
from herald_runtime.heartbeats import Heartbeats
from processors.app import build_app, guard_interval_s
from processors.settings import ProcessorSettings, SettingsError


def raw_partitions(settings: ProcessorSettings) -> int:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    try:
        topics = admin.list_topics(timeout=30).topics
    except KafkaException as e:
        raise SettingsError(f"HERALD_KAFKA_BOOTSTRAP {settings.kafka_bootstrap!r}: {e}") from e
    topic = topics.get(settings.raw_topic)
    if topic is None or not topic.partitions:
        raise SettingsError(f"HERALD_RAW_TOPIC {settings.raw_topic!r} does not exist")
    return len(topic.partitions)


def _restart_in_place() -> None:
    """Start the worker over in the same process: fresh state, reading from the committed offsets."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "processors"])  # noqa: S606 - ourselves, same args


def main() -> None:
    try:
        settings = ProcessorSettings.from_env(os.environ)
        partitions = raw_partitions(settings)
    except SettingsError as e:
        sys.exit(f"processor: bad setting: {e}")
    # Live: the event loop runs (the guard's timer ticks). Ready: live, the tables recovered, and
    # not in a rebalance: the worker is processing.
    beats = Heartbeats({"event-loop": max(60.0, 5 * guard_interval_s(settings))})
    app = build_app(
        settings,
        raw_partitions=partitions,
        restart=_restart_in_place,
        beat=beats.beater("event-loop"),
    )

    def live() -> tuple[bool, dict[str, object]]:
        stuck = beats.stuck()
        return not stuck, {"stuck": stuck}

    def ready() -> tuple[bool, dict[str, object]]:
        ok, details = live()
        recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
        rebalancing = bool(app.rebalancing)
        return ok and recovered and not rebalancing, {
            **details,
            "recovered": recovered,
            "rebalancing": rebalancing,
        }

    if settings.metrics_port:
        health.serve(host=settings.metrics_host, port=settings.metrics_port, live=live, ready=ready)
    worker = faust.Worker(app, loglevel="INFO")
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
