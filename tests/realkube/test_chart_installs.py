"""The chart against a real kube-apiserver: `helm install` (hooks left out: no controllers run in
the tier, so a hook Job would never complete) and `helm upgrade` succeed, and every object it
renders, the hook Jobs included, is accepted by the server's own validation with unknown fields
refused (server-side dry run, `fieldValidation=Strict`). The Prometheus Operator's and Strimzi's
kinds are left out: their CRDs are not installed here (tests/deploy checks them)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.dynamic.exceptions import DynamicApiError

from herald_dev.helm import CHART, helm, render
from herald_dev.realkube import ADMIN_TOKEN, RealKube

WITHOUT_CRDS = [
    "metrics.serviceMonitor.enabled=false",
    "metrics.prometheusRule.enabled=false",
    "topics.strimzi.enabled=false",
    "topics.job.enabled=true",  # what makes the topics without Strimzi
]
VALUES = {
    "defaults": ([], []),
    "everything": ([CHART / "ci" / "everything-values.yaml"], WITHOUT_CRDS),
}


@pytest.fixture(scope="module")
def admin_kubeconfig(real_kube: RealKube, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chart") / "admin.kubeconfig"
    real_kube.kubeconfig(path, token=ADMIN_TOKEN, user="admin")
    with real_kube.admin() as api:
        try:  # the priority class ci/everything-values.yaml names
            client.SchedulingV1Api(api).create_priority_class(
                {"metadata": {"name": "herald"}, "value": 1000}
            )
        except client.ApiException as e:
            if e.status != 409:
                raise
    return path


@pytest.fixture
def release() -> tuple[str, str]:
    """A release name and namespace of their own (the tier's server already holds the collector's
    RBAC under the default names)."""
    suffix = uuid.uuid4().hex[:6]
    return f"h{suffix}", f"chart-{suffix}"


def _values_args(name: str) -> list[str]:
    files, assignments = VALUES[name]
    args = [arg for path in files for arg in ("--values", str(path))]
    return args + [arg for assignment in assignments for arg in ("--set", assignment)]


@pytest.mark.parametrize("values", list(VALUES))
def test_the_chart_installs_upgrades_and_uninstalls_on_a_real_api_server(
    real_kube: RealKube, admin_kubeconfig: Path, release: tuple[str, str], values: str
) -> None:
    name, namespace = release
    common = ["--kubeconfig", str(admin_kubeconfig), "--namespace", namespace]
    installed = helm(
        "install", name, str(CHART), "--create-namespace", "--no-hooks", *common,
        *_values_args(values),
    )  # fmt: skip
    try:
        assert installed.returncode == 0, installed.stderr
        assert "Herald 0.1.0 is installed" in installed.stdout  # NOTES.txt rendered
        upgraded = helm(
            "upgrade", name, str(CHART), "--no-hooks", *common, *_values_args(values),
            "--set", "image.tag=0.1.1",
        )  # fmt: skip
        assert upgraded.returncode == 0, upgraded.stderr
        manifest = helm("get", "manifest", name, *common)
        assert "herald:0.1.1" in manifest.stdout
        assert "herald:0.1.0" not in manifest.stdout
    finally:
        # Its ClusterRole and binding would otherwise stay on the tier's shared server, beside
        # the collector's own (tests elsewhere find that binding by name).
        uninstalled = helm("uninstall", name, "--no-hooks", *common)
    assert uninstalled.returncode == 0, uninstalled.stderr
    with real_kube.admin() as api:
        left = client.RbacAuthorizationV1Api(api).list_cluster_role_binding().items
    assert not [b for b in left if b.metadata.name.startswith(f"{name}-")]


@pytest.mark.parametrize("values", list(VALUES))
def test_every_rendered_object_passes_the_servers_strict_validation(
    real_kube: RealKube, release: tuple[str, str], values: str
) -> None:
    name, namespace = release
    files, assignments = VALUES[values]
    objects = render(values_files=files, set_values=assignments, release=name, namespace=namespace)
    with real_kube.admin() as api:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
        server = dynamic.DynamicClient(api)
        for document in objects:
            kind = server.resources.get(api_version=document["apiVersion"], kind=document["kind"])
            where = f"{document['kind']}/{document['metadata']['name']}"
            try:  # create() drops fieldValidation: the request as `kubectl create --dry-run=server`
                server.request(
                    "post",
                    kind.path(namespace=document["metadata"].get("namespace")),
                    body=document,
                    query_params=[("dryRun", "All"), ("fieldValidation", "Strict")],
                )
            except DynamicApiError as e:
                pytest.fail(f"{where}: refused by the API server ({e.status}): {e.body}")


def _kinds(objects: list[dict[str, Any]]) -> set[str]:
    return {d["kind"] for d in objects}


def test_the_strict_validation_covers_every_built_in_kind_the_chart_renders() -> None:
    files, assignments = VALUES["everything"]
    assert _kinds(render(values_files=files, set_values=assignments)) == {
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "Job",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    }
