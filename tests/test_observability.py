"""The Grafana dashboard and the Prometheus alert rules in deploy/ ask only for metrics and labels
the services export (or, for the scrape alerts, Prometheus' own `up`), and the dashboard shows every
metric. tests/test_alerts.py runs the rules in promtool; tests/test_dashboard_lint.py lints the
dashboard."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

import collectors.metrics
import dispatchers.metrics
import processors.app
from collectors.settings import CollectorSettings

SERVICES_METRICS = (collectors.metrics, processors.app, dispatchers.metrics)  # imported: registered

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "helm" / "herald" / "files" / "herald-dashboard.json"
ALERTS = ROOT / "deploy" / "helm" / "herald" / "files" / "herald-alerts.yaml"
METRIC = re.compile(r"\bherald_[a-z_]+\b")
SELECTOR = re.compile(r"\b(herald_[a-z_]+)\{([^}]*)\}")
BY = re.compile(r"\bby \(([^)]*)\)")
LEGEND_LABEL = re.compile(r"\{\{\s*\$?(?:labels\.)?(\w+)\s*\}\}")
SCRAPE = re.compile(r"\bup\{([^}]*)\}")
TARGET_LABELS = {"job", "instance"}
"""The labels every scraped target has (Prometheus sets them); `up` has only those and what the
scrape configuration adds."""
FILTERED_TARGET_LABELS = TARGET_LABELS | {"namespace", "release"}
"""Labels of the scrape, not of the services, that queries may filter and group by (the alerts judge
each release and each scrape job apart): a ServiceMonitor or the usual pod relabelling adds
`namespace`, and the chart's ServiceMonitor and the runbook's relabelling `release`
(docs/runbook.md#scrape-jobs-which-job-the-rules-assume)."""


@cache
def _exported() -> dict[str, set[str]]:
    """Every sample name the services export, with its label names."""
    exported: dict[str, set[str]] = {}
    for collector in list(REGISTRY._collector_to_names):
        families = collector.describe() if isinstance(collector, MetricWrapperBase) else []
        families = families or list(collector.collect())
        for family in families:
            if not family.name.startswith("herald_"):
                continue
            labels = set(
                getattr(collector, "_labelnames", ()) or getattr(family, "_labelnames", ())
            )
            suffixes = {
                "counter": ("_total",),
                "histogram": ("_bucket", "_sum", "_count"),
                "gauge": ("",),
            }[family.type]
            for suffix in suffixes:
                exported[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return exported


def _dashboard_targets() -> list[dict[str, Any]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t for p in panels for t in p.get("targets", [])]


def _alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [r for g in groups for r in g["rules"]]


def _check_expression(expr: str) -> set[str]:
    """Assert the metrics and labels exist; return the labels the result is grouped by."""
    exported = _exported()
    used = set(METRIC.findall(expr))
    scraped = SCRAPE.findall(expr)
    assert used or scraped, expr
    for matchers in scraped:
        assert re.fullmatch(r'job=~?"herald-[^"]+"', matchers.strip()), (
            f"Herald's jobs only: {expr}"
        )
    for name in used:
        assert name in exported, f"{name} is not exported (in {expr})"
    for name, matchers in SELECTOR.findall(expr):
        for matcher in filter(None, (m.strip() for m in matchers.split(","))):
            label = re.split(r"[=!~]", matcher, maxsplit=1)[0].strip()
            assert label in exported[name] | FILTERED_TARGET_LABELS, f"{name} has no {label!r}"
    grouped: set[str] = set()
    for clause in BY.findall(expr):
        labels = {label.strip() for label in clause.split(",")}
        for label in labels:
            assert label in FILTERED_TARGET_LABELS or any(label in exported[n] for n in used), (
                f"no metric has {label!r} in {expr}"
            )
        grouped |= labels
    if scraped and not BY.findall(expr) and "absent(" not in expr:
        grouped |= TARGET_LABELS  # `up == 0` keeps the target's labels
    return grouped


@pytest.mark.parametrize("target", _dashboard_targets(), ids=lambda t: t["expr"][:60])
def test_each_dashboard_query_asks_for_exported_metrics_and_labels(target: dict[str, Any]) -> None:
    grouped = _check_expression(target["expr"])
    for label in LEGEND_LABEL.findall(target.get("legendFormat", "")):
        assert label in grouped, f"the legend shows {label!r}, not grouped by in {target['expr']}"


def test_the_dashboard_shows_every_exported_metric() -> None:
    shown = {m for t in _dashboard_targets() for m in METRIC.findall(t["expr"])}
    families = {re.sub(r"(_bucket|_sum|_count)$", "", name) for name in shown}
    missing = {
        name
        for name in _exported()
        if name not in shown and re.sub(r"(_bucket|_sum|_count)$", "", name) not in families
    }
    assert not missing


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: r["alert"])
def test_each_alert_asks_for_exported_metrics_and_says_what_to_do(rule: dict[str, Any]) -> None:
    grouped = _check_expression(rule["expr"])
    assert rule["labels"]["severity"] in ("critical", "warning", "info")
    assert rule["annotations"]["summary"]
    assert rule["annotations"]["description"]
    for text in rule["annotations"].values():
        for label in re.findall(r"\$labels\.(\w+)", text):
            assert label in grouped, f"{rule['alert']} shows {label!r}, not grouped by"


def _seconds(duration: str) -> float:
    value, unit = re.fullmatch(r"(\d+)([smh])", duration).groups()  # type: ignore[union-attr]
    return float(value) * {"s": 1, "m": 60, "h": 3600}[unit]


def test_no_collector_alert_fires_on_what_a_healthy_quiet_cluster_does() -> None:
    """A real API server sends nothing on a quiet watch of Events until its timeout ends it (the
    collector then hears from it again), and answers 403 for a moment after it restarts."""
    rules = {r["alert"]: r for r in _alert_rules()}
    for rule in rules.values():
        assert "forbidden_while_starting" not in rule["expr"], rule["alert"]
        assert "herald_collector_watch_restarts_total" not in rule["expr"], rule["alert"]
        if "herald_collector_relists_total" in rule["expr"]:
            assert 'cause="expired"' in rule["expr"], rule["alert"]
    unreachable = rules["HeraldClusterUnreachable"]
    threshold = re.search(
        r"herald_collector_seconds_since_contact\)\s*>\s*(\d+)", unreachable["expr"]
    )
    assert threshold is not None
    silent_for = CollectorSettings(kafka_bootstrap="k:1").watch_read_timeout_s
    assert float(threshold.group(1)) + _seconds(unreachable["for"]) > silent_for


@pytest.mark.parametrize(
    ("metric", "label", "values"),
    [
        (
            "herald_dispatcher_dead_letters_total",
            "kind",
            {"undecodable", "undeliverable", "refused_by_database"},
        ),
        ("herald_dispatcher_deliveries_total", "outcome", {"delivered", "failed", "gone"}),
        ("herald_dispatcher_attempts_total", "status_class", {"2xx", "3xx", "4xx", "5xx", "error"}),
        (
            "herald_processor_records_total",
            "outcome",
            {"interpreted", "duplicate", "suppressed", "ignored", "dead_lettered"},
        ),
    ],
)
def test_counters_of_known_labels_have_a_series_from_the_start(
    metric: str, label: str, values: set[str]
) -> None:
    """Without a 0 sample from the start, `increase()` never sees the first increment after a
    restart: the first dead letter or `gone` delivery would never alert (issue 13)."""
    from prometheus_client import REGISTRY

    import dispatchers.metrics  # noqa: F401 - the services import them at start
    import processors.app  # noqa: F401

    seen = {
        sample.labels.get(label)
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == metric
    }
    assert values <= seen
