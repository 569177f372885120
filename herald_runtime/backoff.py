"""Exponential backoff with jitter, for every loop that waits for a dependency to come back. Pure.

The wait doubles with each consecutive failure up to a cap, and is spread by a jitter drawn by the
caller (so replicas that lost the same dependency at once do not all come back at once, and tests
pass a fixed draw).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base_s: float = 0.5
    cap_s: float = 30.0
    jitter: float = 0.2

    def delay(self, failures: int, *, rand: float) -> float:
        """Seconds to wait after `failures` consecutive failures; `rand` is uniform in [0, 1)."""
        raw = min(self.cap_s, self.base_s * 2.0 ** max(0, failures - 1))
        return raw * (1 - self.jitter + 2 * self.jitter * rand)
