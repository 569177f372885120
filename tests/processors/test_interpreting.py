"""The pure core of the processors: every catalogue row, the version differences, occurrence identity,
deduplication and the aborted state. Test data follows shared/reference/argo-events.md."""

from __future__ import annotations

import json
from typing import Any

import pytest

from herald_contracts import SCHEMA_BASE_URI, RawRecord, WatchType, encode_domain_event
from processors.interpreting import MAX_TEXT, Abort, Outcome, RolloutState, interpret
from processors.packs import builtin_catalogue
from tests.support import ROLLOUT, rollout_event, validate

TYPE_FIELDS = builtin_catalogue().type_fields

APP = {
    "kind": "Application",
    "namespace": "argocd",
    "name": "payments",
    "uid": "b1d2",
    "apiVersion": "argoproj.io/v1alpha1",
}
NEVER_SEEN = RolloutState()
SHA = "3f6c2e1d9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e"


def app_event(
    reason: str, message: str, *, component: str = "argocd-application-controller", **kw: Any
) -> dict[str, Any]:
    event = rollout_event(reason, message, component=component, reporting="", involved=APP, **kw)
    event["metadata"]["annotations"] = {
        "dest-server": "https://kubernetes.default.svc",
        "dest-namespace": "billing",
    }
    return event


def record(
    event: dict[str, Any], *, watch_type: WatchType = WatchType.ADDED, cluster: str = "prod-eu"
) -> RawRecord:
    return RawRecord(
        cluster=cluster, watch_type=watch_type, collected_at="2026-08-20T09:17:00Z", object=event
    )


def run(
    event: dict[str, Any], *, last_n: int | None = None, rollout: RolloutState = NEVER_SEEN
) -> Outcome:
    return interpret(record(event), last_n=last_n, rollout=rollout)


def only(event: dict[str, Any], **kw: Any) -> tuple[str, dict[str, Any]]:
    [domain_event] = run(event, **kw).events
    validate("deploy-event.v1.schema.json", json.loads(encode_domain_event(domain_event)))
    # The data alone, against the schema its dataschema names (what a consumer can do).
    validate(domain_event.dataschema.removeprefix(SCHEMA_BASE_URI), domain_event.data)
    return domain_event.type.removeprefix("dev.herald."), domain_event.data


def catalogue_fields(data: dict[str, Any]) -> dict[str, Any]:
    common = {
        "cluster",
        "kind",
        "namespace",
        "name",
        "observed_at",
        "source_reason",
        "source_message",
        "source_event_uid",
        "source_event_count",
        "source_event_resource_version",
        "source_message_aggregated",
        "source_message_understood",
        "dest_server",
        "dest_namespace",
        "workload",
        "application",
    }
    return {k: v for k, v in data.items() if k not in common}


def operation_started(**fields: Any) -> dict[str, Any]:
    return {
        "initiator": None,
        "user": None,
        "operation": "sync",
        "partial": False,
        "local": False,
        "revision": None,
        "revisions": [],
        "target_revision": None,
        "target_revisions": [],
        "rollback_id": None,
    } | fields


def automated(revisions: list[str]) -> dict[str, Any]:
    return operation_started(
        initiator="automated", revision=(revisions or [None])[0], revisions=revisions
    )


def user_sync(
    user: str, sources: list[tuple[str, str]], *, partial: bool = False
) -> dict[str, Any]:
    return operation_started(
        initiator="user",
        user=user,
        partial=partial,
        revision=sources[0][1],
        revisions=[resolved for _, resolved in sources],
        target_revision=sources[0][0],
        target_revisions=[target for target, _ in sources],
    )


def completed(
    phase: str, revisions: list[str], *, partial: bool = False, detail: str | None = None
) -> dict[str, Any]:
    return {
        "phase": phase,
        "partial": partial,
        "revision": (revisions or [None])[0],
        "revisions": revisions,
        "detail": detail,
    }


