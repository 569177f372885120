"""What one delivery attempt's result means: delivered, retry at a time, or failed. Pure.

The retry schedule is data: entry k is the delay before try k+1 (the first, 0, is the first try),
so its length is the number of tries. `now` and the jitter draw come in as arguments, and
`now` and the jitter draw come in as arguments, so the same inputs always give the same decision.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_RETRY_SCHEDULE_S: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


class Verdict(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    GONE = "gone"
    """410 Gone: the receiver asks to be unsubscribed; the subscription is disabled."""


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    retry_at: datetime | None = None


def decide(
    *,
    status_code: int | None,
    attempt_number: int,
    now: datetime,
    schedule_s: tuple[float, ...],
    jitter: float,
    jitter_draw: float,
) -> Outcome:
    """`attempt_number` counts from 1; `jitter_draw` is uniform in [0, 1); status None = no answer."""
    if status_code is not None and 200 <= status_code < 300:
        return Outcome(Verdict.DELIVERED)
    if status_code == 410:
        return Outcome(Verdict.GONE)
    if attempt_number >= len(schedule_s):
        return Outcome(Verdict.FAILED)
    delay = schedule_s[attempt_number] * (1 - jitter + 2 * jitter * jitter_draw)
    return Outcome(Verdict.RETRY, retry_at=now + timedelta(seconds=delay))
