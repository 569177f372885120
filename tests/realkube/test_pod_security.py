"""The chart's pod templates against the real API server's Pod Security admission: every pod that
`helm template` renders from `deploy/helm/herald` (its Deployments and hook Jobs, with the default
values and with every option on, `ci/everything-values.yaml`) is admitted into a namespace that enforces the `restricted` profile (the one clusters that take
security seriously run, and what the Pod Security Standards recommend for applications). Admission
is the API server's own (`PodSecurity`, on by default), not a check of ours: a pod it refuses comes
back 403 with the rules it violates."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubernetes import client

from herald_dev.helm import CHART, component, default_objects, render, the_one
from herald_dev.realkube import RealKube

WORKLOADS = ("Deployment", "StatefulSet", "Job", "DaemonSet", "CronJob")


def _pod_templates() -> list[tuple[str, dict[str, Any]]]:
    everything = render(values_files=[CHART / "ci" / "everything-values.yaml"])
    # Every option on makes the topics with Strimzi, so without the topics Job: its pod is checked
    # with the rest of those options and the Job instead.
    with_job = render(
        values_files=[CHART / "ci" / "everything-values.yaml"],
        set_values=["topics.strimzi.enabled=false", "topics.job.enabled=true"],
    )
    return [
        (f"{values}:{d['kind']}/{d['metadata']['name']}", d["spec"]["template"])
        for values, objects in (
            ("defaults", default_objects()),
            ("everything", everything),
            ("everything-with-the-topics-job", [d for d in with_job if component(d) == "topics"]),
        )
        for d in objects
        if d["kind"] in WORKLOADS
    ]


TEMPLATES = _pod_templates()


@pytest.fixture(scope="module")
def restricted(real_kube: RealKube) -> str:
    """A namespace that enforces the restricted Pod Security profile, latest version."""
    name = f"restricted-{uuid.uuid4().hex[:8]}"
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    with real_kube.admin() as api:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": name, "labels": labels}})
        try:  # the priority class ci/everything-values.yaml names: admission refuses an unknown one
            client.SchedulingV1Api(api).create_priority_class(
                {"metadata": {"name": "herald"}, "value": 1000}
            )
        except client.ApiException as e:
            if e.status != 409:
                raise
    return name


def test_the_chart_has_pod_templates_to_check() -> None:
    # collectors, processors, dispatchers, the migration and the topics Jobs, for each values set
    # (the topics Job of every-option-on rendered with the Job instead of Strimzi)
    assert len(TEMPLATES) == 10, TEMPLATES
    assert sum(where.endswith("topics") for where, _ in TEMPLATES) == 2, TEMPLATES


@pytest.mark.parametrize(("where", "template"), TEMPLATES, ids=[t[0] for t in TEMPLATES])
def test_every_pod_template_is_admitted_under_the_restricted_pod_security_profile(
    real_kube: RealKube, restricted: str, where: str, template: dict[str, Any]
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"p-{uuid.uuid4().hex[:8]}",
            "labels": template.get("metadata", {}).get("labels", {}),
        },
        "spec": template["spec"],
    }
    with real_kube.admin() as api:
        try:
            client.CoreV1Api(api).create_namespaced_pod(restricted, pod, dry_run="All")
        except client.ApiException as e:
            pytest.fail(f"{where}: refused by the API server ({e.status}): {e.body}")


@pytest.mark.parametrize(("where", "template"), TEMPLATES, ids=[t[0] for t in TEMPLATES])
def test_only_the_collector_mounts_an_api_token(where: str, template: dict[str, Any]) -> None:
    """Only the collector talks to an API server; a token mounted elsewhere is only a risk."""
    spec = template["spec"]
    if ":Deployment/" in where and component(template) == "collector":
        assert spec.get("automountServiceAccountToken", True) is not False
        assert spec.get("serviceAccountName") == "herald-collector"
    else:
        assert spec.get("automountServiceAccountToken") is False, where


def test_the_collectors_role_only_lists_and_watches() -> None:
    role = the_one(default_objects(), "ClusterRole", "collector")
    assert {verb for rule in role["rules"] for verb in rule["verbs"]} == {"list", "watch"}