ROWS = [
    # Argo Rollouts v1.x
    ("RolloutUpdated", "Rollout updated to revision 3", "rollout.update_started", {"revision": 3}),
    (
        "RolloutStepCompleted",
        "Rollout step 1/2 completed (setWeight: 50)",
        "rollout.step_advanced",
        {"step_index": 1, "step_total": 2, "step": "setWeight: 50", "legacy": False},
    ),
    (
        "RolloutStepCompleted",
        "Rollout step 2/2 completed (pause: 3s)",
        "rollout.step_advanced",
        {"step_index": 2, "step_total": 2, "step": "pause: 3s", "legacy": False},
    ),
    (
        "RolloutStepCompleted",
        "Rollout step 3/4 completed (setCanaryScale{weight: 20})",
        "rollout.step_advanced",
        {"step_index": 3, "step_total": 4, "step": "setCanaryScale{weight: 20}", "legacy": False},
    ),
    (
        "RolloutStepCompleted",
        "Rollout step 4/8 completed (pause)",
        "rollout.step_advanced",
        {"step_index": 4, "step_total": 8, "step": "pause", "legacy": False},
    ),
    (
        "RolloutPaused",
        "Rollout is paused (CanaryPauseStep)",
        "rollout.paused",
        {"pause_reason": "CanaryPauseStep"},
    ),
    (
        "RolloutPaused",
        "Rollout is paused (InconclusiveAnalysisRun)",
        "rollout.paused",
        {"pause_reason": "InconclusiveAnalysisRun"},
    ),
    ("RolloutResumed", "Rollout is resumed", "rollout.resumed", {}),
    (
        "RolloutAborted",
        "Rollout aborted update to revision 2",
        "rollout.aborted",
        {"revision": 2, "detail": None},
    ),
    (
        "RolloutAborted",
        'Rollout aborted update to revision 2: Metric "cpu-usage" assessed Failed due to failed (1) > failureLimit (0)',
        "rollout.aborted",
        {
            "revision": 2,
            "detail": 'Metric "cpu-usage" assessed Failed due to failed (1) > failureLimit (0)',
        },
    ),
    (
        "RolloutAborted",
        'ReplicaSet "payments-6f8b9c7d5" has timed out progressing.',
        "rollout.aborted",
        {"revision": None, "detail": 'ReplicaSet "payments-6f8b9c7d5" has timed out progressing.'},
    ),
    (
        "RolloutCompleted",
        "Rollout completed update to revision 2 (6f8b9c7d5): Completed all 3 canary steps",
        "rollout.completed",
        {
            "revision": 2,
            "pod_hash": "6f8b9c7d5",
            "detail": "Completed all 3 canary steps",
            "legacy": False,
        },
    ),
    (
        "RolloutCompleted",
        "Rollout completed update to revision 4 (7c9d): Completed blue-green update",
        "rollout.completed",
        {
            "revision": 4,
            "pod_hash": "7c9d",
            "detail": "Completed blue-green update",
            "legacy": False,
        },
    ),
    # Argo Rollouts <= v0.10
    (
        "SetStepIndex",
        "Set Step Index to 2",
        "rollout.step_advanced",
        {"step_index": 2, "step_total": None, "step": None, "legacy": True},
    ),
    (
        "SettingStableRS",
        "Completed all steps",
        "rollout.completed",
        {"revision": None, "pod_hash": None, "detail": "Completed all steps", "legacy": True},
    ),
]

APP_ROWS = [
    (
        "ResourceUpdated",
        "Updated health status: Progressing -> Suspended",
        "application.health_changed",
        {"from": "Progressing", "to": "Suspended", "detail": None},
    ),
    (
        "ResourceUpdated",
        "Updated health status:  -> Missing",
        "application.health_changed",
        {"from": "", "to": "Missing", "detail": None},
    ),
    (
        "ResourceUpdated",
        "Updated health status: Healthy -> Degraded (Caused by apps/Deployment:default/api)",
        "application.health_changed",
        {"from": "Healthy", "to": "Degraded", "detail": "Caused by apps/Deployment:default/api"},
    ),
    (
        "ResourceUpdated",
        "Updated sync status: Synced -> OutOfSync",
        "application.sync_changed",
        {"from": "Synced", "to": "OutOfSync"},
    ),
    (
        "ResourceUpdated",
        "Updated sync status:  -> OutOfSync",
        "application.sync_changed",
        {"from": "", "to": "OutOfSync"},
    ),
    (
        "OperationStarted",
        f"Initiated automated sync to '{SHA}'",
        "application.operation_started",
        automated([SHA]),
    ),
    (
        "OperationCompleted",
        f"Sync operation to {SHA} succeeded",
        "application.operation_completed",
        completed("Succeeded", [SHA]),
    ),
    (
        "OperationCompleted",
        "Partial sync operation succeeded",
        "application.operation_completed",
        completed("Succeeded", [], partial=True),
    ),
    (
        "OperationCompleted",
        "Sync operation to  succeeded",
        "application.operation_completed",
        completed("Succeeded", []),
    ),
    (
        "OperationCompleted",
        f'Sync operation to {SHA} failed: one or more objects failed to apply, reason: Deployment.apps "api" is invalid',
        "application.operation_completed",
        completed(
            "Failed",
            [SHA],
            detail='one or more objects failed to apply, reason: Deployment.apps "api" is invalid',
        ),
    ),
]

