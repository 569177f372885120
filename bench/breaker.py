"""The circuit breaker's cost per attempt against how many attempts its window holds.

Prints the time of one finished attempt (`Breakers.end`) with a window already holding 100, 10,000
and 100,000 attempts of the subscription, and each as a ratio to the 100 case: flat (about 1.0) is
the goal of issue 14 (before: the whole window was recounted on every attempt, 1.2 ms an attempt at
330 a second). Then the time of one attempt (`begin` and `end`) to one endpoint while the breakers
know 10, 1,000 and 10,000 other endpoints whose last attempt failed (suspects), as ratios to the 10
case: the suspects' budget is checked against a running count (before: a recount of every endpoint
on each `begin` and `held`). Pure, in-process: `python bench/breaker.py`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1])
)  # this checkout's, not an installed one

from dispatchers.breaker import BreakerPolicy, Breakers

WINDOW_S = 300.0
MEASURED = 20_000


def _per_attempt_us(held: int) -> float:
    """Microseconds per attempt once the window holds `held` attempts (all within it)."""
    breakers = Breakers(BreakerPolicy(window_s=WINDOW_S, min_attempts=10**9, max_in_flight=4))
    step = (WINDOW_S / 2) / (held + MEASURED)  # every attempt stays inside the window
    now = 0.0
    for i in range(held):
        breakers.begin("s", now)
        breakers.end("s", success=i % 3 != 0, now=now)
        now += step
    started = time.perf_counter()
    for i in range(MEASURED):
        breakers.begin("s", now)
        breakers.end("s", success=i % 3 != 0, now=now)
        now += step
    return (time.perf_counter() - started) / MEASURED * 1e6


def _per_attempt_among_us(suspects: int) -> float:
    """Microseconds per attempt (`begin`, then `end`) to one healthy endpoint while `suspects`
    other endpoints' last attempt failed."""
    breakers = Breakers(BreakerPolicy(window_s=WINDOW_S, min_attempts=10**9, max_in_flight=4))
    for i in range(suspects):
        breakers.begin(i, 0.0)
        breakers.end(i, success=False, now=0.0)
    started = time.perf_counter()
    for i in range(MEASURED):
        breakers.begin("s", i * 0.001)
        breakers.end("s", success=True, now=i * 0.001)
    return (time.perf_counter() - started) / MEASURED * 1e6


def main() -> None:
    baseline = _per_attempt_us(100)
    print(f"{'attempts in the window':>24} {'µs per attempt':>15} {'ratio to 100':>13}")
    for held in (100, 10_000, 100_000):
        cost = baseline if held == 100 else _per_attempt_us(held)
        print(f"{held:>24,} {cost:>15.2f} {cost / baseline:>13.2f}")

    baseline = _per_attempt_among_us(10)
    print(f"{'suspect endpoints':>24} {'µs per attempt':>15} {'ratio to 10':>13}")
    for suspects in (10, 1_000, 10_000):
        cost = baseline if suspects == 10 else _per_attempt_among_us(suspects)
        print(f"{suspects:>24,} {cost:>15.2f} {cost / baseline:>13.2f}")


if __name__ == "__main__":
    main()
