"""Composition root of the processor: `python -m processors` (or `herald-processor`); `python -m
processors rules ...` runs the rule pack commands instead (`processors.rule_commands`).

Loads and validates settings (a bad one stops it here, named), takes SIGTERM and SIGINT onto a
thread of their own (`herald_runtime.watchdog.SignalStop`: a stop always ends within
HERALD_PROCESSOR_STOP_TIMEOUT_S), serves /metrics, /healthz and /readyz from the start, starts the
watchdog thread (`processors.liveness`), waits for Kafka to tell the raw topic's partition count
(the tables are co-partitioned with it) and for its domain and dead-letter topics to exist (unready
meanwhile, naming the command that creates them: `processors.kafka`), then runs a Faust worker for
the app. Nothing the health
endpoint or the watchdog reads comes from Faust's objects: see `processors.liveness` for why.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

import faust

from herald_runtime import health, logs, setting_names
from herald_runtime.heartbeats import Heartbeats
from herald_runtime.settings import stop_on_bad_settings, warn_unknown_names
from herald_runtime.watchdog import SignalStop, Watchdog
from processors.app import build_app, publish_status
from processors.kafka import wait_for_raw_partitions
from processors.liveness import MAIN, WorkerStatus, probes, stall
from processors.settings import ProcessorSettings
from processors.stalls import UnreadyGuard

log = logging.getLogger("processors")


def _restart_in_place() -> None:
    """Start the worker over in the same process: fresh state, reading from the committed offsets."""
    sys.stdout.flush()
    sys.stderr.flush()
    _exec_self()


def _exec_self() -> None:
    # The watchdog calls this without flushing: the thread it found stuck may hold the streams.
    os.execv(sys.executable, [sys.executable, "-m", "processors"])  # noqa: S606 - ourselves, same args


def main() -> None:
    if sys.argv[1:2] == ["rules"]:  # the rule pack commands (processors.rule_commands): no worker
        from processors.rule_commands import main as rules  # noqa: PLC0415 - only for this command

        sys.exit(rules(sys.argv[2:]))
    with stop_on_bad_settings("processor"):
        settings = ProcessorSettings.from_env(os.environ)
    # Before any thread starts: the signals stay blocked in every thread but their own.
    signals = SignalStop(grace_s=settings.stop_timeout_s).install()
    logs.configure(log_format=settings.log_format, level=settings.log_level)
    warn_unknown_names(os.environ, reads=setting_names.PROCESSOR, log=log)
    status = WorkerStatus()
    beats = Heartbeats({MAIN: settings.loop_stall_s})
    live, ready = probes(status, beats.stuck)
    if settings.metrics_port:
        with stop_on_bad_settings("processor"):
            health.serve(
                host=settings.metrics_host, port=settings.metrics_port, live=live, ready=ready
            )
    unready = UnreadyGuard(after_s=settings.recovery_stall_s)

    def restart(reason: str) -> None:
        log.error("restarting the worker in place: %s", reason)
        _exec_self()

    Watchdog(
        lambda now: stall(status.get(), beats.stuck(), unready, now=now), remedy=restart
    ).start()

    stopping = threading.Event()
    signals.on_stop(lambda _signal: stopping.set())
    status.wait_for(f"Kafka at {settings.kafka_bootstrap} to answer")
    partitions = wait_for_raw_partitions(
        bootstrap=settings.kafka_bootstrap,
        topic=settings.raw_topic,
        also=(settings.domain_topic, settings.dead_letter_topic),
        waiting=status.wait_for,
        beat=beats.beater(MAIN),
        stop=stopping,
    )
    if partitions is None:
        log.info("stopped before Kafka answered")
        return
    status.wait_for("the worker to start")
    log.info(
        "rule packs: %s (built in: %s; from %s: %s); %d types",
        ", ".join(settings.catalogue.packs) or "none",
        ", ".join(settings.rule_packs) or "none",
        settings.rule_dir or "no directory",
        ", ".join(p for p in settings.catalogue.packs if p not in settings.rule_packs) or "none",
        len(settings.catalogue.types),
    )
    app = build_app(settings, raw_partitions=partitions, restart=_restart_in_place)
    # Faust keeps the logging configured above (`override_logging`: no handler of its own, no
    # stdout redirected into the logs) and prints nothing itself: `quiet` (no "OK ^"), no spinner
    # (its `finish` writes terminal escapes even to a file); it logs "Ready" instead.
    worker = faust.Worker(app, override_logging=False, quiet=True)
    worker.spinner = None
    loop = worker.loop
    beat = beats.beater(MAIN)

    def published(*, recovered: bool, rebalancing: bool) -> None:
        beat()
        status.publish(recovered=recovered, rebalancing=rebalancing)

    publish_status(app, loop, published)

    def stop_worker(received: signal.Signals) -> None:
        # What mode's Worker does when a signal reaches its event loop; here the signal thread
        # hands it over (the signals are blocked in the loop's thread).
        loop.call_soon_threadsafe(worker._schedule_shutdown, received)

    signals.on_stop(stop_worker)
    if stopping.is_set():  # the signal came while the worker was being built
        return
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
