"""Counters start at 0 for every label value known in advance; a gauge of coming-and-going label
values keeps only the current ones."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from herald_runtime.metrics import replace_series, start_at_zero


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(sample.labels.values()): sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == name
    }


def test_every_combination_of_known_label_values_has_a_zero_sample() -> None:
    registry = CollectorRegistry()
    relists = Counter("relists", "", ["cluster", "cause"], registry=registry)
    relists.labels("prod", "expired").inc()
    start_at_zero(relists, cluster=["prod", "staging"], cause=("start", "expired"))
    assert _samples(registry, "relists_total") == {
        ("prod", "start"): 0,
        ("prod", "expired"): 1,  # kept, not reset
        ("staging", "start"): 0,
        ("staging", "expired"): 0,
    }


def test_replaced_series_keep_only_the_label_values_given() -> None:
    registry = CollectorRegistry()
    lag = Gauge("lag", "", ["partition"], registry=registry)
    replace_series(lag, {str(p): 10.0 * p for p in range(6)})
    replace_series(lag, {"1": 3.0, "4": 0.0})  # a rebalance took the others away
    assert _samples(registry, "lag") == {("1",): 3.0, ("4",): 0.0}
    replace_series(lag, {})
    assert _samples(registry, "lag") == {}
