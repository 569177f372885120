"""Endpoint health as a pure function: which subscriptions a batch of attempts recovered, their
failure streak, and when to disable one. No database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from dispatchers.health import GONE_REASON, Health, disable_reason, recovered, summarise
from dispatchers.outcomes import Verdict

NOW = datetime(2026, 8, 20, 9, 0, tzinfo=UTC)
A, B = uuid.UUID(int=1), uuid.UUID(int=2)
DAYS_5 = timedelta(days=5)


def _at(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


def test_a_batch_ending_in_a_success_recovers_the_subscription() -> None:
    summary = summarise([(_at(0), Verdict.RETRY, A), (_at(1), Verdict.DELIVERED, A)])
    assert summary == {A: Health(None, succeeded=True)}
    assert recovered(summary) == [A]
    assert summary[A].failing_since(_at(-60)) is None


def test_a_failure_after_a_success_starts_the_streak_at_that_failure() -> None:
    summary = summarise(
        [(_at(0), Verdict.DELIVERED, A), (_at(1), Verdict.RETRY, A), (_at(2), Verdict.FAILED, A)]
    )
    assert summary[A] == Health(_at(1), succeeded=True)
    assert recovered(summary) == []
    assert summary[A].failing_since(_at(-60)) == _at(1)  # the stored streak ended with the success


def test_failures_only_keep_a_running_streak_or_start_one() -> None:
    [judged] = summarise([(_at(0), Verdict.RETRY, A)]).values()
    assert judged.failing_since(_at(-60)) == _at(-60)
    assert judged.failing_since(None) == _at(0)


def test_attempts_of_deliveries_cleaned_up_meanwhile_count_for_no_subscription() -> None:
    assert summarise([(_at(0), Verdict.RETRY, None)]) == {}


def test_each_subscription_is_judged_on_its_own_attempts() -> None:
    summary = summarise([(_at(0), Verdict.RETRY, A), (_at(1), Verdict.DELIVERED, B)])
    assert summary == {A: Health(_at(0)), B: Health(None, succeeded=True)}


@pytest.mark.parametrize(
    ("failing_since", "disabled"),
    [
        pytest.param(None, False, id="not-failing"),
        pytest.param(NOW - DAYS_5 + timedelta(seconds=1), False, id="failing-not-long-enough"),
        pytest.param(NOW - DAYS_5, True, id="failing-exactly-the-limit"),
        pytest.param(NOW - DAYS_5 - timedelta(days=1), True, id="failing-longer"),
    ],
)
def test_a_subscription_failing_for_the_limit_is_disabled_naming_since_when(
    failing_since: datetime | None, disabled: bool
) -> None:
    reason = disable_reason(Health(NOW), failing_since, now=NOW, disable_after=DAYS_5)
    assert (reason is not None) is disabled
    if failing_since is not None and reason is not None:
        assert reason == (
            f"every attempt has failed since {failing_since.isoformat(timespec='seconds')}"
        )


def test_410_gone_disables_at_once_even_after_a_success() -> None:
    summary = summarise([(_at(0), Verdict.GONE, A), (_at(1), Verdict.DELIVERED, A)])
    assert summary[A].gone
    assert disable_reason(summary[A], None, now=NOW, disable_after=DAYS_5) == GONE_REASON
    assert "410" in GONE_REASON