SERVER_ROWS = [
    (
        "OperationStarted",
        f"alice initiated sync to main ({SHA})",
        "application.operation_started",
        user_sync("alice", [("main", SHA)]),
    ),
    (
        "OperationStarted",
        f"Unknown user initiated partial sync to v1.2.3 ({SHA})",
        "application.operation_started",
        user_sync("Unknown user", [("v1.2.3", SHA)], partial=True),
    ),
    (
        "ResourceActionRan",
        "alice ran action resume",
        "application.resource_action",
        {"user": "alice", "action": "resume", "resource": None},
    ),
    (
        "ResourceActionRan",
        "bob ran action restart on resource apps/Deployment/api",
        "application.resource_action",
        {"user": "bob", "action": "restart", "resource": "apps/Deployment/api"},
    ),
]


@pytest.mark.parametrize(
    ("reason", "message", "domain_type", "fields"), ROWS, ids=[f"{r[0]}:{r[1][:40]}" for r in ROWS]
)
def test_rollout_events_become_their_catalogue_event(
    reason: str, message: str, domain_type: str, fields: dict[str, Any]
) -> None:
    got_type, data = only(rollout_event(reason, message))
    assert (got_type, catalogue_fields(data)) == (domain_type, fields)
    assert (data["kind"], data["namespace"], data["name"], data["source_reason"]) == (
        "Rollout",
        "billing",
        "payments",
        reason,
    )


@pytest.mark.parametrize(
    ("reason", "message", "domain_type", "fields"),
    APP_ROWS,
    ids=[f"{r[0]}:{r[1][:40]}" for r in APP_ROWS],
)
def test_application_controller_events_become_their_catalogue_event(
    reason: str, message: str, domain_type: str, fields: dict[str, Any]
) -> None:
    got_type, data = only(app_event(reason, message))
    assert (got_type, catalogue_fields(data)) == (domain_type, fields)
    assert (data["dest_server"], data["dest_namespace"]) == (
        "https://kubernetes.default.svc",
        "billing",
    )


@pytest.mark.parametrize(
    ("reason", "message", "domain_type", "fields"),
    SERVER_ROWS,
    ids=[f"{r[0]}:{r[1][:40]}" for r in SERVER_ROWS],
)
def test_argocd_server_events_become_their_catalogue_event(
    reason: str, message: str, domain_type: str, fields: dict[str, Any]
) -> None:
    got_type, data = only(app_event(reason, message, component="argocd-server"))
    assert (got_type, catalogue_fields(data)) == (domain_type, fields)


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(
            rollout_event(
                "ScalingReplicaSet",
                "Scaled up ReplicaSet payments-6f8b9c7d5 (revision 2) from 0 to 1",
            ),
            id="rollout-scaling",
        ),
        pytest.param(
            rollout_event(
                "RolloutAddedToInformer", "Rollout resource added to informer: billing/payments"
            ),
            id="added-to-informer",
        ),
        pytest.param(
            rollout_event(
                "SettingStableRS", "Setting StableRS to CurrentPodHash: StableRS hash: 5d4c"
            ),
            id="v0.10-initial-stable",
        ),
        pytest.param(
            rollout_event(
                "RolloutCompleted",
                "Rollout completed update to revision 2 (a): x",
                component="argocd-server",
            ),
            id="argocd-server-on-rollout",
        ),
        pytest.param(
            rollout_event(
                "AnalysisRunFailed",
                "Analysis Completed. Result: Failed",
                involved={**ROLLOUT, "kind": "AnalysisRun"},
            ),
            id="analysisrun",
        ),
        pytest.param(
            rollout_event(
                "ScalingReplicaSet",
                "Scaled up replica set api-5d to 3",
                component="deployment-controller",
                involved={**ROLLOUT, "kind": "Deployment", "apiVersion": "apps/v1"},
            ),
            id="deployment",
        ),
        pytest.param(
            rollout_event(
                "Pulled",
                "Container image already present",
                component="kubelet",
                involved={"kind": "Pod", "namespace": "billing", "name": "p", "apiVersion": "v1"},
            ),
            id="pod",
        ),
        pytest.param(
            rollout_event(
                "RolloutCompleted",
                "Rollout completed update to revision 2 (a): x",
                involved={**ROLLOUT, "apiVersion": "apps/v1"},
            ),
            id="not-argoproj",
        ),
        pytest.param(
            app_event("StatusRefreshed", "Unable to delete application resources: x"),
            id="app-unknown-reason",
        ),
        pytest.param(
            app_event(
                "ResourceDeleted",
                "alice deleted resource apps/Deployment 'api'",
                component="argocd-server",
            ),
            id="app-resource-deleted",
        ),
        pytest.param(
            app_event(
                "OperationCompleted",
                "Sync operation to abc succeeded",
                component="argocd-repo-server",
            ),
            id="other-argocd-component",
        ),
        pytest.param(
            app_event(
                "ResourceUpdated", "alice terminated running operation", component="argocd-server"
            ),
            id="user-terminate",
        ),
        pytest.param(
            app_event(
                "ResourceUpdated",
                "alice patched resource apps/Deployment 'api'",
                component="argocd-server",
            ),
            id="user-patch",
        ),
        pytest.param(
            {**rollout_event("RolloutResumed", "Rollout is resumed"), "message": None},
            id="no-message",
        ),
    ],
)
def test_everything_else_produces_nothing(event: dict[str, Any]) -> None:
    assert run(event) == Outcome()


