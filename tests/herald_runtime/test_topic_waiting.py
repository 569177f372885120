"""A service waiting for its topics: told why on every ask, logging a missing set of topics once
(with the command) and a broker that does not answer every time, done once they all exist."""

from __future__ import annotations

import logging
import threading

import pytest

from herald_runtime.backoff import Backoff
from herald_runtime.topics.ensuring import BrokerUnavailableError
from herald_runtime.topics.plan import ENSURE_COMMAND
from herald_runtime.topics.waiting import wait_with

NO_PAUSE = Backoff(base_s=0.0, cap_s=0.0)


def test_the_wait_says_why_on_every_ask_logs_the_missing_topics_once_and_ends_when_they_exist(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = iter(
        [
            BrokerUnavailableError("Kafka at k:1 does not answer: refused"),
            BrokerUnavailableError("Kafka at k:1 does not answer: refused"),
            {},
            {"raw": (3, 1)},
            {"raw": (3, 1)},
            {"raw": (3, 1), "domain": (6, 1)},
        ]
    )

    def ask() -> dict[str, tuple[int, int]]:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    reasons: list[str] = []
    beats: list[None] = []
    with caplog.at_level(logging.INFO, logger="herald_runtime.topics.waiting"):
        found = wait_with(
            ask,
            bootstrap="k:1",
            topics=["raw", "domain"],
            waiting=reasons.append,
            beat=lambda: beats.append(None),
            stop=threading.Event(),
            backoff=NO_PAUSE,
            rand=lambda: 0.5,
        )
    assert found == {"raw": 3, "domain": 6}
    assert len(beats) == 6
    assert len(reasons) == 5
    assert "does not answer" in reasons[0]
    assert "'raw', 'domain'" in reasons[2]
    assert "'domain'" in reasons[3]
    assert "'raw'" not in reasons[3]
    assert all(ENSURE_COMMAND in reason for reason in reasons[2:])
    logged = [r.getMessage() for r in caplog.records]
    assert sum("does not answer" in m for m in logged) == 2  # every time
    assert sum(ENSURE_COMMAND in m for m in logged) == 2  # once per missing set, not per ask
    assert "exist now" in logged[-1]


def test_a_stop_ends_the_wait_without_an_answer() -> None:
    stop = threading.Event()

    def ask() -> dict[str, tuple[int, int]]:
        stop.set()
        return {}

    found = wait_with(
        ask,
        bootstrap="k:1",
        topics=["raw"],
        waiting=lambda reason: None,
        beat=lambda: None,
        stop=stop,
        backoff=NO_PAUSE,
        rand=lambda: 0.5,
    )
    assert found is None
