"""The shipped pod templates against the real API server's Pod Security admission: every pod of
`deploy/kubernetes/` is admitted into a namespace that enforces the `restricted` profile (the one
clusters that take security seriously run, and what the Pod Security Standards recommend for
applications). Admission is the API server's own (`PodSecurity`, on by default), not a check of
ours: a pod it refuses comes back 403 with the rules it violates."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from herald_dev.realkube import RealKube

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
WORKLOADS = ("Deployment", "StatefulSet", "Job", "DaemonSet", "CronJob")


def _pod_templates() -> list[tuple[str, dict[str, Any]]]:
    templates = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") in WORKLOADS:
                name = f"{path.name}:{document['kind']}/{document['metadata']['name']}"
                templates.append((name, document["spec"]["template"]))
    return templates


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
    return name


def test_the_manifests_have_pod_templates_to_check() -> None:
    assert len(TEMPLATES) >= 4, TEMPLATES  # collectors, processors, dispatchers, the migration


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
    if where.startswith("collectors.yaml"):
        assert spec.get("automountServiceAccountToken", True) is not False
        assert spec.get("serviceAccountName") == "herald-collector"
    else:
        assert spec.get("automountServiceAccountToken") is False, where


def test_the_collectors_role_only_lists_and_watches() -> None:
    documents = list(yaml.safe_load_all((DEPLOY / "collectors.yaml").read_text()))
    [role] = [d for d in documents if d and d["kind"] == "ClusterRole"]
    assert {verb for rule in role["rules"] for verb in rule["verbs"]} == {"list", "watch"}
