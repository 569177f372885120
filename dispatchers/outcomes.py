"""What one delivery attempt's result means: delivered, retry at a time, or failed. Pure.

The retry schedule is data: entry k is the delay before try k+1 (the first, 0, is the first try),
so its length is the number of tries. `now` and the jitter draw come in as arguments, so the same
inputs always give the same decision.

`Retry-After` on a 429 or a 503 is honoured within bounds: the next try is at the time the receiver
asked for, but never sooner than `retry_after_min_s` and never later than `retry_after_max_s` from
now (a receiver cannot park a delivery for days, nor make us hammer it). It still counts as a try.

A request the address policy refused (`dispatchers.addresses`: the receiver's address is one a
webhook may not be sent to) fails at once, whatever try it was: trying again would be refused again,
and only an operator can change that (the policy's settings, or the URL). The HTTP edge tells it
apart from a network error (`HttpResult.refused`), not the error's text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

DEFAULT_RETRY_SCHEDULE_S: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
RETRY_AFTER_STATUSES = frozenset({429, 503})


class Verdict(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    GONE = "gone"
    """410 Gone: the receiver asks to be unsubscribed; the subscription is disabled."""
    REFUSED = "refused"
    """Refused by the address policy: failed at once, not retried (recorded as failed)."""


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    retry_at: datetime | None = None


@dataclass(frozen=True)
class RetryAfterBounds:
    min_s: float = 1.0
    max_s: float = 3600.0


def decide(
    *,
    status_code: int | None,
    attempt_number: int,
    now: datetime,
    schedule_s: tuple[float, ...],
    jitter: float,
    jitter_draw: float,
    retry_after: str | None = None,
    retry_after_bounds: RetryAfterBounds = RetryAfterBounds(),
    refused: bool = False,
) -> Outcome:
    """`attempt_number` counts from 1 within the current round of tries; `jitter_draw` is uniform
    in [0, 1); status None = no answer; `retry_after` is the header's value, if any; `refused`:
    the address policy refused the request (no answer, and never one)."""
    if refused:
        return Outcome(Verdict.REFUSED)
    if status_code is not None and 200 <= status_code < 300:
        return Outcome(Verdict.DELIVERED)
    if status_code == 410:
        return Outcome(Verdict.GONE)
    if attempt_number >= len(schedule_s):
        return Outcome(Verdict.FAILED)
    asked = parse_retry_after(retry_after, now=now) if status_code in RETRY_AFTER_STATUSES else None
    if asked is not None:
        bounded = min(max(asked, retry_after_bounds.min_s), retry_after_bounds.max_s)
        return Outcome(Verdict.RETRY, retry_at=now + timedelta(seconds=bounded))
    delay = schedule_s[attempt_number] * (1 - jitter + 2 * jitter * jitter_draw)
    return Outcome(Verdict.RETRY, retry_at=now + timedelta(seconds=delay))


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` value (delta-seconds or an HTTP date); None if absent
    or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())
