from __future__ import annotations

import copy

from collectors.records import to_raw_record
from herald_contracts import WatchType
from tests.support import rollout_event


def test_managed_fields_are_removed_and_everything_else_kept() -> None:
    event = rollout_event("RolloutPaused", "Rollout is paused (CanaryPauseStep)", count=2)
    record = to_raw_record(
        cluster="prod", watch_type="MODIFIED", event=event, collected_at="2026-08-20T09:16:54Z"
    )
    expected = copy.deepcopy(event)
    del expected["metadata"]["managedFields"]
    assert record.object == expected
    assert record.watch_type is WatchType.MODIFIED


def test_the_callers_event_is_not_changed() -> None:
    event = rollout_event("RolloutResumed", "Rollout is resumed")
    before = copy.deepcopy(event)
    to_raw_record(cluster="prod", watch_type="ADDED", event=event, collected_at="t")
    assert event == before


def test_an_event_without_metadata_still_becomes_a_record() -> None:
    record = to_raw_record(
        cluster="prod", watch_type="DELETED", event={"reason": "X"}, collected_at="t"
    )
    assert record.object == {"reason": "X"}
    assert record.key == "prod///"
