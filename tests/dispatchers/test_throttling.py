"""The token bucket behind a subscription's rate limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dispatchers.throttling import Bucket

T0 = datetime(2026, 8, 20, 9, 0, tzinfo=UTC)


def test_a_bucket_never_used_is_full_with_one_seconds_worth() -> None:
    assert Bucket(5).at(T0).whole == 5
    assert Bucket(0.2).at(T0).whole == 1  # at least one message


def test_spent_tokens_come_back_at_the_rate_up_to_the_capacity() -> None:
    bucket = Bucket(4).at(T0).spend(4)
    assert bucket.whole == 0
    assert bucket.at(T0 + timedelta(seconds=0.5)).whole == 2
    assert bucket.at(T0 + timedelta(seconds=60)).whole == 4


def test_a_slow_rate_allows_one_message_per_interval() -> None:
    bucket = Bucket(0.5).at(T0).spend(1)
    assert bucket.at(T0 + timedelta(seconds=1.9)).whole == 0
    assert bucket.at(T0 + timedelta(seconds=2)).whole == 1


def test_refunds_never_exceed_the_capacity() -> None:
    bucket = Bucket(3).at(T0).spend(2)
    assert bucket.refund(1).whole == 2
    assert bucket.refund(10).whole == 3


def test_time_going_backwards_refills_nothing() -> None:
    bucket = Bucket(2).at(T0).spend(2)
    assert bucket.at(T0 - timedelta(seconds=5)).whole == 0
