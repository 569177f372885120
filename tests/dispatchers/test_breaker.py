from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatchers.breaker import BUCKETS, BreakerPolicy, Breakers, State, _Window

POLICY = BreakerPolicy(
    window_s=300,
    min_attempts=10,
    failure_ratio=0.7,
    pause_s=30,
    max_pause_s=100,
    max_in_flight=4,
    suspect_budget=2,
)


def _attempts(breakers: Breakers, key: str, results: list[bool], *, now: float) -> State:
    state = State.CLOSED
    for ok in results:
        assert breakers.begin(key, now)
        state = breakers.end(key, success=ok, now=now)
    return state


def test_mostly_failing_recent_attempts_open_the_breaker() -> None:
    breakers = Breakers(POLICY)
    assert _attempts(breakers, "s", [False] * 6 + [True] * 3, now=0) is State.CLOSED  # 9 < 10
    assert _attempts(breakers, "s", [False], now=1) is State.OPEN  # 7 of 10 failed
    assert breakers.held(now=2) == {"s"}
    assert not breakers.begin("s", now=2)


def test_failures_below_the_ratio_or_outside_the_window_keep_it_closed() -> None:
    breakers = Breakers(POLICY)
    assert _attempts(breakers, "s", [False] * 6 + [True] * 4, now=0) is State.CLOSED
    assert _attempts(breakers, "t", [False] * 9, now=0) is State.CLOSED
    assert _attempts(breakers, "t", [False], now=301) is State.CLOSED  # the 9 left the window


def test_after_the_pause_one_probe_goes_out_and_success_closes_it() -> None:
    breakers = Breakers(POLICY)
    _attempts(breakers, "s", [False] * 10, now=0)
    assert not breakers.begin("s", now=29)
    assert breakers.begin("s", now=30)  # the probe
    assert breakers.held(now=31) == {"s"}  # one probe at a time
    assert not breakers.begin("s", now=31)
    assert breakers.end("s", success=True, now=32) is State.CLOSED
    assert breakers.held(now=32) == set()


def test_a_failed_probe_opens_it_again_for_twice_the_pause_up_to_the_maximum() -> None:
    breakers = Breakers(POLICY)
    _attempts(breakers, "s", [False] * 10, now=0)
    assert breakers.begin("s", now=30)
    assert breakers.end("s", success=False, now=30) is State.OPEN
    assert not breakers.begin("s", now=89)
    assert breakers.begin("s", now=90)  # 60 s later
    breakers.end("s", success=False, now=90)
    assert not breakers.begin("s", now=189)
    assert breakers.begin("s", now=190)  # capped at 100 s


def test_other_subscriptions_are_not_held_by_one_that_fails() -> None:
    breakers = Breakers(POLICY)
    _attempts(breakers, "bad", [False] * 10, now=0)
    assert breakers.begin("good", now=1)
    breakers.end("good", success=True, now=1)
    assert breakers.held(now=1) == {"bad"}


def _concurrent(breakers: Breakers, key: str) -> int:
    """How many attempts `key` may start at once now (they are ended again afterwards)."""
    started = 0
    while breakers.begin(key, now=0):
        started += 1
    for _ in range(started):
        breakers._endpoints[key].in_flight -= 1  # give the slots back without a result
    return started


def test_a_new_endpoint_gets_one_worker_and_more_with_each_success_up_to_the_cap() -> None:
    breakers = Breakers(POLICY)
    assert _concurrent(breakers, "s") == 1
    assert breakers.held(now=0) == set()
    _attempts(breakers, "s", [True], now=0)
    assert _concurrent(breakers, "s") == 2
    _attempts(breakers, "s", [True] * 5, now=0)
    assert _concurrent(breakers, "s") == 4  # max_in_flight


def test_a_failure_halves_an_endpoints_workers() -> None:
    breakers = Breakers(POLICY)
    _attempts(breakers, "s", [True] * 5, now=0)
    assert breakers.begin("s", now=0)
    breakers.end("s", success=False, now=0)
    assert _concurrent(breakers, "s") == 2


