"""Endpoint health per subscription: a circuit breaker and a cap on attempts in flight. Pure.

Closed, the breaker counts the attempts of the last `window_s`; when at least `min_attempts` of them
were made and at least `failure_ratio` of them failed, it opens. They are counted in `BUCKETS` time
buckets with running totals, so an attempt costs the same however many the window holds (recounting
the window cost 1.2 ms an attempt at 330 a second, under the lock every sending worker shares): an
attempt counts for between `window_s` less one bucket (`window_s / BUCKETS`) and `window_s`. Open, it holds the subscription's
deliveries (they are not claimed, so no try is spent) for a pause; then one probe goes out
(half-open). A probe that succeeds closes it; one that fails opens it again for twice the pause, up
to `max_pause_s`. This is the dispatcher's own view (each replica keeps one); the decisions about
the deliveries themselves (retry times, failure) stay in Postgres.

Bulkheads, so an endpoint that hangs until the timeout occupies a few workers, never all of them,
and healthy subscriptions keep their throughput:
- each subscription's attempts in flight are limited, additively increased and multiplicatively
  decreased: the limit starts at 1, grows by 1 with each success (up to `max_in_flight`) and halves
  with each failure, so a new or failing endpoint ties up one worker, a healthy one gets many;
- the subscriptions whose last attempt failed (suspects) share `suspect_budget` workers in all.

Time comes in as an argument (`now`, seconds on any monotonic clock).
"""

from __future__ import annotations

import enum
import math
import threading
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field


class State(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    window_s: float = 300.0
    min_attempts: int = 10
    failure_ratio: float = 0.7
    pause_s: float = 30.0
    max_pause_s: float = 600.0
    max_in_flight: int = 4
    suspect_budget: int = 2


BUCKETS = 60
"""Time buckets per window (5 s for the default 300 s)."""


@dataclass(slots=True)
class _Bucket:
    index: int
    """Its start over the bucket width: `floor(now / width)`."""
    attempts: int = 0
    failures: int = 0


@dataclass
class _Window:
    """Attempts and failures of the last `window_s`, in buckets: O(1) per attempt, amortised, and
    at most `BUCKETS` + 1 buckets held."""

    buckets: deque[_Bucket] = field(default_factory=deque)
    """Oldest first."""
    attempts: int = 0
    failures: int = 0

    def add(self, now: float, *, success: bool, window_s: float) -> None:
        width = window_s / BUCKETS
        index = math.floor(now / width)
        if not self.buckets or self.buckets[-1].index != index:
            self.buckets.append(_Bucket(index))
        bucket = self.buckets[-1]
        bucket.attempts += 1
        self.attempts += 1
        if not success:
            bucket.failures += 1
            self.failures += 1
        while self.buckets and self.buckets[0].index * width < now - window_s:
            gone = self.buckets.popleft()
            self.attempts -= gone.attempts
            self.failures -= gone.failures

    def clear(self) -> None:
        self.buckets.clear()
        self.attempts = self.failures = 0


@dataclass
class _Endpoint:
    state: State = State.CLOSED
    results: _Window = field(default_factory=_Window)
    opened_at: float = 0.0
    pause_s: float = 0.0
    in_flight: int = 0
    limit: float = 1.0
    suspect: bool = False
    tried: bool = False
    """An attempt has finished: its health is known."""


class Breakers:
    """Thread-safe: the sending workers of one dispatcher share it."""

    def __init__(self, policy: BreakerPolicy) -> None:
        self.policy = policy
        self._endpoints: dict[Hashable, _Endpoint] = {}
        self._lock = threading.Lock()
        self._suspects_in_flight = 0
        """The attempts in flight to suspects, kept as they start and end (a recount would cost
        O(endpoints) per attempt)."""

    def held(self, now: float) -> set[Hashable]:
        """Subscriptions not to claim deliveries for now: open and pausing, probing, or at the cap."""
        with self._lock:
            suspects = self._suspects_in_flight
            return {
                key for key, e in self._endpoints.items() if not self._may_start(e, now, suspects)
            }

    def begin(self, key: Hashable, now: float) -> bool:
        """Ask to start an attempt; False means hold it (give the claim back, spend no try)."""
        with self._lock:
            endpoint = self._endpoints.setdefault(key, _Endpoint())
            if not self._may_start(endpoint, now, self._suspects_in_flight):
                return False
            if endpoint.state is State.OPEN:
                endpoint.state = State.HALF_OPEN  # this attempt is the probe
            endpoint.in_flight += 1
            if endpoint.suspect:
                self._suspects_in_flight += 1
            return True

    def end(self, key: Hashable, *, success: bool, now: float) -> State:
        """Record a finished attempt; return the breaker's state after it."""
        policy = self.policy
        with self._lock:
            endpoint = self._endpoints.setdefault(key, _Endpoint())
            before = endpoint.in_flight if endpoint.suspect else 0
            endpoint.in_flight = max(0, endpoint.in_flight - 1)
            endpoint.suspect, endpoint.tried = not success, True
            self._suspects_in_flight += (endpoint.in_flight if endpoint.suspect else 0) - before
            if success:
                endpoint.limit = min(float(policy.max_in_flight), endpoint.limit + 1)
            else:
                endpoint.limit = max(1.0, endpoint.limit / 2)
            if endpoint.state is State.HALF_OPEN:
                if success:
                    endpoint.state, endpoint.pause_s = State.CLOSED, 0.0
                    endpoint.results.clear()
                else:
                    self._open(endpoint, now, min(endpoint.pause_s * 2, policy.max_pause_s))
                return endpoint.state
            if endpoint.state is State.OPEN:
                return endpoint.state  # an attempt that started before it opened
            window = endpoint.results
            window.add(now, success=success, window_s=policy.window_s)
            if (
                window.attempts >= policy.min_attempts
                and window.failures >= policy.failure_ratio * window.attempts
            ):
                self._open(endpoint, now, policy.pause_s)
            return endpoint.state

    def risk(self, key: Hashable) -> int:
        """0 for an endpoint whose last attempt succeeded, 1 for one not tried yet, 2 for one whose
        last attempt failed: a worker sends a claimed batch in this order, so a hanging endpoint
        delays as little of it as possible."""
        with self._lock:
            endpoint = self._endpoints.get(key)
        if endpoint is None or not endpoint.tried:
            return 1
        return 2 if endpoint.suspect or endpoint.state is not State.CLOSED else 0

    def states(self) -> dict[Hashable, State]:
        with self._lock:
            return {key: e.state for key, e in self._endpoints.items()}

    def _open(self, endpoint: _Endpoint, now: float, pause_s: float) -> None:
        endpoint.state, endpoint.opened_at, endpoint.pause_s = State.OPEN, now, pause_s
        endpoint.results.clear()

    def _may_start(self, endpoint: _Endpoint, now: float, suspects_in_flight: int) -> bool:
        if endpoint.state is State.HALF_OPEN:
            return False  # one probe at a time
        if endpoint.state is State.OPEN:
            return now >= endpoint.opened_at + endpoint.pause_s and endpoint.in_flight == 0
        if endpoint.suspect and suspects_in_flight >= self.policy.suspect_budget:
            return False
        return endpoint.in_flight < int(endpoint.limit)
