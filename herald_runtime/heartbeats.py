"""Heartbeats of a service's loops, for its liveness and readiness checks. Pure.

Each loop beats once per turn; a loop whose last beat is older than its limit is stuck (blocked in
a call that never returns, or dead). The checks run in the health endpoint's own thread, so a stuck
loop cannot hide it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping


class Heartbeats:
    def __init__(
        self, limits_s: Mapping[str, float], *, clock: Callable[[], float] = time.monotonic
    ):
        """`limits_s`: per loop, the longest a turn may take. Every loop counts as having beaten at
        the start."""
        self._clock = clock
        self._limits_s = dict(limits_s)
        started = clock()
        self._last = dict.fromkeys(self._limits_s, started)
        self._lock = threading.Lock()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._limits_s)

    def beat(self, name: str) -> None:
        now = self._clock()
        with self._lock:
            self._last[name] = now

    def beater(self, name: str) -> Callable[[], None]:
        if name not in self._limits_s:
            raise KeyError(f"no heartbeat limit for {name!r}")
        return lambda: self.beat(name)

    def stuck(self) -> dict[str, float]:
        """The loops past their limit, with the seconds since their last beat."""
        now = self._clock()
        with self._lock:
            ages = {name: now - last for name, last in self._last.items()}
        return {name: round(age, 1) for name, age in ages.items() if age > self._limits_s[name]}
