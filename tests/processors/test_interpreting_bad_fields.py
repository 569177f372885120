"""Fields of the raw Event the interpreter copies into a domain event: whatever they hold, what it
emits decodes with `decode_domain_event` and validates against the schema, and what cannot be made
into a valid event is refused with a reason (the agent dead-letters it) instead of raising."""

from __future__ import annotations

import json
from typing import Any

import pytest

from herald_contracts import RawRecord, WatchType, decode_domain_event, encode_domain_event
from processors.interpreting import MAX_TEXT, Outcome, interpret
from tests.support import ROLLOUT, rollout_event, validate

COLLECTED = "2026-08-20T09:17:00Z"


def run(event: dict[str, Any], *, cluster: str = "prod-eu") -> Outcome:
    record = RawRecord(
        cluster=cluster, watch_type=WatchType.ADDED, collected_at=COLLECTED, object=event
    )
    return interpret(record, last_n=None)


def emitted(event: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """The one domain event emitted, after checking it decodes and validates."""
    outcome = run(event, **kw)
    assert outcome.refused is None, outcome.refused
    [domain_event] = outcome.events
    encoded = encode_domain_event(domain_event)
    decoded = decode_domain_event(encoded, key=domain_event.key.encode())
    assert decoded.id == domain_event.id
    body: dict[str, Any] = json.loads(encoded)
    validate("deploy-event.v1.schema.json", body)
    return body


RESUMED = ("RolloutResumed", "Rollout is resumed")


@pytest.mark.parametrize(
    "times",
    [
        pytest.param({"lastTimestamp": "yesterday"}, id="words"),
        pytest.param({"lastTimestamp": "2026-08-20 09:16:53"}, id="no-T-no-zone"),
        pytest.param({"lastTimestamp": "2026-08-20T09:16:53"}, id="no-zone"),
        pytest.param({"lastTimestamp": "2026-02-30T09:16:53Z"}, id="february-30"),
        pytest.param({"lastTimestamp": "2026-08-20T23:59:60Z"}, id="leap-second"),
        pytest.param({"lastTimestamp": 1755681413}, id="a-number"),
        pytest.param({"lastTimestamp": ""}, id="empty"),
    ],
)
def test_a_time_that_is_not_rfc3339_is_skipped_for_the_next_candidate(
    times: dict[str, Any],
) -> None:
    event = {**rollout_event(*RESUMED), **times, "eventTime": "2026-08-20T09:16:50.123456Z"}
    body = emitted(event)
    assert body["time"] == "2026-08-20T09:16:50.123456Z"
    assert body["data"]["observed_at"] == body["time"]


def test_when_no_candidate_is_a_time_the_collection_time_is_used() -> None:
    event = rollout_event(*RESUMED)
    event.update(lastTimestamp="now", eventTime={"t": 1}, firstTimestamp="-1")
    event["metadata"]["creationTimestamp"] = "2026-13-01T00:00:00Z"
    event["series"] = {"count": 2, "lastObservedTime": "soon"}
    body = emitted(event)
    assert body["time"] == COLLECTED


def test_a_nul_character_in_a_message_survives_into_the_event() -> None:
    message = "Sync operation to abc failed: helm: \u0000 in output"
    event = {
        **rollout_event("OperationCompleted", message, component="argocd-application-controller"),
        "involvedObject": {**ROLLOUT, "kind": "Application"},
    }
    body = emitted(event)
    assert body["data"]["source_message"] == message
    assert body["data"]["detail"] == "helm: \u0000 in output"


@pytest.mark.parametrize(
    ("reason", "message", "field"),
    [
        ("RolloutPaused", "Rollout is paused (" + "p" * 200_000 + ")", "pause_reason"),
        ("RolloutStepCompleted", "Rollout step 1/2 completed (" + "s" * 200_000 + ")", "step"),
        (
            "RolloutCompleted",
            "Rollout completed update to revision 2 (" + "h" * 200_000 + "): done",
            "pod_hash",
        ),
    ],
)
def test_every_text_field_is_cut_to_the_limit(reason: str, message: str, field: str) -> None:
    body = emitted(rollout_event(reason, message))
    assert len(body["data"][field]) == MAX_TEXT
    assert body["data"][field].endswith("…")
    assert len(body["data"]["source_message"]) == MAX_TEXT


def test_a_revision_too_long_for_an_integer_is_refused_not_raised() -> None:
    outcome = run(rollout_event("RolloutUpdated", "Rollout updated to revision " + "9" * 5000))
    assert outcome.events == ()
    assert outcome.refused is not None
    assert "revision: a number of 5000 digits" in outcome.refused


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        pytest.param(
            {"resourceVersion": 48211102}, "source_event_resource_version", None, id="rv-int"
        ),
        pytest.param(
            {"resourceVersion": "r" * 100_000},
            "source_event_resource_version",
            None,
            id="rv-huge",
        ),
    ],
)
def test_metadata_of_the_wrong_type_or_size_becomes_null(
    change: dict[str, Any], field: str, expected: Any
) -> None:
    event = rollout_event(*RESUMED)
    event["metadata"].update(change)
    assert emitted(event)["data"][field] == expected


