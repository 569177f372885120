"""Every message format of every catalogued reason, by the Argo release that emits it: one row
each, the test id naming the releases. Formats read from the emitting code of each release line
(docs/catalogue.md has the table with sources); the field cases are in test_field_cases.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.processors.test_interpreting import app_event, only, run
from tests.support import rollout_event

SHA = "4e1d9c2b7a6f5e4d3c2b1a09f8e7d6c5b4a39281"
SHA2 = "9a8b7c6d5e4f30211f2e3d4c5b6a79881726354a"
DIGEST = "sha256:9f2b6e0c1a3d4b5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6"
CONTROLLER, SERVER = "argocd-application-controller", "argocd-server"

# (releases, reason, component, message, type, the fields that must be so)
ARGOCD: list[tuple[str, str, str, str, str, dict[str, Any]]] = [
    # auto-sync (controller/appcontroller.go autoSync)
    (
        "2.8-3.1,3.2.10+,3.3.8+,3.4+,3.5",
        "OperationStarted",
        CONTROLLER,
        f"Initiated automated sync to '{SHA}'",
        "operation_started",
        {"initiator": "automated", "revision": SHA, "revisions": [SHA]},
    ),
    (
        "2.11.1-3.1,3.2.10+,3.3.8+,3.4+ multi-source",
        "OperationStarted",
        CONTROLLER,
        f"Initiated automated sync to '{SHA}, 0.7.2'",
        "operation_started",
        {"revision": SHA, "revisions": [SHA, "0.7.2"]},
    ),
    (
        "2.8-2.11.0 multi-source",
        "OperationStarted",
        CONTROLLER,
        "Initiated automated sync to ''",
        "operation_started",
        {"initiator": "automated", "revision": None, "revisions": []},
    ),
    (
        "3.2.0-3.2.9,3.3.0-3.3.7,3.4.0-rc1..5",
        "OperationStarted",
        CONTROLLER,
        f"Initiated automated sync to [{SHA}]",
        "operation_started",
        {"initiator": "automated", "revision": SHA, "revisions": [SHA]},
    ),
    (
        "3.2.0-3.2.9,3.3.0-3.3.7 multi-source",
        "OperationStarted",
        CONTROLLER,
        f"Initiated automated sync to [{SHA} 0.7.2]",
        "operation_started",
        {"revisions": [SHA, "0.7.2"]},
    ),
    (
        "3.2.0-3.2.9,3.3.0-3.3.7 empty",
        "OperationStarted",
        CONTROLLER,
        "Initiated automated sync to []",
        "operation_started",
        {"revision": None, "revisions": []},
    ),
    (
        "3.1+ OCI auto-sync",
        "OperationStarted",
        CONTROLLER,
        f"Initiated automated sync to '{DIGEST}'",
        "operation_started",
        {"revision": DIGEST},
    ),
    # a user's sync (server/application/application.go Sync, Rollback)
    (
        "2.8-3.5 git branch",
        "OperationStarted",
        SERVER,
        f"alice initiated sync to HEAD ({SHA})",
        "operation_started",
        {"initiator": "user", "user": "alice", "revision": SHA, "target_revision": "HEAD"},
    ),
    (
        "2.8-3.5 partial",
        "OperationStarted",
        SERVER,
        f"alice initiated partial sync to main ({SHA})",
        "operation_started",
        {"partial": True, "revision": SHA},
    ),
    (
        "2.8-3.5 pinned sha",
        "OperationStarted",
        SERVER,
        f"alice initiated sync to {SHA}",
        "operation_started",
        {"revision": SHA, "target_revision": SHA},
    ),
    (
        "2.8-3.5 pinned sha in upper case",
        "OperationStarted",
        SERVER,
        f"alice initiated sync to {SHA.upper()}",
        "operation_started",
        {"revision": SHA.upper()},
    ),
    (
        "2.8-3.5 truncated sha",
        "OperationStarted",
        SERVER,
        "alice initiated sync to 4e1d9c2 (4e1d9c2)",
        "operation_started",
        {"revision": "4e1d9c2"},
    ),
    (
        "2.8-3.5 empty targetRevision",
        "OperationStarted",
        SERVER,
        f"admin:login initiated sync to  ({SHA})",
        "operation_started",
        {"user": "admin:login", "revision": SHA, "target_revision": None},
    ),
    (
        "2.8-3.5 helm constraint",
        "OperationStarted",
        SERVER,
        "alice initiated sync to 0.7.* (0.7.2)",
        "operation_started",
        {"revision": "0.7.2", "target_revision": "0.7.*"},
    ),
    (
        "2.8-3.5 helm exact version",
        "OperationStarted",
        SERVER,
        "alice initiated sync to 0.7.2 (0.7.2)",
        "operation_started",
        {"revision": "0.7.2", "target_revision": "0.7.2"},
    ),
    (
        "2.8-3.5 helm constraint with a comma",
        "OperationStarted",
        SERVER,
        "alice initiated sync to >=1.0.0, <2.0.0 (1.9.3)",
        "operation_started",
        {"revisions": ["1.9.3"], "target_revisions": [">=1.0.0, <2.0.0"]},
    ),
    (
        "3.1+ OCI",
        "OperationStarted",
        SERVER,
        f"ci:apiKey initiated sync to 1.0.0 ({DIGEST})",
        "operation_started",
        {"user": "ci:apiKey", "revision": DIGEST, "target_revision": "1.0.0"},
    ),
    (
        "2.11+ multi-source",
        "OperationStarted",
        SERVER,
        f"alice initiated sync to HEAD ({SHA}),0.7.* (0.7.2),{SHA2}",
        "operation_started",
        {
            "revision": SHA,
            "revisions": [SHA, "0.7.2", SHA2],
            "target_revisions": ["HEAD", "0.7.*", SHA2],
        },
    ),
    (
        "2.11+ multi-source with a comma",
        "OperationStarted",
        SERVER,
        f">=1,<2 initiated sync to >=1.0.0,<2.0.0 (1.9.3),main ({SHA})",
        "operation_started",
        {
            "user": ">=1,<2",
            "revisions": ["1.9.3", SHA],
            "target_revisions": [">=1.0.0,<2.0.0", "main"],
        },
    ),
    (
        "2.8-3.5 no user",
        "OperationStarted",
        SERVER,
        f"Unknown user initiated sync to main ({SHA})",
        "operation_started",
        {"user": "Unknown user"},
    ),
    (
        "2.8-3.5 local",
        "OperationStarted",
        SERVER,
        "alice initiated partial sync locally",
        "operation_started",
        {"local": True, "partial": True, "revision": None},
    ),
    (
        "2.8-3.5 rollback",
        "OperationStarted",
        SERVER,
        "alice initiated rollback to 12",
        "operation_started",
        {"operation": "rollback", "rollback_id": 12, "revision": None},
    ),
    # an operation's end (controller/appcontroller.go setOperationState)
    (
        "2.8-3.5",
        "OperationCompleted",
        CONTROLLER,
        f"Sync operation to {SHA} succeeded",
        "operation_completed",
        {"phase": "Succeeded", "revision": SHA, "partial": False},
    ),
    (
        "2.8-3.5 partial (also self-heal)",
        "OperationCompleted",
        CONTROLLER,
        f"Partial sync operation to {SHA} succeeded",
        "operation_completed",
        {"partial": True, "revision": SHA},
    ),
    (
        "2.8-3.5 helm",
        "OperationCompleted",
        CONTROLLER,
        "Sync operation to 0.7.2 failed: one or more objects failed to apply",
        "operation_completed",
        {"phase": "Failed", "revision": "0.7.2", "detail": "one or more objects failed to apply"},
    ),
    (
        "2.8-3.5 multi-source",
        "OperationCompleted",
        CONTROLLER,
        "Sync operation to  succeeded",
        "operation_completed",
        {"revision": None, "revisions": []},
    ),
    (
        "2.8-3.5 no sync result",
        "OperationCompleted",
        CONTROLLER,
        "Sync operation failed: ComparisonError: Failed to load target state: x",
        "operation_completed",
        {
            "phase": "Failed",
            "revision": None,
            "detail": "ComparisonError: Failed to load target state: x",
        },
    ),
    (
        "2.8-3.5 empty failure message",
        "OperationCompleted",
        CONTROLLER,
        f"Sync operation to {SHA} failed: ",
        "operation_completed",
        {"phase": "Failed", "detail": None},
    ),
    (
        "2.8-3.5 multi-line failure",
        "OperationCompleted",
        CONTROLLER,
        f"Sync operation to {SHA} failed: helm template failed\n\nUse --debug flag",
        "operation_completed",
        {"detail": "helm template failed\n\nUse --debug flag"},
    ),
    # status changes (controller/appcontroller.go persistAppStatus)
    (
        "2.8-3.5",
        "ResourceUpdated",
        CONTROLLER,
        "Updated health status: Progressing -> Healthy",
        "health_changed",
        {"from": "Progressing", "to": "Healthy", "detail": None},
    ),
    (
        "3.6 (master #28455)",
        "ResourceUpdated",
        CONTROLLER,
        "Updated health status: Healthy -> Degraded (Caused by apps/Deployment:shop/api, argoproj.io/Rollout:shop/orders and 2 more)",
        "health_changed",
        {
            "to": "Degraded",
            "detail": "Caused by apps/Deployment:shop/api, argoproj.io/Rollout:shop/orders and 2 more",
        },
    ),
    (
        "2.8-3.5 new app",
        "ResourceUpdated",
        CONTROLLER,
        "Updated sync status:  -> OutOfSync",
        "sync_changed",
        {"from": "", "to": "OutOfSync"},
    ),
    # resource actions (server/application/application.go RunResourceAction)
    (
        "2.8-3.5",
        "ResourceActionRan",
        SERVER,
        "alice ran action restart on resource apps/Deployment/api",
        "resource_action",
        {"action": "restart", "resource": "apps/Deployment/api"},
    ),
    (
        "2.8-3.5 core group",
        "ResourceActionRan",
        SERVER,
        "alice ran action restart on resource /Pod/api-0",
        "resource_action",
        {"resource": "/Pod/api-0"},
    ),
    (
        "2.8-3.5 resource not found",
        "ResourceActionRan",
        SERVER,
        "alice ran action promote-full",
        "resource_action",
        {"action": "promote-full", "resource": None},
    ),
    # the application's lifecycle (server/application/application.go Create, Delete, updateApp)
    (
        "2.8-3.5,3.6",
        "ResourceCreated",
        SERVER,
        "alice@example.com created application",
        "created",
        {"user": "alice@example.com"},
    ),
    (
        "2.8-3.5,3.6 project token",
        "ResourceCreated",
        SERVER,
        "proj:shop:ci created application",
        "created",
        {"user": "proj:shop:ci"},
    ),
    (
        "2.8-3.5,3.6",
        "ResourceDeleted",
        SERVER,
        "admin:login deleted application",
        "deleted",
        {"user": "admin:login"},
    ),
    (
        "2.8-3.5,3.6 no user",
        "ResourceDeleted",
        SERVER,
        "Unknown user deleted application",
        "deleted",
        {"user": "Unknown user"},
    ),
    (
        "2.8-3.5,3.6 update, update spec, patch, upsert",
        "ResourceUpdated",
        SERVER,
        "ci-bot:apiKey updated application spec",
        "spec_updated",
        {"user": "ci-bot:apiKey"},
    ),
]

ROLLOUTS: list[tuple[str, str, str, str, dict[str, Any]]] = [
    (
        "1.0-1.10",
        "RolloutUpdated",
        "Rollout updated to revision 1",
        "update_started",
        {"revision": 1},
    ),
    (
        "1.0-1.10",
        "RolloutStepCompleted",
        "Rollout step 1/3 completed (setWeight: 20)",
        "step_advanced",
        {"step_index": 1, "step_total": 3, "step": "setWeight: 20"},
    ),
    (
        "1.8-1.10 plugin step",
        "RolloutStepCompleted",
        "Rollout step 2/3 completed (plugin: my-plugin)",
        "step_advanced",
        {"step": "plugin: my-plugin"},
    ),
    (
        "1.9-1.10 header route",
        "RolloutStepCompleted",
        "Rollout step 2/4 completed (setHeaderRoute: canary)",
        "step_advanced",
        {"step": "setHeaderRoute: canary"},
    ),
    (
        "1.3-1.8 route steps",
        "RolloutStepCompleted",
        "Rollout step 2/4 completed (invalid)",
        "step_advanced",
        {"step": "invalid"},
    ),
    (
        "1.0-1.10",
        "RolloutPaused",
        "Rollout is paused (CanaryPauseStep)",
        "paused",
        {"pause_reason": "CanaryPauseStep"},
    ),
    ("1.0-1.10", "RolloutResumed", "Rollout is resumed", "resumed", {}),
    (
        "1.0-1.10 manual abort",
        "RolloutAborted",
        "Rollout aborted update to revision 3",
        "aborted",
        {"revision": 3, "detail": None},
    ),
    (
        "1.9-1.10 analysis",
        "RolloutAborted",
        'Rollout aborted update to revision 3: Step-based analysis phase failed: Metric "success-rate" assessed Failed due to failed (3) > failureLimit (2)',
        "aborted",
        {
            "revision": 3,
            "detail": 'Step-based analysis phase failed: Metric "success-rate" assessed Failed due to failed (3) > failureLimit (2)',
        },
    ),
    (
        "1.10 progress deadline",
        "RolloutAborted",
        'Rollout aborted update to revision 8: ReplicaSet "cart-7d9f6c5b48" has timed out progressing.',
        "aborted",
        {"revision": 8},
    ),
    (
        "1.1-1.10 progress deadline, bare",
        "RolloutAborted",
        'ReplicaSet "cart-7d9f6c5b48" has timed out progressing.',
        "aborted",
        {"revision": None, "detail": 'ReplicaSet "cart-7d9f6c5b48" has timed out progressing.'},
    ),
    (
        "1.1-1.10 progress deadline, no ReplicaSet",
        "RolloutAborted",
        'Rollout "cart" has timed out progressing.',
        "aborted",
        {"revision": None},
    ),
    (
        "1.0-1.10",
        "RolloutCompleted",
        "Rollout completed update to revision 2 (6f8b9c7d5): Completed all 3 canary steps",
        "completed",
        {"revision": 2, "pod_hash": "6f8b9c7d5", "detail": "Completed all 3 canary steps"},
    ),
    (
        "1.0-1.9 rollback",
        "RolloutCompleted",
        "Rollout completed update to revision 5 (6f8b9c7d5): Rollback to 'payments-6f8b9c7d5' within scaleDownDelay",
        "completed",
        {"revision": 5},
    ),
    (
        "1.10 fast rollback",
        "RolloutCompleted",
        "Rollout completed update to revision 5 (6f8b9c7d5): Fast rollback",
        "completed",
        {"detail": "Fast rollback"},
    ),
    (
        "0.10 step",
        "SetStepIndex",
        "Set Step Index to 2",
        "step_advanced",
        {"step_index": 2, "legacy": True},
    ),
    ("0.10 completed", "SettingStableRS", "Completed all steps", "completed", {"legacy": True}),
]


@pytest.mark.parametrize(
    ("releases", "reason", "component", "message", "domain_type", "fields"),
    ARGOCD,
    ids=[f"argocd-{row[0]}-{row[1]}" for row in ARGOCD],
)
def test_argo_cd_formats_by_release(
    releases: str,
    reason: str,
    component: str,
    message: str,
    domain_type: str,
    fields: dict[str, Any],
) -> None:
    got_type, data = only(app_event(reason, message, component=component))
    assert got_type == f"application.{domain_type}"
    assert data["source_message_understood"] is True, releases
    assert {name: data[name] for name in fields} == fields


@pytest.mark.parametrize(
    ("releases", "reason", "message", "domain_type", "fields"),
    ROLLOUTS,
    ids=[f"rollouts-{row[0]}-{row[1]}" for row in ROLLOUTS],
)
def test_argo_rollouts_formats_by_release(
    releases: str, reason: str, message: str, domain_type: str, fields: dict[str, Any]
) -> None:
    got_type, data = only(rollout_event(reason, message))
    assert got_type == f"rollout.{domain_type}"
    assert data["source_message_understood"] is True, releases
    assert {name: data[name] for name in fields} == fields


@pytest.mark.parametrize(
    ("reason", "component", "message"),
    [
        ("ResourceUpdated", SERVER, "alice patched resource apps/Deployment 'api'"),
        ("ResourceUpdated", SERVER, "alice patched resource /ConfigMap 'app-config'"),
        ("ResourceUpdated", SERVER, "alice terminated running operation"),
        ("ResourceDeleted", SERVER, "alice deleted resource apps/Deployment 'api'"),
        ("ResourceDeleted", SERVER, "alice deleted resource /ConfigMap 'app-config'"),
        ("StatusRefreshed", CONTROLLER, "Unable to delete application resources: x"),
    ],
)
def test_argo_cd_formats_that_are_not_transitions_give_nothing_and_are_not_flagged(
    reason: str, component: str, message: str
) -> None:
    outcome = run(app_event(reason, message, component=component))
    assert (outcome.events, outcome.not_understood) == ((), None)


@pytest.mark.parametrize(
    ("reason", "message", "domain_type"),
    [
        ("ResourceCreated", "alice created the application", "created"),
        ("ResourceDeleted", "alice removed application", "deleted"),
        ("ResourceUpdated", "alice updated the application's spec", "health_changed"),
    ],
)
def test_argo_cd_lifecycle_in_new_words_is_flagged_with_the_user_from_the_annotation(
    reason: str, message: str, domain_type: str
) -> None:
    event = app_event(reason, message, component=SERVER)
    event["metadata"]["annotations"]["user"] = "alice"
    got_type, data = only(event)
    assert got_type == f"application.{domain_type}"
    assert data["source_message_understood"] is False
    if domain_type != "health_changed":  # ResourceUpdated's fallback: health, which has no user
        assert data["user"] == "alice"
