"""The rules of the processor's state (`processors.state`): what a record reads, what is kept, and
what a sweep or a recovery forgets."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.interpreting import Abort, Occurrence, Outcome, RolloutState
from processors.state import Keeper, dead_on_arrival, kept, rollout_state

DAY = 86_400.0
HOUR = 3_600.0


def keeper() -> Keeper:
    return Keeper({}, {}, retention_s=DAY)


ABORTED = RolloutState(Abort.ABORTED)
MOVED_ON = RolloutState()


def occurrence_outcome(
    uid: str, n: int, *, rollout: str | None = None, state: RolloutState | None = None
) -> Outcome:
    return Outcome(occurrence=Occurrence("c", uid, n), rollout_key=rollout, rollout=state)


def remember(
    state: Keeper,
    outcome: Outcome,
    *,
    offset: int,
    at: float,
    partition: int = 0,
    rollout_before: RolloutState = MOVED_ON,
    committed: int | None = None,
) -> None:
    state.remember(
        outcome,
        partition=partition,
        offset=offset,
        at=at,
        rollout_before=rollout_before,
        committed=committed,
    )


def test_a_record_reads_an_occurrence_only_within_the_retention_of_its_own_time() -> None:
    state = keeper()
    remember(state, occurrence_outcome("u", 1), offset=5, at=1000.0)
    seen = Occurrence("c", "u", 1)
    assert state.before(seen, None, offset=6, at=1000.0 + DAY) == (1, MOVED_ON)
    assert state.before(seen, None, offset=6, at=1000.0 + DAY + 1) == (None, MOVED_ON)


def test_a_change_after_the_retention_starts_a_fresh_timeline() -> None:
    state = keeper()
    remember(state, occurrence_outcome("u", 3), offset=5, at=0.0)
    remember(state, occurrence_outcome("u", 1), offset=9, at=2 * DAY)
    entry = kept(state.occurrences["c/u"])
    assert entry is not None
    assert entry.timeline == [[9, 1]]
    assert entry.at == 2 * DAY


def test_an_older_record_time_does_not_shorten_an_entrys_life() -> None:
    state = keeper()
    remember(state, occurrence_outcome("u", 1), offset=5, at=5000.0)
    remember(state, occurrence_outcome("u", 2), offset=6, at=4000.0)  # a collector's clock behind
    entry = kept(state.occurrences["c/u"])
    assert entry is not None
    assert entry.at == 5000.0


def test_an_abort_is_read_until_the_retention_and_then_forgotten() -> None:
    state = keeper()
    remember(state, occurrence_outcome("a", 1, rollout="c/ns/r", state=ABORTED), offset=10, at=0.0)
    seen = Occurrence("c", "b", 1)
    assert state.before(seen, "c/ns/r", offset=11, at=DAY) == (None, ABORTED)
    assert state.before(seen, "c/ns/r", offset=11, at=DAY + 1) == (None, MOVED_ON)


def _doomed(
    state: Keeper,
    *,
    now: float,
    committed: dict[int, int] | None = None,
    owned: set[int] | None = None,
) -> set[tuple[str, Any]]:
    return {
        (d.table, d.key) for d in state.expired(now=now, committed=committed or {}, owned=owned)
    }


def test_a_sweep_forgets_occurrences_past_the_retention_by_the_wall_clock() -> None:
    state = keeper()
    remember(state, occurrence_outcome("old", 1), offset=1, at=0.0)
    remember(state, occurrence_outcome("new", 1), offset=2, at=DAY)
    assert _doomed(state, now=DAY) == set()
    assert _doomed(state, now=DAY + 1) == {("occurrences", "c/old")}


def test_a_rollout_with_nothing_to_remember_is_forgotten_once_committed_past_every_change() -> None:
    state = keeper()
    remember(state, occurrence_outcome("a", 1, rollout="c/ns/r", state=ABORTED), offset=10, at=0.0)
    remember(
        state,
        occurrence_outcome("p", 1, rollout="c/ns/r", state=MOVED_ON),
        offset=20,
        at=1.0,
        rollout_before=ABORTED,
    )
    # A re-read from offset 15 needs "aborted" before 20: kept while the commit is not past 20.
    assert ("rollouts", "c/ns/r") not in _doomed(state, now=2.0, committed={0: 15})
    assert ("rollouts", "c/ns/r") not in _doomed(state, now=2.0, committed={0: 20})
    assert ("rollouts", "c/ns/r") in _doomed(state, now=2.0, committed={0: 21})
    assert ("rollouts", "c/ns/r") not in _doomed(state, now=2.0)  # committed offset unknown


def test_a_rollout_still_aborted_is_kept_until_the_retention() -> None:
    state = keeper()
    remember(state, occurrence_outcome("a", 1, rollout="c/ns/r", state=ABORTED), offset=10, at=0.0)
    assert ("rollouts", "c/ns/r") not in _doomed(state, now=DAY, committed={0: 99})
    assert ("rollouts", "c/ns/r") in _doomed(state, now=DAY + 1, committed={0: 99})


def test_a_sweep_deletes_only_in_the_partitions_the_worker_owns() -> None:
    state = keeper()
    remember(state, occurrence_outcome("p0", 1), offset=1, at=0.0, partition=0)
    remember(state, occurrence_outcome("p2", 1), offset=1, at=0.0, partition=2)
    assert _doomed(state, now=2 * DAY, owned={2}) == {("occurrences", "c/p2")}


def test_values_of_an_older_version_are_forgotten_without_a_partition() -> None:
    # faust's windowed table stored (key, (start, end)) -> [[offset, n], ...]
    state = Keeper({("c/u", (0.0, 43200.0)): [[5, 1]]}, {}, retention_s=DAY)
    [doomed] = state.expired(now=0.0, committed={})
    assert (doomed.key, doomed.partition) == (("c/u", (0.0, 43200.0)), None)
    assert dead_on_arrival([[5, 1]], now=0.0, retention_s=DAY)
    assert dead_on_arrival([0, "yesterday", []], now=0.0, retention_s=DAY)


def test_recovery_drops_what_is_past_its_retention_and_keeps_the_rest() -> None:
    live = [1, 1000.0, [[4, 2]]]
    old = [1, 1000.0 - DAY - 1, [[4, 2]]]
    assert not dead_on_arrival(live, now=1000.0, retention_s=DAY)
    assert dead_on_arrival(old, now=1000.0, retention_s=DAY)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.integers(1, 5), st.floats(0, 3 * DAY), st.booleans()),
        max_size=80,
    ),
    st.floats(0, 4 * DAY),
)
def test_after_a_sweep_nothing_is_held_past_its_retention(
    changes: list[tuple[int, int, float, bool]], now: float
) -> None:
    state = keeper()
    for offset, (uid, n, at, abort) in enumerate(changes):
        outcome = occurrence_outcome(
            f"u{uid}", n, rollout=f"c/ns/r{uid % 3}", state=ABORTED if abort else MOVED_ON
        )
        remember(state, outcome, offset=offset, at=at)
    for doomed in list(state.expired(now=now, committed={0: len(changes)})):
        table = state.occurrences if doomed.table == "occurrences" else state.rollouts
        del table[doomed.key]
    for table in (state.occurrences, state.rollouts):
        for value in table.values():
            entry = kept(value)
            assert entry is not None
            assert now - entry.at <= DAY
    for value in state.rollouts.values():  # what stays of a rollout is something to remember
        entry = kept(value)
        assert entry is not None
        assert rollout_state(entry.timeline[-1][1]) != MOVED_ON


def test_a_rollout_whose_revision_is_known_is_kept_until_the_retention() -> None:
    state = keeper()
    at_three = RolloutState(Abort.NO, 3)
    remember(state, occurrence_outcome("u", 1, rollout="c/ns/r", state=at_three), offset=10, at=0.0)
    assert ("rollouts", "c/ns/r") not in _doomed(state, now=DAY, committed={0: 99})
    assert state.before(Occurrence("c", "x", 1), "c/ns/r", offset=11, at=DAY) == (None, at_three)
    assert ("rollouts", "c/ns/r") in _doomed(state, now=DAY + 1, committed={0: 99})


def test_an_earlier_versions_abort_flags_read_as_abort_states() -> None:
    assert rollout_state(True) == ABORTED
    assert rollout_state(False) == MOVED_ON
    assert rollout_state(["timed_out", 4]) == RolloutState(Abort.TIMED_OUT, 4)
    assert rollout_state(["someday", 4]) == MOVED_ON  # a shape of no version: the default
