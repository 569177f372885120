from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatchers.outcomes import DEFAULT_RETRY_SCHEDULE_S, Outcome, Verdict, decide

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
