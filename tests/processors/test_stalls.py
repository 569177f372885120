from __future__ import annotations

from processors.stalls import StallGuard, UnreadyGuard, committable


def test_a_partition_with_waiting_records_stalls_when_its_commit_stays_put() -> None:
    guard = StallGuard(after_s=30)
    assert guard.check({"p0": (10, 50)}, now=0) == set()
    assert guard.check({"p0": (10, 60)}, now=29) == set()
    assert guard.check({"p0": (10, 60)}, now=30) == {"p0"}


def test_a_partition_never_committed_with_records_waiting_stalls_too() -> None:
    guard = StallGuard(after_s=30)
    guard.check({"p1": (None, 750)}, now=0)
    assert guard.check({"p1": (None, 750)}, now=31) == {"p1"}


def test_a_caught_up_or_empty_partition_never_stalls() -> None:
    guard = StallGuard(after_s=30)
    for now in (0, 40, 80):
        assert guard.check({"p0": (50, 50), "p1": (None, 0), "p2": (7, None)}, now=now) == set()


def test_progress_resets_the_clock() -> None:
    guard = StallGuard(after_s=30)
    guard.check({"p0": (10, 100)}, now=0)
    assert guard.check({"p0": (20, 100)}, now=31) == set()  # committed moved on
    assert guard.check({"p0": (20, 100)}, now=50) == set()
    assert guard.check({"p0": (20, 100)}, now=61) == {"p0"}


def test_catching_up_and_falling_behind_again_starts_a_new_clock() -> None:
    guard = StallGuard(after_s=30)
    guard.check({"p0": (10, 100)}, now=0)
    assert guard.check({"p0": (100, 100)}, now=20) == set()
    assert guard.check({"p0": (100, 130)}, now=40) == set()
    assert guard.check({"p0": (100, 130)}, now=69) == set()
    assert guard.check({"p0": (100, 130)}, now=70) == {"p0"}


def test_a_reset_while_recovering_forgets_the_clocks() -> None:
    guard = StallGuard(after_s=30)
    guard.check({"p0": (10, 100)}, now=0)
    guard.reset()
    assert guard.check({"p0": (10, 100)}, now=31) == set()
    assert guard.check({"p0": (10, 100)}, now=61) == {"p0"}


def test_a_worker_rebalancing_or_recovering_too_long_is_reported() -> None:
    guard = UnreadyGuard(after_s=30)
    assert not guard.check(unready=True, now=100)
    assert not guard.check(unready=True, now=129)
    assert guard.check(unready=True, now=130)


def test_becoming_ready_starts_the_unready_clock_over() -> None:
    guard = UnreadyGuard(after_s=30)
    guard.check(unready=True, now=100)
    assert not guard.check(unready=False, now=125)
    assert not guard.check(unready=True, now=126)
    assert not guard.check(unready=True, now=155)
    assert guard.check(unready=True, now=156)


def test_a_commit_stops_at_the_records_handled() -> None:
    assert committable(handled=3, committed=None) == 3  # whatever Faust acked past 3
    assert committable(handled=12, committed=None) == 12  # 11 handled, not acked by Faust yet
    assert committable(handled=3, committed=3) is None  # nothing forward of the committed one
    assert committable(handled=None, committed=None) is None  # nothing handled here
    assert committable(handled=8, committed=5) == 8