@pytest.mark.parametrize(
    "annotations",
    [
        pytest.param({"dest-server": 443, "dest-namespace": ["billing"]}, id="not-strings"),
        pytest.param({"dest-server": "s" * 100_000, "dest-namespace": None}, id="huge"),
    ],
)
def test_application_destinations_of_the_wrong_type_or_size_become_null(
    annotations: dict[str, Any],
) -> None:
    event = rollout_event(
        "OperationStarted",
        "Initiated automated sync to 'abc'",
        component="argocd-application-controller",
        involved={**ROLLOUT, "kind": "Application"},
    )
    event["metadata"]["annotations"] = annotations
    data = emitted(event)["data"]
    assert data["dest_server"] is None
    assert data["dest_namespace"] is None


@pytest.mark.parametrize(
    "count",
    [
        pytest.param(True, id="true"),
        pytest.param(2**31, id="past-int32"),
        pytest.param(10**400, id="huge"),
        pytest.param(2.0, id="float"),
    ],
)
def test_a_count_that_is_not_an_int32_counts_as_absent(count: Any) -> None:
    event = {**rollout_event(*RESUMED), "count": count}
    assert emitted(event)["data"]["source_event_count"] == 1


@pytest.mark.parametrize(
    ("cluster", "involved"),
    [
        pytest.param("prod-eu", {**ROLLOUT, "name": ""}, id="empty-name"),
        pytest.param("prod-eu", {**ROLLOUT, "name": "pay/ments"}, id="slash-in-name"),
        pytest.param("prod-eu", {**ROLLOUT, "name": "n" * 300}, id="name-too-long"),
        pytest.param("prod-eu", {**ROLLOUT, "name": 7}, id="name-not-a-string"),
        pytest.param("prod-eu", {**ROLLOUT, "namespace": {"n": 1}}, id="namespace-not-a-string"),
        pytest.param("prod-eu", {**ROLLOUT, "namespace": "bill/ing"}, id="slash-in-namespace"),
        pytest.param("prod/eu", ROLLOUT, id="slash-in-cluster"),
        # The domain topic's key has no control characters (the dispatcher sets such an event
        # aside as undeliverable): refused here, where the contract is broken, not downstream.
        pytest.param("prod-eu", {**ROLLOUT, "name": "pay\x00ments"}, id="nul-in-name"),
        pytest.param("prod-eu", {**ROLLOUT, "namespace": "bill\ning"}, id="newline-in-namespace"),
        pytest.param("prod-eu", {**ROLLOUT, "name": "pay\x7fments"}, id="delete-in-name"),
    ],
)
def test_an_event_about_an_object_that_cannot_be_named_is_refused(
    cluster: str, involved: dict[str, Any]
) -> None:
    outcome = run(rollout_event(*RESUMED, involved=involved), cluster=cluster)
    assert outcome.events == ()
    assert outcome.occurrence is None
    assert outcome.refused is not None


def test_a_lone_surrogate_which_no_utf8_can_carry_is_refused_not_raised() -> None:
    event = rollout_event("RolloutPaused", "Rollout is paused (\ud800)")
    outcome = run(event)
    assert outcome.events == ()
    assert outcome.refused is not None


def test_an_event_uid_too_long_is_refused() -> None:
    outcome = run(rollout_event(*RESUMED, uid="u" * 1000))
    assert outcome.refused is not None


def test_noise_is_never_refused_whatever_it_holds() -> None:
    noise = rollout_event(
        "Pulled", "\ud800", component="kubelet", involved={"kind": "Pod", "name": "a/b"}
    )
    assert run(noise, cluster="a/b") == Outcome()