@pytest.mark.parametrize(
    ("event", "domain_type"),
    [
        (
            rollout_event("RolloutUpdated", "Rollout updated to revision two"),
            "rollout.update_started",
        ),
        (rollout_event("RolloutResumed", "Rollout is resumed!"), "rollout.resumed"),
        (rollout_event("RolloutResumed", "rollout is resumed"), "rollout.resumed"),
        (
            rollout_event("RolloutStepCompleted", "Rollout step /2 completed (pause)"),
            "rollout.step_advanced",
        ),
        (rollout_event("RolloutPaused", "Rollout is paused"), "rollout.paused"),
        (rollout_event("RolloutCompleted", "Rollout finished revision 4"), "rollout.completed"),
        (
            app_event("ResourceUpdated", "Updated sync status: Synced ->"),
            "application.sync_changed",
        ),
        (app_event("OperationCompleted", "Sync finished"), "application.operation_completed"),
        (
            app_event("OperationStarted", "Initiated automated sync to revision abc"),
            "application.operation_started",
        ),
        (
            app_event("ResourceActionRan", "alice did something", component="argocd-server"),
            "application.resource_action",
        ),
    ],
    ids=lambda value: value["message"][:40] if isinstance(value, dict) else value,
)
def test_a_catalogued_reason_in_unknown_words_still_gives_its_event_flagged(
    event: dict[str, Any], domain_type: str
) -> None:
    outcome = run(event)
    got_type, data = only(event)
    assert got_type == domain_type
    assert data["source_message_understood"] is False
    assert data["source_message"] == event["message"]
    assert outcome.not_understood == event["reason"]
    fields = catalogue_fields(data)
    assert set(fields) >= set(TYPE_FIELDS[domain_type]) - {"user", "initiator"}
    assert all(
        fields[name] is None
        for name in TYPE_FIELDS[domain_type]
        if name not in ("user", "initiator")
    )


def test_an_unknown_argocd_server_wording_keeps_the_user_from_the_event() -> None:
    event = app_event("OperationStarted", "alice asked for a sync", component="argocd-server")
    event["metadata"]["annotations"]["user"] = "alice"
    _, data = only(event)
    assert (data["initiator"], data["user"], data["source_message_understood"]) == (
        "user",
        "alice",
        False,
    )
    _, automated = only(app_event("OperationStarted", "Initiated automated sync to revision abc"))
    assert (automated["initiator"], automated["user"]) == ("automated", None)


def test_a_new_wording_of_a_status_change_keeps_its_kind_of_change() -> None:
    sync = "Updated sync status: Synced -> OutOfSync (2 resources)"
    assert only(app_event("ResourceUpdated", sync))[0] == "application.sync_changed"
    health = "Health of the application is now Degraded"
    assert only(app_event("ResourceUpdated", health))[0] == "application.health_changed"


