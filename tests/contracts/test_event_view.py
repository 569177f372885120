"""One view of an Event whichever API wrote it (`herald_contracts.event_view`): the emitting component,
instance, occurrence count and times, read from the core/v1 fields an old-style recorder fills or
from those an events.k8s.io/v1 writer fills, including partial and malformed shapes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald_contracts import EventView, RawRecord, WatchType, observed_at, view_event
from tests.support import events_api_event, rollout_event

MISSING = object()
"""A field left out of the Event altogether."""


def facts(view: EventView) -> dict[str, Any]:
    return {
        "component": view.component,
        "instance": view.instance,
        "count": view.count,
        "observed_at": view.observed_at,
        "first_observed_at": view.first_observed_at,
    }


def _with(event: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """`event` with fields set, or removed where the value is MISSING."""
    changed = {**event, **fields}
    return {k: v for k, v in changed.items() if v is not MISSING}


def test_a_core_v1_event_reads_from_its_source_count_and_timestamps() -> None:
    event = rollout_event("RolloutPaused", "Rollout is paused (CanaryPauseStep)", count=2)
    assert facts(view_event(event)) == {
        "component": "rollouts-controller",
        "instance": None,
        "count": 2,
        "observed_at": "2026-08-20T09:16:53Z",
        "first_observed_at": "2026-08-20T09:14:27Z",
    }


def test_an_events_api_event_reads_from_its_reporting_fields_series_and_event_time() -> None:
    event = events_api_event(
        "RolloutPaused",
        "Rollout is paused (CanaryPauseStep)",
        series_count=3,
        event_time="2026-08-20T09:14:27.000001Z",
        last_observed_time="2026-08-20T09:16:53.123456Z",
    )
    assert (event["source"], event["firstTimestamp"], event["lastTimestamp"]) == ({}, None, None)
    assert "count" not in event
    assert facts(view_event(event)) == {
        "component": "rollouts-controller",
        "instance": "rollouts-controller-argo-rollouts-5d4c9b7f8-x2k4q",
        "count": 3,
        "observed_at": "2026-08-20T09:16:53.123456Z",
        "first_observed_at": "2026-08-20T09:14:27.000001Z",
    }


def test_a_single_events_api_event_counts_once_and_was_observed_at_its_event_time() -> None:
    event = events_api_event("RolloutResumed", "Rollout is resumed")
    view = view_event(event)
    assert (view.count, view.observed_at) == (1, event["eventTime"])
    assert view.first_observed_at == event["eventTime"]


@pytest.mark.parametrize(
    ("source", "reporting", "component"),
    [
        pytest.param({"component": "rollouts-controller"}, "", "rollouts-controller", id="v1.6"),
        pytest.param(
            {"component": "rollouts-controller"}, MISSING, "rollouts-controller", id="old"
        ),
        pytest.param(
            {"component": "rollouts-controller"},
            "rollouts-controller",
            "rollouts-controller",
            id="client-go-0.28",
        ),
        pytest.param({}, "rollouts-controller", "rollouts-controller", id="source-empty"),
        pytest.param(MISSING, "rollouts-controller", "rollouts-controller", id="source-missing"),
        pytest.param(None, "rollouts-controller", "rollouts-controller", id="source-null"),
        pytest.param({"component": ""}, "argocd-server", "argocd-server", id="component-empty"),
        pytest.param({"host": "node-1"}, "kubelet", "kubelet", id="host-only"),
        pytest.param({"component": "a"}, "b", "a", id="source-wins-when-both"),
        pytest.param({}, "", None, id="both-empty"),
        pytest.param(MISSING, MISSING, None, id="both-missing"),
        pytest.param({"component": 7}, ["x"], None, id="both-wrong-types"),
        pytest.param("kubelet", "kubelet", "kubelet", id="source-not-an-object"),
    ],
)
def test_the_component_is_source_component_else_reporting_component(
    source: Any, reporting: Any, component: str | None
) -> None:
    event = _with(rollout_event("X", "y"), source=source, reportingComponent=reporting)
    assert view_event(event).component == component


@pytest.mark.parametrize(
    ("source", "reporting", "instance"),
    [
        pytest.param({"component": "kubelet", "host": "node-1"}, "", "node-1", id="host"),
        pytest.param({"component": "kubelet", "host": "node-1"}, "i-2", "node-1", id="host-wins"),
        pytest.param({}, "kube-scheduler-cp-1", "kube-scheduler-cp-1", id="source-empty"),
        pytest.param({"host": ""}, "i-2", "i-2", id="host-empty"),
        pytest.param(MISSING, "i-2", "i-2", id="source-missing"),
        pytest.param({"component": "rollouts-controller"}, "", None, id="none"),
        pytest.param({"host": 3}, MISSING, None, id="wrong-type"),
    ],
)
def test_the_instance_is_source_host_else_reporting_instance(
    source: Any, reporting: Any, instance: str | None
) -> None:
    event = _with(rollout_event("X", "y"), source=source, reportingInstance=reporting)
    assert view_event(event).instance == instance


@pytest.mark.parametrize(
    ("count", "series", "n"),
    [
        pytest.param(4, MISSING, 4, id="count"),
        pytest.param(
            MISSING, {"count": 5, "lastObservedTime": "2026-08-20T10:00:00Z"}, 5, id="series"
        ),
        pytest.param(1, {"count": 5}, 5, id="series-wins-as-kubectl-shows-it"),
        pytest.param(MISSING, MISSING, 1, id="neither"),
        pytest.param(None, None, 1, id="both-null"),
        pytest.param(3, {"lastObservedTime": "2026-08-20T10:00:00Z"}, 3, id="series-without-count"),
        pytest.param(3, {"count": 0}, 3, id="series-count-zero"),
        pytest.param(3, {"count": "5"}, 3, id="series-count-a-string"),
        pytest.param(3, "5", 3, id="series-not-an-object"),
        pytest.param(0, MISSING, 1, id="count-zero"),
        pytest.param(-2, MISSING, 1, id="count-negative"),
        pytest.param(True, MISSING, 1, id="count-a-boolean"),
        pytest.param(2.0, MISSING, 1, id="count-a-float"),
        pytest.param(2**31, MISSING, 1, id="count-over-int32"),
        pytest.param(2**31 - 1, MISSING, 2**31 - 1, id="count-int32-max"),
    ],
)
def test_the_count_is_series_count_else_count_else_one(count: Any, series: Any, n: int) -> None:
    event = _with(rollout_event("X", "y"), count=count, series=series)
    assert view_event(event).count == n


@pytest.mark.parametrize(
    ("fields", "observed"),
    [
        pytest.param(
            {"series": {"count": 2, "lastObservedTime": "2026-08-20T10:00:00.5Z"}},
            "2026-08-20T10:00:00.5Z",
            id="series-first",
        ),
        pytest.param({}, "2026-08-20T09:16:53Z", id="last-timestamp"),
        pytest.param(
            {"lastTimestamp": None, "eventTime": "2026-08-20T09:15:00.000001Z"},
            "2026-08-20T09:15:00.000001Z",
            id="event-time",
        ),
        pytest.param({"lastTimestamp": None}, "2026-08-20T09:14:27Z", id="first-timestamp"),
        pytest.param(
            {"lastTimestamp": "yesterday", "eventTime": None, "firstTimestamp": None},
            "2026-08-20T09:14:27Z",
            id="creation-timestamp",
        ),
        pytest.param(
            {"lastTimestamp": None, "firstTimestamp": None, "metadata": {"uid": "u"}},
            None,
            id="none",
        ),
    ],
)
def test_observed_at_is_the_latest_time_the_event_carries(
    fields: dict[str, Any], observed: str | None
) -> None:
    assert view_event(_with(rollout_event("X", "y"), **fields)).observed_at == observed


def test_first_observed_at_is_first_timestamp_else_event_time() -> None:
    core = rollout_event("X", "y")
    assert view_event(core).first_observed_at == "2026-08-20T09:14:27Z"
    new = events_api_event("X", "y", event_time="2026-08-20T09:14:27.5Z")
    assert view_event(new).first_observed_at == "2026-08-20T09:14:27.5Z"
    bare = _with(core, firstTimestamp=None, metadata={"uid": "u"})
    assert view_event(bare).first_observed_at is None


def test_a_record_without_any_event_time_was_observed_when_it_was_collected() -> None:
    event = _with(rollout_event("X", "y"), lastTimestamp=None, firstTimestamp=None, metadata={})
    record = RawRecord(
        cluster="c", watch_type=WatchType.ADDED, collected_at="2026-08-20T09:17:00Z", object=event
    )
    assert observed_at(record) == "2026-08-20T09:17:00Z"


@pytest.mark.parametrize("event", [{}, {"source": [], "series": 3, "metadata": "x"}])
def test_any_json_object_gives_a_view(event: dict[str, Any]) -> None:
    assert facts(view_event(event)) == {
        "component": None,
        "instance": None,
        "count": 1,
        "observed_at": None,
        "first_observed_at": None,
    }


def test_the_view_leaves_the_event_unchanged() -> None:
    event = events_api_event("RolloutResumed", "Rollout is resumed", series_count=2)
    before = copy.deepcopy(event)
    facts(view_event(event))
    assert event == before


maybe_text = st.one_of(st.none(), st.text(max_size=8), st.integers(), st.just(MISSING))


@given(component=maybe_text, reporting=maybe_text)
def test_the_component_is_a_non_empty_source_component_whenever_there_is_one(
    component: Any, reporting: Any
) -> None:
    source = _with({}, component=component)
    view = view_event(_with({}, source=source, reportingComponent=reporting))
    if isinstance(component, str) and component:
        assert view.component == component
    elif isinstance(reporting, str) and reporting:
        assert view.component == reporting
    else:
        assert view.component is None
