"""Prometheus metrics of a collector, labelled by cluster."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_RECEIVED = Counter(
    "herald_collector_events_received_total",
    "Watch events received from the API server, by watch type (BOOKMARK included).",
    ["cluster", "watch_type"],
)
WATCH_RESTARTS = Counter(
    "herald_collector_watch_restarts_total",
    "Watches restarted, by cause (stream_ended, expired, http_<status>, connection).",
    ["cluster", "cause"],
)
PUBLISH_ERRORS = Counter(
    "herald_collector_publish_errors_total",
    "Records Kafka did not acknowledge, by error.",
    ["cluster", "error"],
)
DELIVERY_LATENCY = Histogram(
    "herald_collector_kafka_delivery_seconds",
    "Time from produce to the broker's acknowledgement.",
    ["cluster"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class ClusterMetrics:
    """The `WatchObserver` of one cluster, and the sink's delivery callbacks."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster

    def received(self, watch_type: str) -> None:
        EVENTS_RECEIVED.labels(self.cluster, watch_type).inc()

    def restarted(self, cause: str) -> None:
        WATCH_RESTARTS.labels(self.cluster, cause).inc()

    def delivered(self, latency_s: float) -> None:
        DELIVERY_LATENCY.labels(self.cluster).observe(latency_s)

    def failed(self, error: str) -> None:
        PUBLISH_ERRORS.labels(self.cluster, error).inc()