def test_a_notice_in_unknown_words_is_counted_even_when_it_adds_no_event() -> None:
    twin = run(
        rollout_event("RolloutAborted", "Rollout gave up on revision 3"),
        rollout=RolloutState(TIMED_OUT, 3),
    )
    assert (twin.events, twin.not_understood) == ((), "RolloutAborted")


def test_an_understood_message_says_so() -> None:
    _, data = only(rollout_event("RolloutResumed", "Rollout is resumed"))
    assert data["source_message_understood"] is True
    assert run(rollout_event("RolloutResumed", "Rollout is resumed")).not_understood is None


def test_source_component_decides_even_when_reporting_component_is_empty() -> None:
    assert (
        only(rollout_event("RolloutResumed", "Rollout is resumed", reporting=""))[0]
        == "rollout.resumed"
    )  # <= v1.6


def test_the_aggregation_prefix_is_stripped_and_reported() -> None:
    message = "(combined from similar events): Rollout step 10/12 completed (setWeight: 90)"
    _, data = only(rollout_event("RolloutStepCompleted", message, reporting=""))
    assert data["step_index"] == 10
    assert data["source_message_aggregated"] is True
    assert data["source_message"] == message
    _, plain = only(
        rollout_event("RolloutStepCompleted", "Rollout step 9/12 completed (setWeight: 80)")
    )
    assert "source_message_aggregated" not in plain


def test_a_deleted_event_is_not_a_transition() -> None:
    assert (
        interpret(
            record(
                rollout_event("RolloutResumed", "Rollout is resumed"), watch_type=WatchType.DELETED
            ),
            last_n=None,
        )
        == Outcome()
    )


def test_common_fields_name_the_source_event() -> None:
    event = rollout_event(
        "RolloutResumed",
        "Rollout is resumed",
        uid="u-1",
        count=3,
        last_timestamp="2026-08-20T09:16:53Z",
    )
    _, data = only(event)
    assert data["source_event_uid"] == "u-1"
    assert data["source_event_count"] == 3
    assert data["source_event_resource_version"] == "1"
    assert data["observed_at"] == "2026-08-20T09:16:53Z"
    assert data["cluster"] == "prod-eu"


def test_observed_at_prefers_series_then_last_timestamp_then_event_time() -> None:
    event = rollout_event("RolloutResumed", "Rollout is resumed")
    with_series = {
        **event,
        "series": {"count": 2, "lastObservedTime": "2026-08-20T10:00:00.123456Z"},
    }
    assert run(with_series).events[0].time == "2026-08-20T10:00:00.123456Z"
    new_api = {
        **event,
        "lastTimestamp": None,
        "firstTimestamp": None,
        "eventTime": "2026-08-20T11:00:00.000001Z",
    }
    assert run(new_api).events[0].time == "2026-08-20T11:00:00.000001Z"


def test_the_same_occurrence_always_gets_the_same_id() -> None:
    event = rollout_event("RolloutResumed", "Rollout is resumed", uid="u-1", count=2)
    assert run(event).events[0].id == run(event).events[0].id
    other_cluster = interpret(record(event, cluster="staging"), last_n=None)
    assert other_cluster.events[0].id != run(event).events[0].id


def test_a_repeat_with_a_higher_count_is_a_new_occurrence() -> None:
    first = run(rollout_event("RolloutResumed", "Rollout is resumed", uid="u-1", count=1))
    repeat = run(
        rollout_event("RolloutResumed", "Rollout is resumed", uid="u-1", count=2), last_n=1
    )
    assert first.events[0].id != repeat.events[0].id
    assert repeat.occurrence is not None
    assert (repeat.occurrence.key, repeat.occurrence.n) == ("prod-eu/u-1", 2)


@pytest.mark.parametrize("last_n", [2, 3])
def test_the_same_or_a_lower_count_is_a_duplicate(last_n: int) -> None:
    outcome = run(
        rollout_event("RolloutResumed", "Rollout is resumed", uid="u-1", count=2), last_n=last_n
    )
    assert outcome == Outcome(duplicate=True)


def test_series_count_is_the_occurrence_number_when_present() -> None:
    event = {
        **rollout_event("RolloutResumed", "Rollout is resumed", count=1),
        "series": {"count": 5, "lastObservedTime": "2026-08-20T10:00:00Z"},
    }
    assert run(event, last_n=4).events[0].data["source_event_count"] == 5
    assert run(event, last_n=5).duplicate


