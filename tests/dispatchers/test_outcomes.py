from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatchers.outcomes import (
    DEFAULT_RETRY_SCHEDULE_S,
    Outcome,
    RetryAfterBounds,
    Verdict,
    decide,
)

NOW = datetime(2026, 8, 20, 9, 0, tzinfo=UTC)


def _decide(status: int | None, attempt: int, *, draw: float = 0.5) -> Outcome:
    return decide(
        status_code=status,
        attempt_number=attempt,
        now=NOW,
        schedule_s=DEFAULT_RETRY_SCHEDULE_S,
        jitter=0.2,
        jitter_draw=draw,
    )


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_is_delivered(status: int) -> None:
    assert _decide(status, 1) == Outcome(Verdict.DELIVERED)


def test_410_gone_asks_to_unsubscribe() -> None:
    assert _decide(410, 1).verdict is Verdict.GONE


@pytest.mark.parametrize("attempt", [1, 3, len(DEFAULT_RETRY_SCHEDULE_S)])
def test_a_request_refused_by_the_address_policy_fails_at_once_at_any_try(attempt: int) -> None:
    outcome = decide(
        status_code=None,
        attempt_number=attempt,
        now=NOW,
        schedule_s=DEFAULT_RETRY_SCHEDULE_S,
        jitter=0.2,
        jitter_draw=0.5,
        refused=True,
    )
    assert outcome == Outcome(Verdict.REFUSED)


def test_a_network_error_is_not_a_refusal() -> None:
    assert _decide(None, 1).verdict is Verdict.RETRY


@pytest.mark.parametrize("status", [None, 301, 400, 404, 429, 500, 503])
def test_everything_else_is_retried_on_the_schedule(status: int | None) -> None:
    assert _decide(status, 1) == Outcome(Verdict.RETRY, retry_at=NOW + timedelta(seconds=5))
    assert _decide(status, 2) == Outcome(Verdict.RETRY, retry_at=NOW + timedelta(seconds=300))


def test_jitter_stays_within_twenty_percent() -> None:
    assert _decide(500, 2, draw=0.0).retry_at == NOW + timedelta(seconds=240)
    latest = _decide(500, 2, draw=0.999999).retry_at
    assert latest is not None
    assert latest < NOW + timedelta(seconds=360)


def test_the_last_try_fails_the_delivery() -> None:
    tries = len(DEFAULT_RETRY_SCHEDULE_S)
    assert _decide(500, tries - 1).verdict is Verdict.RETRY
    assert _decide(500, tries) == Outcome(Verdict.FAILED)


def _after(status: int, header: str | None, *, attempt: int = 1) -> Outcome:
    return decide(
        status_code=status,
        attempt_number=attempt,
        now=NOW,
        schedule_s=DEFAULT_RETRY_SCHEDULE_S,
        jitter=0.2,
        jitter_draw=0.5,
        retry_after=header,
        retry_after_bounds=RetryAfterBounds(min_s=1, max_s=3600),
    )


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds_on_429_and_503_sets_the_next_try(status: int) -> None:
    assert _after(status, "120") == Outcome(Verdict.RETRY, NOW + timedelta(seconds=120))


def test_retry_after_as_an_http_date_is_honoured() -> None:
    assert _after(503, "Thu, 20 Aug 2026 09:10:00 GMT").retry_at == NOW + timedelta(minutes=10)


def test_retry_after_is_kept_within_bounds() -> None:
    assert _after(429, "999999").retry_at == NOW + timedelta(seconds=3600)
    assert _after(429, "0").retry_at == NOW + timedelta(seconds=1)
    assert _after(429, "Thu, 20 Aug 2026 08:00:00 GMT").retry_at == NOW + timedelta(seconds=1)


def test_retry_after_on_other_statuses_or_unreadable_follows_the_schedule() -> None:
    on_schedule = _decide(500, 2).retry_at
    assert _after(500, "120", attempt=2).retry_at == on_schedule
    assert _after(429, "soon", attempt=2).retry_at == on_schedule
    assert _after(429, None, attempt=2).retry_at == on_schedule


def test_retry_after_still_counts_as_a_try() -> None:
    assert _after(429, "5", attempt=len(DEFAULT_RETRY_SCHEDULE_S)).verdict is Verdict.FAILED
