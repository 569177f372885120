"""Table state judged as it stood before a record's own offset, so a record read again after a crash
decides what its first reading decided."""

from __future__ import annotations

from typing import Any

from processors.timelines import Timeline, record, value_before


def _process(
    timeline: Timeline, records: list[tuple[int, int]], committed: int | None
) -> tuple[Timeline, list[int]]:
    """Occurrence dedup over (offset, n) records; returns the offsets that produce events."""
    produced = []
    for offset, n in records:
        if n > value_before(timeline, offset, 0):
            produced.append(offset)
            timeline = record(timeline, offset, n, committed=committed)
    return timeline, produced


def test_a_value_is_the_one_set_by_the_last_change_below_the_offset() -> None:
    timeline: list[list[Any]] = [[10, True], [20, False]]
    assert value_before(timeline, 10, None) is None
    assert value_before(timeline, 11, None) is True
    assert value_before(timeline, 20, None) is True
    assert value_before(timeline, 21, None) is False
    assert value_before([], 5, "default") == "default"
    assert value_before(None, 5, 0) == 0


def test_first_reading_skips_duplicates_and_stale_copies_and_keeps_higher_counts() -> None:
    records = [(50, 1), (55, 1), (60, 2), (70, 1), (80, 3)]
    _, produced = _process([], records, committed=None)
    assert produced == [50, 60, 80]


def test_records_read_again_after_their_state_was_saved_decide_the_same() -> None:
    records = [(50, 1), (55, 1), (60, 2), (70, 1), (80, 3)]
    saved, first = _process([], records, committed=None)
    # The changelog of every record landed, the events of those from offset 55 on did not: the
    # worker re-reads from its committed offset, 55.
    _, again = _process(saved, [r for r in records if r[0] >= 55], committed=55)
    assert again == [o for o in first if o >= 55]


def test_a_stale_lower_count_read_again_invents_no_occurrence() -> None:
    # A plain "highest n, and the offset that set it" would let offset 70 (n=1) through on a
    # re-read, because the saved state (n=3 at 80) comes from after it.
    saved, _ = _process([], [(50, 2), (70, 1), (80, 3)], committed=None)
    _, again = _process(saved, [(70, 1), (80, 3)], committed=70)
    assert again == [80]


def test_recording_the_same_offset_again_replaces_its_change() -> None:
    timeline = record([[5, 1], [9, 2]], 9, 2, committed=None)
    assert timeline == [[5, 1], [9, 2]]
    assert record(timeline, 7, 4, committed=None) == [[5, 1], [7, 4], [9, 2]]


def test_changes_below_the_committed_offset_fold_into_the_one_in_force_there() -> None:
    timeline = [[1, True], [4, False], [8, True], [12, False]]
    assert record(timeline, 15, True, committed=10) == [[8, True], [12, False], [15, True]]
    assert value_before(record(timeline, 15, True, committed=10), 10, None) is True


def test_a_timeline_without_a_committed_offset_keeps_a_bounded_number_of_changes() -> None:
    timeline: Timeline = []
    for offset in range(100):
        timeline = record(timeline, offset, offset % 2 == 0, committed=None, keep=8)
    assert len(timeline) == 8
    assert timeline[-1] == [99, False]