def test_a_series_without_a_valid_count_leaves_the_occurrence_number_to_count() -> None:
    event = {
        **rollout_event("RolloutResumed", "Rollout is resumed", count=4),
        "series": {"lastObservedTime": "2026-08-20T10:00:00Z"},
    }
    assert run(event, last_n=3).events[0].data["source_event_count"] == 4
    assert run(event, last_n=4).duplicate


DEADLINE = 'ReplicaSet "payments-6f8b9c7d5" has timed out progressing.'
NO, TIMED_OUT, ABORTED = Abort.NO, Abort.TIMED_OUT, Abort.ABORTED


@pytest.mark.parametrize(
    ("message", "before", "reported", "after"),
    [
        # the progress-deadline notice: a new abort unless the rollout is aborted already
        (DEADLINE, RolloutState(NO, 3), True, RolloutState(TIMED_OUT, 3)),
        (DEADLINE, RolloutState(TIMED_OUT, 3), False, None),
        (DEADLINE, RolloutState(ABORTED, 3), False, None),
        (
            'Rollout "payments" has timed out progressing.',
            RolloutState(),
            True,
            RolloutState(TIMED_OUT),
        ),
        # the formatted notice: the same abort after the deadline notice, else a new one
        (
            "Rollout aborted update to revision 3",
            RolloutState(TIMED_OUT, 3),
            False,
            RolloutState(ABORTED, 3),
        ),
        (
            f"Rollout aborted update to revision 3: {DEADLINE}",
            RolloutState(TIMED_OUT),
            False,
            RolloutState(ABORTED, 3),
        ),
        (
            "Rollout aborted update to revision 3",
            RolloutState(NO, 2),
            True,
            RolloutState(ABORTED, 3),
        ),
        (
            "Rollout aborted update to revision 3",
            RolloutState(ABORTED, 3),
            True,
            RolloutState(ABORTED, 3),
        ),
        # a wording no row knows is an abort in its own words (never taken for the deadline notice)
        ("Rollout gave up on revision 3", RolloutState(NO, 3), True, RolloutState(ABORTED, 3)),
        (
            "Rollout gave up on revision 3",
            RolloutState(TIMED_OUT, 3),
            False,
            RolloutState(ABORTED, 3),
        ),
    ],
)
def test_one_abort_gives_one_aborted_event_whichever_notices_come(
    message: str, before: RolloutState, reported: bool, after: RolloutState | None
) -> None:
    outcome = run(rollout_event("RolloutAborted", message), rollout=before)
    assert ([e.type for e in outcome.events] == ["dev.herald.rollout.aborted"]) is reported
    assert outcome.rollout == after
    assert outcome.occurrence is not None  # remembered either way: a redelivery is a duplicate


def test_the_deadline_notice_names_the_revision_the_rollout_was_last_seen_at() -> None:
    _, data = only(rollout_event("RolloutAborted", DEADLINE), rollout=RolloutState(NO, 3))
    assert (data["revision"], data["detail"]) == (3, DEADLINE)
    _, unknown = only(rollout_event("RolloutAborted", DEADLINE))
    assert unknown["revision"] is None


@pytest.mark.parametrize(
    ("reason", "message", "after"),
    [
        ("RolloutUpdated", "Rollout updated to revision 4", RolloutState(NO, 4)),
        ("RolloutStepCompleted", "Rollout step 1/2 completed (setWeight: 50)", RolloutState(NO, 3)),
        ("RolloutResumed", "Rollout is resumed", RolloutState(NO, 3)),
        (
            "RolloutCompleted",
            "Rollout completed update to revision 4 (a): Initial deploy",
            RolloutState(NO, 4),
        ),
        ("RolloutPaused", "Rollout is paused (CanaryPauseStep)", None),
    ],
)
def test_progress_clears_the_abort_and_events_naming_a_revision_remember_it(
    reason: str, message: str, after: RolloutState | None
) -> None:
    outcome = run(rollout_event(reason, message), rollout=RolloutState(ABORTED, 3))
    assert outcome.rollout == after
    assert outcome.rollout_key == "prod-eu/billing/payments"


def test_huge_messages_are_cut_in_the_domain_event() -> None:
    detail = "x" * 100_000
    _, data = only(
        rollout_event("RolloutAborted", f"Rollout aborted update to revision 2: {detail}")
    )
    assert len(data["detail"]) == MAX_TEXT
    assert data["detail"].endswith("…")
    assert len(data["source_message"]) == MAX_TEXT
