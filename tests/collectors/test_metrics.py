"""The collector's event lag takes each Event's own time from the contract's Event view
(`herald_contracts.view_event`), as the processors do for the domain event's time."""

from __future__ import annotations

from collectors.metrics import ScopeMetrics
from tests.support import rollout_event


def test_an_event_without_times_is_timed_by_its_creation_as_the_event_view_says() -> None:
    metrics = ScopeMetrics("c", "*")
    metrics.observed({**rollout_event("X", "y"), "firstTimestamp": None, "lastTimestamp": None})
    assert metrics.newest_event_time == 1787217267.0  # metadata.creationTimestamp
