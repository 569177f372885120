"""Every message format of the Flux pack, by the releases that emit it: one row each, the test id
naming the releases. Formats read from the emitting code of kustomize-controller v1.4.0-v1.9.4 and
helm-controller v1.1.0-v1.6.3 (Flux 2.4-2.9); the Events are shaped as fluxcd/pkg's recorder writes
them through client-go (docs/catalogue.md, "Flux", has the table with sources)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from herald_contracts import SCHEMA_BASE_URI, RawRecord, WatchType, encode_domain_event
from processors.interpreting import Outcome, interpret
from processors.packs import builtin_catalogue, load_catalogue
from tests.support import validate

FLUX = load_catalogue(builtin=("argo-rollouts", "argo-cd", "flux"))

SHA = "4e1d9c2b7a6f5e4d3c2b1a09f8e7d6c5b4a39281"
DIGEST = "sha256:9f2b6e0c1a3d4b5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6"
VALUES = "sha256:1c4e2ab7f5d93a0e6b8c7d2f1a0b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29"
KS = "kustomize.toolkit.fluxcd.io"
HR = "helm.toolkit.fluxcd.io"

KUSTOMIZATION = {
    "kind": "Kustomization",
    "namespace": "flux-system",
    "name": "apps",
    "uid": "5b0c9e4e-4a8e-4d7e-9a3c-0f1e2d3c4b5a",
    "apiVersion": f"{KS}/v1",
    "resourceVersion": "90112",
}
HELMRELEASE = {
    "kind": "HelmRelease",
    "namespace": "podinfo",
    "name": "podinfo",
    "uid": "0e7d1c2b-3a49-4c58-8d6e-7f8091a2b3c4",
    "apiVersion": f"{HR}/v2",
    "resourceVersion": "77031",
}
KS_REVISION = {f"{KS}/revision": f"main@sha1:{SHA}"}
KS_SUCCESS = {**KS_REVISION, f"{KS}/commit_status": "update"}
HR_META = {
    f"{HR}/revision": "6.7.1",
    f"{HR}/token": VALUES,
    f"{HR}/app-version": "6.7.1",
}
HR_OCI = {**HR_META, f"{HR}/oci-digest": DIGEST}


def flux_event(
    involved: dict[str, Any],
    reason: str,
    message: str,
    *,
    event_type: str = "Normal",
    annotations: dict[str, str] | None = None,
    component: str | None = None,
) -> dict[str, Any]:
    """A core/v1 Event as fluxcd/pkg runtime/events Recorder writes it through controller-runtime's
    `GetEventRecorderFor(controllerName)` (client-go tools/record): `source.component` and
    `reportingComponent` the controller, no host, the object's namespace, the controller's metadata
    as annotations (none for a plain `Eventf`), `count` from the correlator."""
    controller = component or (
        "kustomize-controller" if involved["kind"] == "Kustomization" else "helm-controller"
    )
    metadata: dict[str, Any] = {
        "name": f"{involved['name']}.{uuid.uuid4().int & 0xFFFFFFFFFFFFFFFF:x}",
        "namespace": involved["namespace"],
        "uid": str(uuid.uuid4()),
        "resourceVersion": "1",
        "creationTimestamp": "2026-11-30T08:14:27Z",
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": metadata,
        "involvedObject": dict(involved),
        "reason": reason,
        "message": message,
        "source": {"component": controller},
        "firstTimestamp": "2026-11-30T08:14:27Z",
        "lastTimestamp": "2026-11-30T08:14:27Z",
        "count": 1,
        "type": event_type,
        "eventTime": None,
        "reportingComponent": controller,
        "reportingInstance": "",
    }


def run(event: dict[str, Any], *, catalogue: Any = FLUX) -> Outcome:
    record = RawRecord(
        cluster="prod-eu",
        watch_type=WatchType.ADDED,
        collected_at="2026-11-30T08:14:28Z",
        object=event,
    )
    return interpret(record, last_n=None, catalogue=catalogue)


def only(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    [domain_event] = run(event).events
    validate("deploy-event.v1.schema.json", json.loads(encode_domain_event(domain_event)))
    validate(domain_event.dataschema.removeprefix(SCHEMA_BASE_URI), domain_event.data)
    return domain_event.type.removeprefix("dev.herald."), domain_event.data


# (releases, involved object, reason, Event type, message, annotations, type, the fields that must be so)
Row = tuple[str, dict[str, Any], str, str, str, dict[str, str], str, dict[str, Any]]
ROWS: list[Row] = [
    # --- kustomize-controller: Reconcile's deferred success event ---
    (
        "kc1.5-1.9",
        KUSTOMIZATION,
        "ReconciliationSucceeded",
        "Normal",
        "Reconciliation finished in 1.287436519s, next run in 10m0s",
        KS_SUCCESS,
        "kustomization_reconciled",
        {
            "revision": f"main@sha1:{SHA}",
            "origin_revision": None,
            "duration": "1.287436519s",
            "interval": "10m0s",
        },
    ),
    (
        "kc1.5-1.9 OCI source with origin revision",
        KUSTOMIZATION,
        "ReconciliationSucceeded",
        "Normal",
        "Reconciliation finished in 2m3.5s, next run in 1h0m0s",
        {
            f"{KS}/revision": f"v1.2.0@{DIGEST}",
            f"{KS}/originRevision": f"main@sha1:{SHA}",
            f"{KS}/commit_status": "update",
        },
        "kustomization_reconciled",
        {
            "revision": f"v1.2.0@{DIGEST}",
            "origin_revision": f"main@sha1:{SHA}",
            "interval": "1h0m0s",
        },
    ),
    (
        "kc1.4 (no originRevision)",
        KUSTOMIZATION,
        "ReconciliationSucceeded",
        "Normal",
        "Reconciliation finished in 812.4ms, next run in 5m0s",
        KS_SUCCESS,
        "kustomization_reconciled",
        {"duration": "812.4ms", "origin_revision": None},
    ),
    # --- kustomize-controller: the failure event (Warning, the Ready=False reason) ---
    (
        "kc1.4-1.9 health check",
        KUSTOMIZATION,
        "HealthCheckFailed",
        "Warning",
        "health check failed after 5m0.03s: timeout waiting for: [Deployment/podinfo/podinfo status: 'InProgress']",
        KS_REVISION,
        "kustomization_failed",
        {
            "revision": f"main@sha1:{SHA}",
            "detail": "health check failed after 5m0.03s: timeout waiting for: [Deployment/podinfo/podinfo status: 'InProgress']",
        },
    ),
    (
        "kc1.4-1.9 build",
        KUSTOMIZATION,
        "BuildFailed",
        "Warning",
        "kustomize build failed: accumulating resources: accumulation err='accumulating resources from 'missing.yaml': open /tmp/kustomization-1/apps/missing.yaml: no such file or directory'",
        KS_REVISION,
        "kustomization_failed",
        {"revision": f"main@sha1:{SHA}"},
    ),
    (
        "kc1.4-1.9 apply, multi-line",
        KUSTOMIZATION,
        "ReconciliationFailed",
        "Warning",
        'Deployment/podinfo/podinfo dry-run failed: Deployment.apps "podinfo" is invalid: spec.template.spec.containers[0].image: Required value\nService/podinfo/podinfo unchanged',
        KS_REVISION,
        "kustomization_failed",
        {
            "detail": 'Deployment/podinfo/podinfo dry-run failed: Deployment.apps "podinfo" is invalid: spec.template.spec.containers[0].image: Required value\nService/podinfo/podinfo unchanged'
        },
    ),
    (
        "kc1.4-1.9 artifact",
        KUSTOMIZATION,
        "ArtifactFailed",
        "Warning",
        "kustomization path not found: stat /tmp/kustomization-2/clusters/prod: no such file or directory",
        KS_REVISION,
        "kustomization_failed",
        {"revision": f"main@sha1:{SHA}"},
    ),
    (
        "kc1.4-1.9 prune",
        KUSTOMIZATION,
        "PruneFailed",
        "Warning",
        'ConfigMap/podinfo/old delete failed: configmaps "old" is forbidden',
        KS_REVISION,
        "kustomization_failed",
        {},
    ),
    (
        "kc1.4-1.9 tmp dir",
        KUSTOMIZATION,
        "DirectoryCreationFailed",
        "Warning",
        "tmp dir error: mkdir /tmp/kustomization-3: no space left on device",
        KS_REVISION,
        "kustomization_failed",
        {},
    ),
    (
        "kc1.5-1.9 access denied, before any artifact",
        KUSTOMIZATION,
        "AccessDenied",
        "Warning",
        "can't access 'GitRepository/infra/repo', cross-namespace references have been blocked",
        {},
        "kustomization_failed",
        {"revision": None, "origin_revision": None},
    ),
    (
        "kc1.4 access denied, revision 'unknown'",
        KUSTOMIZATION,
        "AccessDenied",
        "Warning",
        "can't access 'GitRepository/infra/repo', cross-namespace references have been blocked",
        {f"{KS}/revision": "unknown"},
        "kustomization_failed",
        {"revision": "unknown"},
    ),
    (
        "kc1.5-1.9 CEL",
        KUSTOMIZATION,
        "InvalidCELExpression",
        "Warning",
        "Reconciliation failed terminally due to configuration error: failed to parse CEL expression 'status.ready ==': Syntax error",
        {},
        "kustomization_failed",
        {"revision": None},
    ),
    (
        "kc1.6-1.9 feature gate",
        KUSTOMIZATION,
        "FeatureGateDisabled",
        "Warning",
        "to use spec.decryption.serviceAccountName for decryption authentication please enable the ObjectLevelWorkloadIdentity feature gate in the controller",
        {},
        "kustomization_failed",
        {},
    ),
    (
        "kc1.4-1.9 finalizer at deletion",
        KUSTOMIZATION,
        "ReconciliationSucceeded",
        "Warning",
        "pruning for deleted resource failed",
        KS_REVISION,
        "kustomization_failed",
        {"detail": "pruning for deleted resource failed", "revision": f"main@sha1:{SHA}"},
    ),
    # --- helm-controller: internal/reconcile success/failure (fmt* strings unchanged 1.1-1.6) ---
    (
        "hc1.1-1.6",
        HELMRELEASE,
        "InstallSucceeded",
        "Normal",
        "Helm install succeeded for release podinfo/podinfo.v1 with chart podinfo@6.7.1",
        HR_META,
        "helmrelease_succeeded",
        {
            "action": "install",
            "remediation": False,
            "release_namespace": "podinfo",
            "release_name": "podinfo",
            "release_version": 1,
            "chart": "podinfo",
            "chart_version": "6.7.1",
            "tests": None,
            "revision": "6.7.1",
            "app_version": "6.7.1",
            "oci_digest": None,
            "config_digest": VALUES,
        },
    ),
    (
        "hc1.1-1.6 OCI chart, dotted release name",
        HELMRELEASE,
        "UpgradeSucceeded",
        "Normal",
        "Helm upgrade succeeded for release apps/web.frontend.v12 with chart web-chart@1.4.0+9f2b6e0c1a3d",
        {**HR_OCI, f"{HR}/revision": "1.4.0+9f2b6e0c1a3d"},
        "helmrelease_succeeded",
        {
            "action": "upgrade",
            "release_namespace": "apps",
            "release_name": "web.frontend",
            "release_version": 12,
            "chart": "web-chart",
            "chart_version": "1.4.0+9f2b6e0c1a3d",
            "revision": "1.4.0+9f2b6e0c1a3d",
            "oci_digest": DIGEST,
        },
    ),
    (
        "hc1.1-1.6",
        HELMRELEASE,
        "InstallFailed",
        "Warning",
        "Helm install failed for release podinfo/podinfo with chart podinfo@6.7.1: context deadline exceeded",
        HR_META,
        "helmrelease_failed",
        {
            "action": "install",
            "remediation": False,
            "release_namespace": "podinfo",
            "release_name": "podinfo",
            "release_version": None,
            "chart": "podinfo",
            "chart_version": "6.7.1",
            "detail": "context deadline exceeded",
            "helm_logs": None,
            "revision": "6.7.1",
        },
    ),
    (
        "hc1.1-1.6 with Helm logs",
        HELMRELEASE,
        "UpgradeFailed",
        "Warning",
        "Helm upgrade failed for release podinfo/podinfo with chart podinfo@6.7.2: resource Deployment/podinfo/podinfo not ready. status: InProgress, message: Available: 0/2\n\nLast Helm logs:\n\nwaiting for 1 resource(s) to become ready\nbeginning wait for 3 resources with timeout of 5m0s",
        {**HR_META, f"{HR}/revision": "6.7.2"},
        "helmrelease_failed",
        {
            "action": "upgrade",
            "chart_version": "6.7.2",
            "detail": "resource Deployment/podinfo/podinfo not ready. status: InProgress, message: Available: 0/2",
            "helm_logs": "waiting for 1 resource(s) to become ready\nbeginning wait for 3 resources with timeout of 5m0s",
            "revision": "6.7.2",
        },
    ),
    (
        "hc1.1-1.6",
        HELMRELEASE,
        "TestSucceeded",
        "Normal",
        "Helm test succeeded for release podinfo/podinfo.v3 with chart podinfo@6.7.1: 2 test hooks completed successfully",
        HR_META,
        "helmrelease_succeeded",
        {"action": "test", "release_version": 3, "tests": "2 test hooks completed successfully"},
    ),
    (
        "hc1.1-1.6 no hooks",
        HELMRELEASE,
        "TestSucceeded",
        "Normal",
        "Helm test succeeded for release podinfo/podinfo.v3 with chart podinfo@6.7.1: no test hooks",
        HR_META,
        "helmrelease_succeeded",
        {"tests": "no test hooks", "chart_version": "6.7.1"},
    ),
    (
        "hc1.1-1.6",
        HELMRELEASE,
        "TestFailed",
        "Warning",
        'Helm test failed for release podinfo/podinfo.v3 with chart podinfo@6.7.1: pod podinfo-grpc-test-x1 failed, pod podinfo-jwt-test-y2 failed: 1 error occurred:\n\t* pod "podinfo-grpc-test-x1" failed',
        HR_META,
        "helmrelease_failed",
        {
            "action": "test",
            "release_version": 3,
            "detail": 'pod podinfo-grpc-test-x1 failed, pod podinfo-jwt-test-y2 failed: 1 error occurred:\n\t* pod "podinfo-grpc-test-x1" failed',
            "helm_logs": None,
        },
    ),
    (
        "hc1.1-1.6",
        HELMRELEASE,
        "RollbackSucceeded",
        "Normal",
        "Helm rollback to previous release podinfo/podinfo.v2 with chart podinfo@6.7.0 succeeded",
        {**HR_META, f"{HR}/revision": "6.7.0"},
        "helmrelease_succeeded",
        {
            "action": "rollback",
            "remediation": True,
            "release_version": 2,
            "chart_version": "6.7.0",
            "revision": "6.7.0",
        },
    ),
    (
        "hc1.1-1.6",
        HELMRELEASE,
        "RollbackFailed",
        "Warning",
        'Helm rollback to previous release podinfo/podinfo.v2 with chart podinfo@6.7.0 failed: no Deployment with the name "podinfo" found',
        HR_META,
        "helmrelease_failed",
        {
            "action": "rollback",
            "remediation": True,
            "release_version": 2,
            "detail": 'no Deployment with the name "podinfo" found',
        },
    ),
    (
        "hc1.1-1.6",
        HELMRELEASE,
        "UninstallSucceeded",
        "Normal",
        "Helm uninstall succeeded for release podinfo/podinfo.v4 with chart podinfo@6.7.1",
        HR_META,
        "helmrelease_succeeded",
        {"action": "uninstall", "remediation": False, "release_version": 4},
    ),
    (
        "hc1.1-1.6 remediation",
        HELMRELEASE,
        "UninstallSucceeded",
        "Normal",
        "Helm uninstall remediation for release podinfo/podinfo.v1 with chart podinfo@6.7.1 succeeded",
        HR_META,
        "helmrelease_succeeded",
        {"action": "uninstall", "remediation": True, "release_version": 1},
    ),
    (
        "hc1.1-1.6",
        HELMRELEASE,
        "UninstallFailed",
        "Warning",
        "Helm uninstall failed for release podinfo/podinfo.v4 with chart podinfo@6.7.1: uninstallation completed with 1 error(s): context deadline exceeded\n\nLast Helm logs:\n\nuninstall: Deleting podinfo",
        HR_META,
        "helmrelease_failed",
        {
            "action": "uninstall",
            "remediation": False,
            "release_version": 4,
            "detail": "uninstallation completed with 1 error(s): context deadline exceeded",
            "helm_logs": "uninstall: Deleting podinfo",
        },
    ),
    (
        "hc1.1-1.6 remediation",
        HELMRELEASE,
        "UninstallFailed",
        "Warning",
        "Helm uninstall remediation for release podinfo/podinfo.v1 with chart podinfo@6.7.1 failed: timed out waiting for the condition",
        HR_META,
        "helmrelease_failed",
        {
            "action": "uninstall",
            "remediation": True,
            "detail": "timed out waiting for the condition",
        },
    ),
    # --- helm-controller: failures before any Helm action (helmrelease_controller.go Eventf) ---
    (
        "hc1.1-1.6 chart",
        HELMRELEASE,
        "ArtifactFailed",
        "Warning",
        "failed to download artifact: GET http://source-controller.flux-system.svc/helmchart/podinfo/podinfo-podinfo/podinfo-6.7.1.tgz: 404 Not Found",
        {},
        "helmrelease_failed",
        {
            "action": None,
            "remediation": False,
            "release_name": None,
            "chart": None,
            "revision": None,
            "detail": "failed to download artifact: GET http://source-controller.flux-system.svc/helmchart/podinfo/podinfo-podinfo/podinfo-6.7.1.tgz: 404 Not Found",
        },
    ),
    (
        "hc1.1-1.6 values",
        HELMRELEASE,
        "ValuesError",
        "Warning",
        "could not resolve ConfigMap chart values reference 'podinfo/podinfo-values' with key 'values.yaml': configmaps \"podinfo-values\" not found",
        {},
        "helmrelease_failed",
        {"action": None, "release_version": None},
    ),
    (
        "hc1.1-1.6 access denied",
        HELMRELEASE,
        "AccessDenied",
        "Warning",
        "can't access 'HelmRepository/infra/charts', cross-namespace references have been blocked",
        {},
        "helmrelease_failed",
        {"action": None},
    ),
    (
        "hc1.4-1.6 CEL",
        HELMRELEASE,
        "InvalidCELExpression",
        "Warning",
        "failed to parse CEL expression 'status.ready ==': Syntax error",
        {},
        "helmrelease_failed",
        {"action": None},
    ),
]


@pytest.mark.parametrize(
    (
        "releases",
        "involved",
        "reason",
        "event_type",
        "message",
        "annotations",
        "domain_type",
        "fields",
    ),
    ROWS,
    ids=[f"{row[0]}-{row[2]}" for row in ROWS],
)
def test_flux_formats_by_release(
    releases: str,
    involved: dict[str, Any],
    reason: str,
    event_type: str,
    message: str,
    annotations: dict[str, str],
    domain_type: str,
    fields: dict[str, Any],
) -> None:
    event = flux_event(involved, reason, message, event_type=event_type, annotations=annotations)
    got_type, data = only(event)
    assert got_type == f"flux.{domain_type}", releases
    assert data["source_message_understood"] is True
    assert (data["kind"], data["namespace"], data["name"]) == (
        involved["kind"],
        involved["namespace"],
        involved["name"],
    )
    assert {name: data[name] for name in fields} == fields


def test_a_flux_event_is_sourced_at_its_object() -> None:
    [event] = run(
        flux_event(
            HELMRELEASE,
            "InstallSucceeded",
            "Helm install succeeded for release podinfo/podinfo.v1 with chart podinfo@6.7.1",
            annotations=HR_META,
        )
    ).events
    assert event.source == "/clusters/prod-eu/namespaces/podinfo/helmreleases/podinfo"
    assert event.type == "dev.herald.flux.helmrelease_succeeded"


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(
            flux_event(
                KUSTOMIZATION,
                "ReconciliationSucceeded",
                "Deployment/podinfo/podinfo deleted\nService/podinfo/podinfo deleted\nNamespace/podinfo deleted",
                annotations=KS_REVISION,
            ),
            id="kc-change-set-at-deletion",
        ),
        pytest.param(
            flux_event(
                KUSTOMIZATION,
                "HealthCheckFailed",
                "Deployment/podinfo/podinfo deleted",
                annotations=KS_REVISION,
            ),
            id="kc-change-set-at-deletion-after-a-failure",
        ),
        pytest.param(
            flux_event(
                KUSTOMIZATION,
                "Progressing",
                "Deployment/podinfo/podinfo configured\nService/podinfo/podinfo unchanged",
                annotations=KS_REVISION,
            ),
            id="kc-change-set-while-reconciling",
        ),
        pytest.param(
            flux_event(KUSTOMIZATION, "Progressing", "Health check passed in 20.1s"),
            id="kc-health-check-passed",
        ),
        pytest.param(
            flux_event(
                KUSTOMIZATION,
                "DependencyNotReady",
                "Dependencies do not meet ready condition, retrying in 30s",
            ),
            id="kc-dependency-not-ready",
        ),
        pytest.param(
            flux_event(
                HELMRELEASE,
                "DriftDetected",
                "Cluster state of release podinfo/podinfo.v2 has drifted from the desired state:\nDeployment/podinfo/podinfo changed (0 additions, 1 changes, 0 removals)",
                event_type="Warning",
            ),
            id="hc-drift-detected",
        ),
        pytest.param(
            flux_event(
                HELMRELEASE,
                "DependencyNotReady",
                "dependency 'infra/cert-manager' is not ready",
            ),
            id="hc-dependency-not-ready",
        ),
        pytest.param(
            flux_event(
                HELMRELEASE,
                "InstallSucceeded",
                "Helm install succeeded for release podinfo/podinfo.v1 with chart podinfo@6.7.1",
                component="flux-operator",
            ),
            id="another-component",
        ),
        pytest.param(
            flux_event(
                {**HELMRELEASE, "apiVersion": "helm.example.com/v1"},
                "InstallSucceeded",
                "Helm install succeeded for release podinfo/podinfo.v1 with chart podinfo@6.7.1",
            ),
            id="another-api-group",
        ),
    ],
)
def test_flux_events_that_are_not_reconciliation_outcomes_give_nothing_and_are_not_flagged(
    event: dict[str, Any],
) -> None:
    assert run(event) == Outcome()


@pytest.mark.parametrize(
    ("event", "domain_type"),
    [
        pytest.param(
            flux_event(
                KUSTOMIZATION,
                "ReconciliationSucceeded",
                "Reconciled in 1.2s, next reconcile at 10m0s",
                annotations=KS_SUCCESS,
            ),
            "kustomization_reconciled",
            id="kc-success-in-new-words",
        ),
        pytest.param(
            flux_event(
                HELMRELEASE,
                "InstallSucceeded",
                "Helm install succeeded for release podinfo/podinfo (v1) with chart podinfo 6.7.1",
                annotations=HR_META,
            ),
            "helmrelease_succeeded",
            id="hc-install-in-new-words",
        ),
        pytest.param(
            flux_event(
                HELMRELEASE,
                "InstallFailed",
                "Helm install failed for release podinfo/podinfo with chart podinfo@6.7.1: x",
                annotations=HR_META,
            ),
            "helmrelease_failed",
            id="hc-failure-as-a-normal-event",
        ),
    ],
)
def test_flux_events_of_a_catalogued_reason_in_new_words_are_flagged_with_the_annotations(
    event: dict[str, Any], domain_type: str
) -> None:
    outcome = run(event)
    [domain_event] = outcome.events
    assert domain_event.type == f"dev.herald.flux.{domain_type}"
    assert domain_event.data["source_message_understood"] is False
    assert outcome.not_understood == event["reason"]
    annotations = event["metadata"]["annotations"]
    assert domain_event.data["revision"] == next(
        v for k, v in annotations.items() if k.endswith("/revision")
    )
    validate(domain_event.dataschema.removeprefix(SCHEMA_BASE_URI), domain_event.data)


def test_flux_events_give_nothing_unless_the_flux_pack_is_enabled() -> None:
    event = flux_event(
        KUSTOMIZATION,
        "ReconciliationSucceeded",
        "Reconciliation finished in 1.2s, next run in 10m0s",
        annotations=KS_SUCCESS,
    )
    assert run(event, catalogue=builtin_catalogue()) == Outcome()
    assert run(event).events
