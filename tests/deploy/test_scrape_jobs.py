"""The jobs Prometheus scrapes Herald's pods as, and that the scrape alerts match: exactly
herald-collector, herald-processor and herald-dispatcher whatever the Helm release is called (its
Services' names are cut to 63 characters), through the chart's ServiceMonitor or through the
runbook's relabelling of pods scraped by annotation; never through both at once (each pod would be
scraped twice, under two jobs). The relabellings are applied here as Prometheus applies them, to the
labels of the objects the chart renders."""

from __future__ import annotations

import re
from typing import Any

import yaml

from herald_dev.helm import CHART, default_objects, render, the_one

SERVICES = ("collector", "processor", "dispatcher")

LONG_RELEASE = "payments-platform-eu-west-1-production-release-blue-1"
"""53 characters, Helm's longest release name: the Services' names are cut to 63 (`...-herald-co`)."""
RUNBOOK = CHART.parents[2] / "docs" / "runbook.md"
ALERTS = CHART / "files" / "herald-alerts.yaml"


def _meta_name(label: str) -> str:
    """A Kubernetes label as Prometheus' service discovery names it (`app.kubernetes.io/name` ->
    `app_kubernetes_io_name`)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def _relabel(rules: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, str]:
    """Prometheus' `replace` relabelling (the only action the chart and the runbook use), for rules
    written as a scrape config's `relabel_configs` or a ServiceMonitor's `relabelings`."""
    labels = dict(labels)
    for rule in rules:
        assert rule.get("action", "replace") == "replace", rule
        sources = rule.get("source_labels", rule.get("sourceLabels", []))
        value = rule.get("separator", ";").join(labels.get(name, "") for name in sources)
        match = re.fullmatch(rule.get("regex", "(.*)"), value)  # Prometheus anchors its regex
        if match is None:
            continue
        replacement = re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", rule.get("replacement", "$1"))
        labels[rule.get("target_label", rule.get("targetLabel"))] = match.expand(replacement)
    return labels


def _scrape_job_matchers() -> dict[str, str]:
    """Each scrape alert's `job` matcher as a full-match regular expression."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    matchers = {}
    for rule in (r for g in groups for r in g["rules"]):
        found = re.search(r'\bup\{job(=~?)"([^"]*)"\}', rule["expr"])
        if found:
            matchers[rule["alert"]] = (
                found.group(2) if found.group(1) == "=~" else re.escape(found.group(2))
            )
    assert set(matchers) == {
        "HeraldTargetDown",
        "HeraldCollectorsAbsent",
        "HeraldProcessorsAbsent",
        "HeraldDispatchersAbsent",
    }
    return matchers


def _the_rules_take(job: str, service: str) -> None:
    matchers = _scrape_job_matchers()
    assert re.fullmatch(matchers["HeraldTargetDown"], job), job
    absent = f"Herald{service.capitalize()}sAbsent"
    for alert, matcher in matchers.items():
        if alert != "HeraldTargetDown":
            assert bool(re.fullmatch(matcher, job)) == (alert == absent), (alert, job)


def test_the_pods_carry_scrape_annotations_only_without_the_servicemonitor() -> None:
    """Annotations and a ServiceMonitor together scrape each pod twice, under two jobs."""
    defaults = default_objects()
    monitored = render(set_values=["metrics.serviceMonitor.enabled=true"])
    for service in SERVICES:
        with_annotations = the_one(defaults, "Deployment", service)["spec"]["template"]
        annotations = with_annotations["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        port = the_one(defaults, "Service", service)["spec"]["ports"][0]["port"]
        assert annotations["prometheus.io/port"] == str(port)
        metadata = the_one(monitored, "Deployment", service)["spec"]["template"]["metadata"]
        assert not {a for a in metadata.get("annotations") or {} if a.startswith("prometheus.io/")}


def test_the_servicemonitor_gives_every_release_the_jobs_the_rules_match() -> None:
    objects = render(set_values=["metrics.serviceMonitor.enabled=true"], release=LONG_RELEASE)
    [endpoint] = the_one(objects, "ServiceMonitor")["spec"]["endpoints"]
    for service in SERVICES:
        rendered = the_one(objects, "Service", service)
        assert not rendered["metadata"]["name"].endswith(service)  # cut short: not the job
        meta = {
            f"__meta_kubernetes_service_label_{_meta_name(k)}": v
            for k, v in rendered["metadata"]["labels"].items()
        }
        default_job = {"job": rendered["metadata"]["name"]}  # what the operator sets first
        relabelled = _relabel(endpoint["relabelings"], meta | default_job)
        assert relabelled["job"] == f"herald-{service}"
        assert relabelled["release"] == LONG_RELEASE  # what tells releases in one namespace apart
        _the_rules_take(relabelled["job"], service)


def _runbook_relabel_configs() -> list[dict[str, Any]]:
    section = RUNBOOK.read_text().split("## Scrape jobs", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    configs: list[dict[str, Any]] = yaml.safe_load(block)["relabel_configs"]
    return configs


def test_the_runbooks_relabelling_gives_the_annotated_pods_the_jobs_the_rules_match() -> None:
    objects = render(release=LONG_RELEASE, namespace="payments")
    for service in SERVICES:
        template = the_one(objects, "Deployment", service)["spec"]["template"]
        assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        meta = {
            f"__meta_kubernetes_pod_label_{_meta_name(k)}": v
            for k, v in template["metadata"]["labels"].items()
        }
        meta |= {"__meta_kubernetes_namespace": "payments", "job": "kubernetes-pods"}
        relabelled = _relabel(_runbook_relabel_configs(), meta)
        assert relabelled["job"] == f"herald-{service}"
        assert relabelled["release"] == LONG_RELEASE
        assert relabelled["namespace"] == "payments"
        _the_rules_take(relabelled["job"], service)
    other = {
        "__meta_kubernetes_pod_label_app_kubernetes_io_component": "collector",
        "__meta_kubernetes_pod_label_app_kubernetes_io_instance": "someone-else",
        "job": "kubernetes-pods",
    }
    relabelled = _relabel(_runbook_relabel_configs(), other)  # not part of Herald: left alone
    assert relabelled["job"] == "kubernetes-pods"
    assert "release" not in relabelled
