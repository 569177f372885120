"""Events written through events.k8s.io/v1 (read in the core/v1 view with `source: {}`, no `count`,
the emitter in `reportingComponent`, repeats in `series.count`) match the same catalogue rows and give
the same domain events as their core/v1 twins: same type, fields, id, and the same repeats and
duplicates. Only the time differs, each being the time its own Event carries."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald_contracts import DomainEvent, RawRecord, WatchType, encode_raw_record
from processors.interpreting import Abort, Outcome, RolloutState, interpret
from processors.processing import process
from processors.state import Keeper
from tests.processors.test_interpreting import APP, APP_ROWS, ROWS, SERVER_ROWS, app_event
from tests.support import ROLLOUT, events_api_event, rollout_event

EVENT_TIME = "2026-08-20T09:14:27.482913Z"
LAST_OBSERVED = "2026-08-20T09:16:53.120334Z"
ANNOTATIONS = {"dest-server": "https://kubernetes.default.svc", "dest-namespace": "billing"}


def record(event: dict[str, Any], *, watch_type: WatchType = WatchType.ADDED) -> RawRecord:
    return RawRecord(
        cluster="prod-eu", watch_type=watch_type, collected_at="2026-08-20T09:17:00Z", object=event
    )


def run(event: dict[str, Any], *, last_n: int | None = None, aborted: bool = False) -> Outcome:
    state = RolloutState(Abort.ABORTED) if aborted else RolloutState()
    return interpret(record(event), last_n=last_n, rollout=state)


def timeless(event: DomainEvent) -> DomainEvent:
    """The domain event without its time: the one thing that differs between the twins."""
    data = {k: v for k, v in event.data.items() if k != "observed_at"}
    return dataclasses.replace(event, time="", data=data)


def app_events_api_event(reason: str, message: str, **kw: Any) -> dict[str, Any]:
    event = events_api_event(reason, message, involved=APP, **kw)
    event["metadata"]["annotations"] = dict(ANNOTATIONS)
    return event


@pytest.mark.parametrize(
    ("reason", "message", "domain_type", "fields"), ROWS, ids=[f"{r[0]}:{r[1][:40]}" for r in ROWS]
)
def test_an_events_api_rollout_event_gives_the_domain_event_of_its_core_v1_twin(
    reason: str, message: str, domain_type: str, fields: dict[str, Any]
) -> None:
    [new] = run(events_api_event(reason, message, uid="u-1")).events
    [old] = run(rollout_event(reason, message, uid="u-1")).events
    assert new.type == f"dev.herald.{domain_type}"
    assert {k: new.data[k] for k in fields} == fields
    assert timeless(new) == timeless(old)
    assert new.time == new.data["observed_at"] == EVENT_TIME


@pytest.mark.parametrize(
    ("reason", "message", "component", "domain_type"),
    [(r[0], r[1], "argocd-application-controller", r[2]) for r in APP_ROWS]
    + [(r[0], r[1], "argocd-server", r[2]) for r in SERVER_ROWS],
    ids=[f"controller-{r[0]}:{r[1][:40]}" for r in APP_ROWS]
    + [f"server-{r[0]}:{r[1][:40]}" for r in SERVER_ROWS],
)
def test_an_events_api_application_event_gives_the_domain_event_of_its_core_v1_twin(
    reason: str, message: str, component: str, domain_type: str
) -> None:
    [new] = run(app_events_api_event(reason, message, controller=component, uid="u-2")).events
    [old] = run(app_event(reason, message, component=component, uid="u-2")).events
    assert new.type == f"dev.herald.{domain_type}"
    assert (new.data["dest_server"], new.data["dest_namespace"]) == (
        "https://kubernetes.default.svc",
        "billing",
    )
    assert timeless(new) == timeless(old)


def test_a_repeat_in_a_series_is_a_new_occurrence_with_the_id_of_its_core_v1_twin() -> None:
    resumed = ("RolloutResumed", "Rollout is resumed")
    first = run(events_api_event(*resumed, uid="u-1"))
    repeat = run(events_api_event(*resumed, uid="u-1", series_count=2), last_n=1)
    twin = run(rollout_event(*resumed, uid="u-1", count=2), last_n=1)
    assert repeat.occurrence is not None
    assert (repeat.occurrence.key, repeat.occurrence.n) == ("prod-eu/u-1", 2)
    assert repeat.events[0].id != first.events[0].id
    assert repeat.events[0].id == twin.events[0].id
    assert repeat.events[0].data["source_event_count"] == 2
    assert repeat.events[0].time == LAST_OBSERVED


@pytest.mark.parametrize("last_n", [2, 3])
def test_a_series_count_already_processed_is_a_duplicate(last_n: int) -> None:
    event = events_api_event("RolloutResumed", "Rollout is resumed", uid="u-1", series_count=2)
    assert run(event, last_n=last_n) == Outcome(duplicate=True)


def test_a_stream_of_events_api_records_repeats_and_deduplicates_as_its_core_v1_twin() -> None:
    """A first occurrence, a relist of it, a repeat, a redelivery of the repeat, a later flush of
    the series: through the state the processor keeps, as the worker runs it."""
    resumed = ("RolloutResumed", "Rollout is resumed")
    steps = [(None, WatchType.ADDED), (None, WatchType.ADDED), (2, WatchType.MODIFIED)]
    steps += [(2, WatchType.MODIFIED), (5, WatchType.MODIFIED)]

    def stream(build: Any) -> list[tuple[str, list[str]]]:
        state = Keeper({}, {}, retention_s=86_400)
        results = []
        for offset, (n, watch_type) in enumerate(steps):
            value = encode_raw_record(record(build(n), watch_type=watch_type))
            processed = process(
                value, state=state, partition=0, offset=offset, at=1_000.0, committed=None
            )
            results.append((processed.outcome, [e.id for e in processed.events]))
        return results

    new = stream(lambda n: events_api_event(*resumed, uid="u-1", series_count=n))
    old = stream(lambda n: rollout_event(*resumed, uid="u-1", count=n or 1))
    assert [outcome for outcome, _ in new] == [
        "interpreted",
        "duplicate",
        "interpreted",
        "duplicate",
        "interpreted",
    ]
    assert new == old


def test_an_abort_written_through_events_api_sets_the_rollouts_aborted_state() -> None:
    outcome = run(events_api_event("RolloutAborted", "Rollout aborted update to revision 3"))
    assert (outcome.rollout_key, outcome.rollout) == (
        "prod-eu/billing/payments",
        RolloutState(Abort.ABORTED, 3),
    )
    deadline = events_api_event("RolloutAborted", 'Rollout "payments" has timed out progressing.')
    assert run(deadline, aborted=True).events == ()


@pytest.mark.parametrize(
    ("event", "outside"),
    [
        pytest.param(
            events_api_event("RolloutResumed", "Rollout is resumed"),
            {"reportingComponent": "kube-scheduler"},
            id="another-controller",
        ),
        pytest.param(
            events_api_event(
                "RolloutCompleted", "Rollout completed update to revision 2 (a): Initial deploy"
            ),
            {"reportingComponent": "argocd-server"},
            id="argocd-server-on-rollout",
        ),
        pytest.param(
            events_api_event("RolloutResumed", "Rollout is resumed"),
            {"involvedObject": {**ROLLOUT, "kind": "AnalysisRun"}},
            id="analysisrun",
        ),
        pytest.param(
            events_api_event("RolloutResumed", "Rollout is resumed"),
            {"reportingComponent": ""},
            id="no-component-at-all",
        ),
        pytest.param(
            app_events_api_event(
                "OperationCompleted",
                "Sync operation to abc succeeded",
                controller="argocd-application-controller",
            ),
            {"reportingComponent": "argocd-repo-server"},
            id="other-argocd-component",
        ),
    ],
)
def test_an_events_api_event_matches_only_from_a_catalogue_component_and_object(
    event: dict[str, Any], outside: dict[str, Any]
) -> None:
    assert run(event).events
    assert run({**event, **outside}) == Outcome()


def as_written_through_events_api(core: dict[str, Any]) -> dict[str, Any]:
    """The same Event had its emitter written it through events.k8s.io/v1 (client-go `tools/events`):
    its core/v1 view, per kubernetes `pkg/apis/events/v1/conversion.go` and the events.k8s.io/v1
    validation (no `source`, `count`, `firstTimestamp`, `lastTimestamp`; `series.count` >= 2)."""
    event = {k: v for k, v in core.items() if k != "count"}
    source = core.get("source") or {}
    component = source.get("component") or core.get("reportingComponent")
    event |= {
        "source": {},
        "firstTimestamp": None,
        "lastTimestamp": None,
        "eventTime": EVENT_TIME,
        "action": "Update",
        "reportingComponent": component,
        "reportingInstance": f"{component}-host-1",
    }
    if (core.get("count") or 1) > 1:
        event["series"] = {"count": core["count"], "lastObservedTime": LAST_OBSERVED}
    return event


ALL_ROWS = [(rollout_event, r) for r in ROWS] + [(app_event, r) for r in APP_ROWS]


@settings(max_examples=200, deadline=None)
@given(
    row=st.sampled_from(ALL_ROWS),
    count=st.one_of(st.none(), st.integers(1, 6)),
    reporting=st.sampled_from(["", "same"]),
    aggregated=st.booleans(),
    last_n=st.one_of(st.none(), st.integers(0, 6)),
    aborted=st.booleans(),
)
def test_writing_an_event_through_events_api_changes_nothing_but_its_time(
    row: Any,
    count: int | None,
    reporting: str,
    aggregated: bool,
    last_n: int | None,
    aborted: bool,
) -> None:
    build, (reason, message, _, _) = row
    prefix = "(combined from similar events): " if aggregated else ""
    core = build(reason, prefix + message, uid="u-1", count=count)
    if reporting == "same":
        core["reportingComponent"] = core["source"]["component"]
    old = run(core, last_n=last_n, aborted=aborted)
    new = run(as_written_through_events_api(core), last_n=last_n, aborted=aborted)
    assert dataclasses.replace(new, events=()) == dataclasses.replace(old, events=())
    assert [timeless(e) for e in new.events] == [timeless(e) for e in old.events]
