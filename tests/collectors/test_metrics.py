"""The collector's metrics: each Event's own time comes from the contract's Event view
(`herald_contracts.view_event`), as the processors take it for the domain event's time; a cluster
whose watch is set up has its counters at 0 and its (lack of) contact visible before any answer."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

from prometheus_client import REGISTRY

from collectors import metrics
from collectors.config import ClusterSpec
from collectors.errors import SettingsError
from collectors.metrics import ScopeMetrics
from collectors.supervisor import Supervisor, WatchSettings
from herald_runtime.backoff import Backoff
from tests.collectors.test_watching import Collected
from tests.support import rollout_event


def test_an_event_without_times_is_timed_by_its_creation_as_the_event_view_says() -> None:
    metrics = ScopeMetrics("c", "*")
    metrics.observed({**rollout_event("X", "y"), "firstTimestamp": None, "lastTimestamp": None})
    assert metrics.newest_event_time == 1787217267.0  # metadata.creationTimestamp


def _sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


class _NoStore:
    def save(self, scope: str, checkpoint: object) -> None:
        raise AssertionError("nothing to save: the cluster is never reached")


def test_a_cluster_never_reached_is_visible_with_its_counters_at_zero() -> None:
    """A wrong kubeconfig: the watch never gets an answer, so there is no seconds-since-contact
    sample to alert on; the last-contact time is there at 0, and the first expired relist or
    set-aside Event would be seen by `increase()` (issue 13)."""
    tried = threading.Event()

    def connect(spec: ClusterSpec, namespace: str | None) -> object:
        tried.set()
        raise SettingsError(f"kubeconfig {spec.kubeconfig}: no such file")

    supervisor = Supervisor(
        connect=connect,  # type: ignore[arg-type]
        sink=Collected(),
        store=_NoStore(),  # type: ignore[arg-type]
        checkpoints={},
        now=lambda: "2026-01-01T00:00:00Z",
        watch=WatchSettings(backoff=Backoff(base_s=0.05, cap_s=0.05)),
    )
    spec = ClusterSpec(name="wrong-kubeconfig", kubeconfig=Path("/nonexistent"), namespaces=())
    try:
        supervisor.apply((spec,))
        assert tried.wait(10)
        never = {"cluster": "wrong-kubeconfig", "scope": "*"}
        assert _sample("herald_collector_last_contact_timestamp_seconds", **never) == 0
        assert _sample("herald_collector_seconds_since_contact", **never) is None
        for name, label, value in [
            ("herald_collector_relists_total", "cause", "expired"),
            ("herald_collector_events_set_aside_total", "reason", "too_large"),
            ("herald_collector_events_set_aside_total", "reason", "not_an_event"),
        ]:
            assert _sample(name, cluster="wrong-kubeconfig", **{label: value}) == 0, (name, value)
    finally:
        supervisor.stop()


def _literal_arguments(method: str) -> set[str]:
    """The string literals the collector's code passes to an observer method, or as `reason=`."""
    found: set[str] = set()
    for path in Path(metrics.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            if isinstance(node.func, ast.Attribute) and node.func.attr == method:
                args = node.args[-1:]  # the owner caches pass the kind first
            else:
                args = [k.value for k in node.keywords if k.arg == method]
            found |= {a.value for a in args if isinstance(a, ast.Constant)}
    return found


def test_the_label_values_started_at_zero_are_all_those_the_collector_uses() -> None:
    assert _literal_arguments("relisted") == set(metrics.RELIST_CAUSES)
    assert _literal_arguments("dropped") == set(metrics.DROP_REASONS)
    assert _literal_arguments("set_aside") | _literal_arguments("reason") == set(
        metrics.SET_ASIDE_REASONS
    )
