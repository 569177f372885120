"""Rate limits per subscription: a token bucket. Pure.

A subscription with a rate limit of r messages per second holds up to max(1, r) tokens (one
second's worth, at least one message); it gains r tokens a second and spends one per attempt it
claims. The bucket lives in Postgres (`dispatchers.postgres.queue`), so the limit holds across every
dispatcher replica; like Svix's and Convoy's, it is approximate: claims given back return their
tokens, and a burst of up to one second's worth can follow a quiet spell.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Bucket:
    rate_per_s: float
    tokens: float | None = None
    """None: never used (full)."""
    refilled_at: datetime | None = None

    @property
    def capacity(self) -> float:
        return max(1.0, self.rate_per_s)

    def at(self, now: datetime) -> Bucket:
        """The bucket refilled up to `now`."""
        if self.tokens is None or self.refilled_at is None:
            return Bucket(self.rate_per_s, self.capacity, now)
        elapsed = max(0.0, (now - self.refilled_at).total_seconds())
        tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_s)
        return Bucket(self.rate_per_s, tokens, max(now, self.refilled_at))

    @property
    def whole(self) -> int:
        """How many attempts may be claimed now."""
        return int(self.tokens) if self.tokens is not None else int(self.capacity)

    def spend(self, count: int) -> Bucket:
        return Bucket(self.rate_per_s, (self.tokens or 0.0) - count, self.refilled_at)

    def refund(self, count: int) -> Bucket:
        """Tokens back for claims given back untried (never above the capacity)."""
        return Bucket(
            self.rate_per_s, min(self.capacity, (self.tokens or 0.0) + count), self.refilled_at
        )
