"""Prometheus metrics of a collector, labelled by cluster (and scope where a cluster has several).

Counters and the delivery histogram are updated as things happen; the counters whose label values
are known start at 0 for each cluster as soon as its watch is set up (`count_from_zero`), so that
the first expired relist or set-aside Event after a restart is seen by `increase()`. The lags are
computed when Prometheus scrapes, from timestamps the watches keep: seconds since the last
successful contact with the API server, since the last bookmark, and from the newest Event's own
time to now; the time of the last contact is exported too, 0 for a scope never reached since the
start (a wrong kubeconfig), which has no seconds since contact.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from herald_contracts import RawRecord, WatchType, parse_time, view_event
from herald_runtime.metrics import start_at_zero

EVENTS_RECEIVED = Counter(
    "herald_collector_events_received_total",
    "Events received from the API server, by watch type (list items count as ADDED; BOOKMARK and ERROR included).",
    ["cluster", "watch_type"],
)
EVENTS_PUBLISHED = Counter(
    "herald_collector_events_published_total",
    "Records Kafka acknowledged, by watch type.",
    ["cluster", "watch_type"],
)
EVENTS_DROPPED = Counter(
    "herald_collector_events_dropped_total",
    "Events not published, by reason (filtered, already_published on a relist).",
    ["cluster", "reason"],
)
EVENTS_SET_ASIDE = Counter(
    "herald_collector_events_set_aside_total",
    "Watch objects not published because they cannot be (not_an_event: not a core/v1 Event; "
    "too_large: above Kafka's record size even with the message shortened; not_utf8). Each is "
    "logged once with what it was.",
    ["cluster", "reason"],
)
MESSAGES_SHORTENED = Counter(
    "herald_collector_messages_shortened_total",
    "Events published with their message shortened to HERALD_EVENT_MESSAGE_MAX_BYTES.",
    ["cluster"],
)
PUBLISH_ERRORS = Counter(
    "herald_collector_publish_errors_total",
    "Records Kafka did not acknowledge, by error (each restarts its watch from the checkpoint).",
    ["cluster", "error"],
)
WATCH_RESTARTS = Counter(
    "herald_collector_watch_restarts_total",
    "Watches restarted other than at their server-side timeout, by cause (stream_ended: ended "
    "before it; http_<status>, connection, forbidden_while_starting: a 403 while an API server's "
    "RBAC warms up after a start; config, publish_failed, unexpected_error).",
    ["cluster", "cause"],
)
RELISTS = Counter(
    "herald_collector_relists_total",
    "Full relists, by cause (start: no checkpoint; expired: 410; server_behind: the API server's "
    "resourceVersion is behind the checkpoint, its etcd wiped or restored).",
    ["cluster", "cause"],
)
CONFIG_ERRORS = Counter(
    "herald_collector_config_errors_total",
    "Cluster-file reloads refused because of an error (the previous configuration stays in force).",
)
CLUSTERS_WATCHED = Gauge("herald_collector_clusters_watched", "Clusters this replica watches now.")
LEASES_HELD = Gauge(
    "herald_collector_leases_held",
    "1 per cluster whose Lease this replica holds now (absent: another replica's, or nobody's); "
    "summed over the replicas, 1 per cluster.",
    ["cluster"],
)
LEASE_MEMBERS = Gauge(
    "herald_collector_lease_members",
    "Collector replicas alive as this one counts them (membership Leases not expired), itself "
    "included.",
)
CLUSTERS_CONFIGURED = Gauge(
    "herald_collector_clusters_configured",
    "Enabled clusters in the cluster file, as this replica read it: with Leases, "
    "sum(herald_collector_leases_held) falls short of it while a cluster is watched by nobody.",
)
LEASE_ERRORS = Counter(
    "herald_collector_lease_errors_total",
    "Lease reads and writes that failed, by cause (conflict: another replica wrote first; "
    "http_<status>; connection).",
    ["cause"],
)
_leases_held: set[str] = set()


def publish_leases(*, held: set[str], members: int) -> None:
    """The Leases this replica holds now: a cluster no longer held loses its sample."""
    for cluster in _leases_held - held:
        LEASES_HELD.remove(cluster)
    for cluster in held:
        LEASES_HELD.labels(cluster).set(1)
    _leases_held.clear()
    _leases_held.update(held)
    LEASE_MEMBERS.set(members)


DELIVERY_LATENCY = Histogram(
    "herald_collector_kafka_delivery_seconds",
    "Time from handing a record to the producer to the broker's acknowledgement.",
    ["cluster"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
OWNER_CACHE_OBJECTS = Gauge(
    "herald_collector_owner_cache_objects",
    "Objects held in the owner caches, by kind (metadata only; at most "
    "HERALD_OWNER_CACHE_MAX_OBJECTS per kind and scope).",
    ["cluster", "scope", "kind"],
)
OWNER_CACHE_REFUSED = Counter(
    "herald_collector_owner_cache_refused_total",
    "Objects not cached because their kind's cache was full (HERALD_OWNER_CACHE_MAX_OBJECTS): "
    "Events about them are published without owners.",
    ["cluster", "kind"],
)
OWNER_CACHE_RELISTS = Counter(
    "herald_collector_owner_cache_relists_total",
    "Owner cache relists, by kind and cause (expired: 410; server_behind: the API server's"
    " resourceVersion is behind the cache's, its etcd wiped or restored).",
    ["cluster", "kind", "cause"],
)
OWNER_CACHE_ERRORS = Counter(
    "herald_collector_owner_cache_errors_total",
    "Owner cache list/watch errors, by kind and cause (http_<status>, connection, "
    "forbidden_while_starting: a 403 while an API server's RBAC warms up after a start); each "
    "retried with backoff.",
    ["cluster", "kind", "cause"],
)
OWNER_RESOLUTIONS = Counter(
    "herald_collector_owner_resolutions_total",
    "Events about a cached kind (Pod, ReplicaSet, workloads), by outcome: resolved (the whole "
    "chain cached), partial (an owner not cached: the chain stops at its reference), not_cached "
    "(the involved object not cached yet, or gone: published without ownership).",
    ["cluster", "outcome"],
)


RELIST_CAUSES = ("start", "expired", "server_behind")
DROP_REASONS = ("filtered", "already_published")
SET_ASIDE_REASONS = ("not_an_event", "too_large", "not_utf8")


def count_from_zero(cluster: str) -> None:
    """Give a cluster's counters of known label values a 0 sample (idempotent). Watch restarts,
    publish errors and the owner caches' counters are left out: their causes are open-ended
    (`http_<status>`, Kafka's error names) and no alert counts their first occurrence."""
    start_at_zero(RELISTS, cluster=[cluster], cause=RELIST_CAUSES)
    start_at_zero(EVENTS_DROPPED, cluster=[cluster], reason=DROP_REASONS)
    start_at_zero(EVENTS_SET_ASIDE, cluster=[cluster], reason=SET_ASIDE_REASONS)
    start_at_zero(EVENTS_PUBLISHED, cluster=[cluster], watch_type=[t.value for t in WatchType])
    start_at_zero(MESSAGES_SHORTENED, cluster=[cluster])


class OwnerMetrics:
    """The `OwnerObserver` of one scope's owner caches."""

    def __init__(self, cluster: str, scope: str) -> None:
        self.cluster = cluster
        self.scope = scope

    def cached(self, kind: str, count: int) -> None:
        OWNER_CACHE_OBJECTS.labels(self.cluster, self.scope, kind).set(count)

    def refused(self, kind: str) -> None:
        OWNER_CACHE_REFUSED.labels(self.cluster, kind).inc()

    def relisted(self, kind: str, cause: str) -> None:
        OWNER_CACHE_RELISTS.labels(self.cluster, kind, cause).inc()

    def failed(self, kind: str, cause: str) -> None:
        OWNER_CACHE_ERRORS.labels(self.cluster, kind, cause).inc()

    def resolved(self, outcome: str) -> None:
        OWNER_RESOLUTIONS.labels(self.cluster, outcome).inc()


class ScopeMetrics:
    """The `WatchObserver` of one watch scope, and the sink's delivery observer for its records.
    Every watch of a cluster, started from the cluster file or on a reload, is observed by one, so
    its creation is where the cluster's counters start at 0."""

    def __init__(self, cluster: str, scope: str) -> None:
        count_from_zero(cluster)
        self.cluster = cluster
        self.scope = scope
        self._lock = threading.Lock()
        self.last_contact: float | None = None
        self.last_bookmark: float | None = None
        self.newest_event_time: float | None = None

    def received(self, watch_type: str) -> None:
        EVENTS_RECEIVED.labels(self.cluster, watch_type).inc()
        if watch_type == "BOOKMARK":
            self.last_bookmark = time.time()

    def observed(self, event: dict[str, Any]) -> None:
        stamp = _event_time(event)
        if stamp is not None:
            with self._lock:
                if self.newest_event_time is None or stamp > self.newest_event_time:
                    self.newest_event_time = stamp

    def dropped(self, reason: str) -> None:
        EVENTS_DROPPED.labels(self.cluster, reason).inc()

    def set_aside(self, reason: str) -> None:
        EVENTS_SET_ASIDE.labels(self.cluster, reason).inc()

    def shortened(self) -> None:
        MESSAGES_SHORTENED.labels(self.cluster).inc()

    def restarted(self, cause: str) -> None:
        WATCH_RESTARTS.labels(self.cluster, cause).inc()

    def relisted(self, cause: str) -> None:
        RELISTS.labels(self.cluster, cause).inc()

    def contacted(self) -> None:
        self.last_contact = time.time()


def delivered(record: RawRecord, latency_s: float, error: str | None) -> None:
    """The sink's delivery observer: counts acknowledged and failed records per cluster."""
    if error is None:
        EVENTS_PUBLISHED.labels(record.cluster, record.watch_type.value).inc()
        DELIVERY_LATENCY.labels(record.cluster).observe(latency_s)
    else:
        PUBLISH_ERRORS.labels(record.cluster, error).inc()


class LagCollector(Collector):
    """Scrape-time lags of every live scope."""

    def __init__(self) -> None:
        self._scopes: dict[tuple[str, str], ScopeMetrics] = {}
        self._lock = threading.Lock()

    def add(self, metrics: ScopeMetrics) -> None:
        with self._lock:
            self._scopes[(metrics.cluster, metrics.scope)] = metrics

    def remove(self, metrics: ScopeMetrics) -> None:
        with self._lock:
            self._scopes.pop((metrics.cluster, metrics.scope), None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = time.time()
        families = {
            "contact": GaugeMetricFamily(
                "herald_collector_seconds_since_contact",
                "Seconds since the last successful answer from the API server (a quiet watch "
                "hears nothing until the server ends it at HERALD_WATCH_TIMEOUT_S).",
                labels=["cluster", "scope"],
            ),
            "bookmark": GaugeMetricFamily(
                "herald_collector_bookmark_lag_seconds",
                "Seconds since the last watch bookmark.",
                labels=["cluster", "scope"],
            ),
            "event": GaugeMetricFamily(
                "herald_collector_event_lag_seconds",
                "Now minus the time of the newest Event published.",
                labels=["cluster", "scope"],
            ),
            "last_contact": GaugeMetricFamily(
                "herald_collector_last_contact_timestamp_seconds",
                "Unix time of the last successful answer from the API server; 0 while the scope has"
                " not been reached since the collector started (a wrong kubeconfig, a cluster"
                " unreachable from the start).",
                labels=["cluster", "scope"],
            ),
        }
        with self._lock:
            scopes = list(self._scopes.values())
        for m in scopes:
            labels = [m.cluster, m.scope]
            for name, stamp in (
                ("contact", m.last_contact),
                ("bookmark", m.last_bookmark),
                ("event", m.newest_event_time),
            ):
                if stamp is not None:
                    families[name].add_metric(labels, max(0.0, now - stamp))
            families["last_contact"].add_metric(labels, m.last_contact or 0.0)
        yield from families.values()


LAGS = LagCollector()
REGISTRY.register(LAGS)


def _event_time(event: dict[str, Any]) -> float | None:
    """The Event's own time (`herald_contracts.view_event`: the same for both APIs that write
    Events, and the time the processors give its domain event), in Unix seconds; None if it has none."""
    observed = view_event(event).observed_at
    return parse_time(observed, field="observed_at").timestamp() if observed else None
