"""Which domain events a raw record stands for: the pure core of the processors."""

from __future__ import annotations

from typing import Any

import pytest

from herald_contracts import RawRecord, WatchType
from processors.rollouts import interpret
from tests.support import ROLLOUT, rollout_event


def _record(event: dict[str, Any], *, watch_type: WatchType = WatchType.ADDED) -> RawRecord:
    return RawRecord(cluster="prod-eu", watch_type=watch_type, collected_at="t", object=event)


@pytest.mark.parametrize(
    ("reason", "message", "domain_type", "fields"),
    [
        pytest.param(
            "RolloutUpdated",
            "Rollout updated to revision 3",
            "rollout.update_started",
            {"revision": 3},
            id="updated",
        ),
        pytest.param(
            "RolloutStepCompleted",
            "Rollout step 1/2 completed (setWeight: 50)",
            "rollout.step_advanced",
            {"step_index": 1, "step_total": 2, "step": "setWeight: 50", "legacy": False},
            id="step-set-weight",
        ),
        pytest.param(
            "RolloutStepCompleted",
            "Rollout step 3/4 completed (setCanaryScale{weight: 20})",
            "rollout.step_advanced",
            {
                "step_index": 3,
                "step_total": 4,
                "step": "setCanaryScale{weight: 20}",
                "legacy": False,
            },
            id="step-canary-scale",
        ),
        pytest.param(
            "RolloutPaused",
            "Rollout is paused (CanaryPauseStep)",
            "rollout.paused",
            {"pause_reason": "CanaryPauseStep"},
            id="paused",
        ),
        pytest.param("RolloutResumed", "Rollout is resumed", "rollout.resumed", {}, id="resumed"),
        pytest.param(
            "RolloutCompleted",
            "Rollout completed update to revision 2 (6f8b9c7d5): Completed all 3 canary steps",
            "rollout.completed",
            {
                "revision": 2,
                "pod_hash": "6f8b9c7d5",
                "detail": "Completed all 3 canary steps",
                "legacy": False,
            },
            id="completed-canary",
        ),
        pytest.param(
            "RolloutCompleted",
            "Rollout completed update to revision 1 (5d4c8b7a9): Initial deploy",
            "rollout.completed",
            {"revision": 1, "pod_hash": "5d4c8b7a9", "detail": "Initial deploy", "legacy": False},
            id="completed-initial",
        ),
    ],
)
def test_rollout_events_become_their_catalogue_event(
    reason: str, message: str, domain_type: str, fields: dict[str, Any]
) -> None:
    [event] = interpret(_record(rollout_event(reason, message)))
    assert event.type == f"dev.herald.{domain_type}"
    assert {k: event.data[k] for k in fields} == fields
    assert event.data["message"] == message
    assert event.data["source_message_aggregated"] is False
    assert event.source == "/clusters/prod-eu/namespaces/billing/rollouts/payments"
    assert event.key == "prod-eu/billing/Rollout/payments"
    assert event.subject == "payments"


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(
            rollout_event(
                "ScalingReplicaSet",
                "Scaled up ReplicaSet payments-6f8b9c7d5 (revision 2) from 0 to 1",
            ),
            id="scaling-is-not-in-the-catalogue",
        ),
        pytest.param(
            rollout_event(
                "RolloutCompleted",
                "Rollout completed update to revision 2 (abc): x",
                component="argocd-server",
            ),
            id="argocd-server-resource-event-on-a-rollout",
        ),
        pytest.param(
            rollout_event(
                "AnalysisRunFailed",
                "Analysis Completed. Result: Failed",
                involved={**ROLLOUT, "kind": "AnalysisRun", "name": "payments-6f8b9c7d5-2-1"},
            ),
            id="analysisrun-kind",
        ),
        pytest.param(
            rollout_event(
                "RolloutCompleted",
                "Rollout completed update to revision 2 (abc): x",
                involved={**ROLLOUT, "apiVersion": "apps/v1"},
            ),
            id="not-argoproj",
        ),
        pytest.param(
            rollout_event("RolloutUpdated", "Rollout updated to revision two"),
            id="message-does-not-match",
        ),
        pytest.param(
            rollout_event("RolloutResumed", "Rollout is resumed!"), id="pattern-is-anchored"
        ),
    ],
)
def test_everything_else_produces_nothing(event: dict[str, Any]) -> None:
    assert interpret(_record(event)) == []


def test_source_component_decides_even_when_reporting_component_is_empty() -> None:
    event = rollout_event(
        "RolloutResumed", "Rollout is resumed", reporting=""
    )  # Argo Rollouts <= v1.6
    assert [e.type for e in interpret(_record(event))] == ["dev.herald.rollout.resumed"]


def test_the_aggregation_prefix_is_stripped_and_reported() -> None:
    message = "(combined from similar events): Rollout step 10/12 completed (setWeight: 90)"
    [event] = interpret(_record(rollout_event("RolloutStepCompleted", message, reporting="")))
    assert event.data["step_index"] == 10
    assert event.data["source_message_aggregated"] is True


def test_a_deleted_event_is_not_a_transition() -> None:
    event = rollout_event("RolloutResumed", "Rollout is resumed")
    assert interpret(_record(event, watch_type=WatchType.DELETED)) == []


def test_the_same_occurrence_always_gets_the_same_id() -> None:
    event = rollout_event("RolloutResumed", "Rollout is resumed", uid="u-1", count=2)
    first = interpret(_record(event))
    again = interpret(_record(event, watch_type=WatchType.MODIFIED))  # e.g. a relist
    assert [e.id for e in first] == [e.id for e in again]


def test_a_repeat_with_a_higher_count_is_a_new_occurrence_with_a_new_id() -> None:
    first = interpret(
        _record(rollout_event("RolloutResumed", "Rollout is resumed", uid="u-1", count=1))
    )
    repeat = interpret(
        _record(rollout_event("RolloutResumed", "Rollout is resumed", uid="u-1", count=2))
    )
    assert first[0].id != repeat[0].id


def test_series_count_wins_over_count() -> None:
    base = rollout_event("RolloutResumed", "Rollout is resumed", uid="u-1", count=1)
    with_series = {
        **base,
        "series": {"count": 5, "lastObservedTime": "2026-08-20T10:00:00.123456Z"},
    }
    [event] = interpret(_record(with_series))
    assert event.id != interpret(_record(base))[0].id
    assert event.time == "2026-08-20T10:00:00.123456Z"


def test_time_is_when_the_event_was_last_observed_not_the_wall_clock() -> None:
    event = rollout_event(
        "RolloutResumed", "Rollout is resumed", last_timestamp="2026-08-20T09:16:53Z"
    )
    assert interpret(_record(event))[0].time == "2026-08-20T09:16:53Z"
