from __future__ import annotations

from processors.stalls import StallGuard, gapped


def test_a_hole_at_the_head_of_the_acknowledged_offsets_is_a_gap() -> None:
    assert gapped({"p0": [12, 13], "p1": [5, 6], "p2": []}, {"p0": 10, "p1": 5, "p2": 3}) == {"p0"}


def test_a_partition_never_committed_is_not_judged() -> None:
    assert gapped({"p0": [12]}, {"p0": None}) == set()


def test_a_gap_stalls_only_when_it_lasts_at_the_same_committed_offset() -> None:
    guard = StallGuard(after_s=30)
    assert guard.check({"p0": [12]}, {"p0": 10}, now=0) == set()
    assert guard.check({"p0": [12]}, {"p0": 10}, now=29) == set()
    assert guard.check({"p0": [12]}, {"p0": 10}, now=30) == {"p0"}


def test_progress_or_a_filled_gap_resets_the_clock() -> None:
    guard = StallGuard(after_s=30)
    guard.check({"p0": [12]}, {"p0": 10}, now=0)
    assert guard.check({"p0": [22]}, {"p0": 20}, now=31) == set()  # committed moved on
    assert guard.check({"p0": []}, {"p0": 23}, now=40) == set()
    assert guard.check({"p0": [30]}, {"p0": 25}, now=45) == set()  # a new gap starts its own clock
