"""Heartbeats: a loop that has not beaten within its limit is reported stuck."""

from __future__ import annotations

import pytest

from herald_runtime.heartbeats import Heartbeats


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_every_loop_counts_as_beaten_at_the_start() -> None:
    clock = Clock()
    beats = Heartbeats({"consumer": 10, "sender-0": 30}, clock=clock)
    clock.now += 9
    assert beats.stuck() == {}


def test_a_loop_past_its_limit_is_stuck_until_it_beats_again() -> None:
    clock = Clock()
    beats = Heartbeats({"consumer": 10, "sender-0": 30}, clock=clock)
    sender = beats.beater("sender-0")
    clock.now += 11
    sender()
    assert beats.stuck() == {"consumer": 11.0}
    beats.beat("consumer")
    clock.now += 25
    assert beats.stuck() == {"consumer": 25.0}
    clock.now += 6
    assert beats.stuck() == {"consumer": 31.0, "sender-0": 31.0}


def test_a_beater_for_a_loop_without_a_limit_is_refused() -> None:
    with pytest.raises(KeyError, match="housekeeping"):
        Heartbeats({"consumer": 10}).beater("housekeeping")
