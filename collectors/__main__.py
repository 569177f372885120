"""Composition root of the collector: `python -m collectors` (or `herald-collector`).

Loads and validates settings, configures logging, builds the kube source and the Kafka sink, runs
the watch loop in a thread and, on SIGTERM or SIGINT, stops it and flushes the producer.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from types import FrameType

from confluent_kafka import Producer
from prometheus_client import start_http_server

from collectors.errors import SettingsError
from collectors.kafka import KafkaRecordSink, producer_config
from collectors.kube import KubeEventSource
from collectors.metrics import ClusterMetrics
from collectors.settings import CollectorSettings
from collectors.watching import Watcher

log = logging.getLogger("collectors")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = CollectorSettings.from_env(os.environ)
        source = KubeEventSource.connect(
            kubeconfig=settings.kubeconfig,
            context=settings.kube_context,
            namespace=settings.namespace,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
        )
    except SettingsError as e:
        sys.exit(f"collector: bad setting: {e}")
    metrics = ClusterMetrics(settings.cluster_name)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    sink = KafkaRecordSink(
        Producer(producer_config(settings.kafka_bootstrap)),
        topic=settings.raw_topic,
        on_delivered=metrics.delivered,
        on_failed=metrics.failed,
    )
    watcher = Watcher(
        cluster=settings.cluster_name,
        source=source,
        sink=sink,
        observer=metrics,
        now=_now,
        page_size=settings.list_page_size,
        watch_timeout_s=settings.watch_timeout_s,
    )

    def shutdown(signum: int, frame: FrameType | None) -> None:
        watcher.stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    thread = threading.Thread(
        target=watcher.run, name=f"watch-{settings.cluster_name}", daemon=True
    )
    thread.start()
    log.info("collector for cluster %s publishing to %s", settings.cluster_name, settings.raw_topic)
    watcher.stop.wait()
    thread.join(timeout=2)
    unsent = sink.flush(10)
    if unsent:
        log.error("%d records were not acknowledged by Kafka at shutdown", unsent)
    log.info("collector stopped: %d records delivered", sink.delivered)


if __name__ == "__main__":
    main()