def test_subscriptions_whose_last_attempt_failed_share_a_small_budget_of_workers() -> None:
    breakers = Breakers(POLICY)
    for key in ("a", "b", "c"):
        _attempts(breakers, key, [False], now=0)
    assert breakers.begin("a", now=0)
    assert breakers.begin("b", now=0)
    assert not breakers.begin("c", now=0)  # suspect_budget = 2, both taken
    assert breakers.held(now=0) == {"a", "b", "c"}
    assert breakers.begin("healthy", now=0)  # never held by the suspects
    breakers.end("a", success=True, now=1)  # a recovered: no longer a suspect
    assert breakers.begin("c", now=1)


def test_attempts_that_started_before_it_opened_do_not_count() -> None:
    breakers = Breakers(BreakerPolicy(min_attempts=3, max_in_flight=4, suspect_budget=10))
    _attempts(breakers, "s", [True] * 4, now=0)  # four workers allowed now
    for _ in range(4):
        assert breakers.begin("s", now=400)  # the successes have left the window
    for _ in range(3):
        breakers.end("s", success=False, now=400)
    assert breakers.states()["s"] is State.OPEN
    assert breakers.end("s", success=True, now=401) is State.OPEN  # the slow fourth one


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=50, allow_nan=False), st.booleans()),
        max_size=200,
    )
)
def test_the_window_counts_what_a_recount_of_its_buckets_gives_and_holds_few_buckets(
    steps: list[tuple[float, bool]],
) -> None:
    window = _Window()
    now, seen = 0.0, []
    for step, success in steps:
        now += step
        window.add(now, success=success, window_s=300)
        seen.append((math.floor(now / (300 / BUCKETS)) * (300 / BUCKETS), success))
        kept = [(start, ok) for start, ok in seen if start >= now - 300]
        assert (window.attempts, window.failures) == (
            len(kept),
            sum(1 for _, ok in kept if not ok),
        )
        assert len(window.buckets) <= BUCKETS + 1


def test_an_attempt_costs_the_same_however_many_the_window_holds() -> None:
    """The work per attempt is bounded by the buckets, not the attempts: 100,000 attempts in one
    window leave at most BUCKETS + 1 buckets, and each adds to one of them."""
    breakers = Breakers(BreakerPolicy(min_attempts=10**9))
    for i in range(100_000):
        breakers.begin("s", now=i * 0.003)
        breakers.end("s", success=i % 2 == 0, now=i * 0.003)
    window = breakers._endpoints["s"].results
    assert window.attempts > 90_000
    assert len(window.buckets) <= BUCKETS + 1


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.booleans(),  # begin, or end if one is in flight
            st.booleans(),  # its success
            st.floats(min_value=0, max_value=100, allow_nan=False),
        ),
        max_size=300,
    )
)
def test_the_running_count_of_suspects_in_flight_is_what_a_recount_gives(
    steps: list[tuple[str, bool, bool, float]],
) -> None:
    """The suspects' budget is checked against a count kept as attempts start and end (O(1) per
    attempt, not O(endpoints)): after any sequence it equals a recount, and so every decision is
    the one a recount would make."""
    budget = 3
    breakers = Breakers(replace(POLICY, min_attempts=3, suspect_budget=budget))
    now = 0.0
    for key, begin, success, step in steps:
        now += step
        endpoints = breakers._endpoints
        in_flight = endpoints[key].in_flight if key in endpoints else 0
        recount = sum(e.in_flight for e in endpoints.values() if e.suspect)
        suspect = key in endpoints and endpoints[key].suspect
        if begin or not in_flight:
            started = breakers.begin(key, now)
            if started and suspect and endpoints[key].state is State.CLOSED:
                assert recount < budget  # a suspect starts only within the budget
        else:
            breakers.end(key, success=success, now=now)
        assert breakers._suspects_in_flight == sum(
            e.in_flight for e in endpoints.values() if e.suspect
        )
        assert breakers.held(now) == {
            k
            for k, e in endpoints.items()
            if not breakers._may_start(
                e, now, sum(x.in_flight for x in endpoints.values() if x.suspect)
            )
        }
