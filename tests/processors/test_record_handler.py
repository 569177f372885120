"""The agent's handling of one record (`processors.app.RecordHandler`) when a send fails: nothing may
leave the agent, because Faust acks the record an agent raised on and commits past it. Kafka's
failure restarts the worker before that commit; anything else sets the record aside."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from faust.exceptions import ProducerSendError

from herald_contracts import RawRecord, WatchType, encode_raw_record
from processors.app import RecordHandler
from processors.settings import ProcessorSettings
from processors.state import Keeper
from tests.support import rollout_event

RECORD = encode_raw_record(
    RawRecord(
        cluster="prod-eu",
        watch_type=WatchType.ADDED,
        collected_at="2026-08-20T09:17:00Z",
        object=rollout_event("RolloutUpdated", "Rollout updated to revision 3"),
    )
)
MESSAGE = SimpleNamespace(
    topic="raw", partition=0, offset=7, timestamp=1_787_000_000.0, key=b"k", value=RECORD, tp="tp"
)


@dataclass
class Topic:
    """Records what is sent; raises `fails` (once each) instead, when set."""

    fails: list[BaseException] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, **kwargs: Any) -> asyncio.Future[Any]:
        if self.fails:
            raise self.fails.pop(0)
        self.sent.append(kwargs)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class Consumer:
    """Faust's consumer as the handler reads it: committed offsets, and each partition's start."""

    def __init__(self, committed: int | None, log_start: int) -> None:
        self._committed_offset = {} if committed is None else {"tp": committed}
        self.log_start = log_start

    async def earliest_offsets(self, *tps: Any) -> dict[Any, int]:
        return dict.fromkeys(tps, self.log_start)


def _handler(
    domain: Topic, dead_letters: Topic, restarts: list[str], consumer: Consumer
) -> RecordHandler:
    return RecordHandler(
        SimpleNamespace(consumer=consumer),  # type: ignore[arg-type]
        ProcessorSettings(kafka_bootstrap="127.0.0.1:1"),
        Keeper({}, {}, retention_s=86_400),
        domain=domain,
        dead_letters=dead_letters,
        restart=lambda: restarts.append("restart"),
    )


def _handle(domain: Topic, dead_letters: Topic) -> list[str]:
    restarts: list[str] = []
    handler = _handler(domain, dead_letters, restarts, Consumer(committed=7, log_start=0))
    asyncio.run(handler.handle(MESSAGE, RECORD))
    return restarts


def test_a_domain_event_handed_over_is_sent_and_nothing_restarts() -> None:
    domain, dead_letters = Topic(), Topic()
    assert _handle(domain, dead_letters) == []
    assert len(domain.sent) == 1
    assert dead_letters.sent == []


@pytest.mark.parametrize(
    "failure",
    [ProducerSendError("Error while sending: KafkaTimeoutError()"), TimeoutError(), OSError()],
)
def test_a_send_kafka_refuses_restarts_the_worker_and_raises_nothing(
    failure: BaseException,
) -> None:
    domain, dead_letters = Topic(fails=[failure]), Topic()
    assert _handle(domain, dead_letters) == ["restart"]
    assert dead_letters.sent == []  # read again after the restart, not set aside


def test_any_other_failure_sets_the_record_aside_with_the_reason() -> None:
    domain, dead_letters = Topic(fails=[ValueError("a bug")]), Topic()
    assert _handle(domain, dead_letters) == []
    [dead] = dead_letters.sent
    assert dead["value"] == RECORD
    assert b"ValueError('a bug')" in dict(dead["headers"])["herald.error"]


def test_a_dead_letter_kafka_refuses_restarts_the_worker() -> None:
    domain = Topic(fails=[ValueError("a bug")])
    dead_letters = Topic(fails=[ProducerSendError("Error while sending: NotLeaderForPartition")])
    assert _handle(domain, dead_letters) == ["restart"]


def _at(offset: int) -> SimpleNamespace:
    return SimpleNamespace(**{**vars(MESSAGE), "offset": offset})


@pytest.mark.parametrize(
    ("committed", "log_start", "offsets", "restarts", "sent"),
    [
        pytest.param(None, 0, [0, 1, 2], [], 1, id="a-new-group-from-the-start"),
        pytest.param(None, 5, [5, 6], [], 1, id="a-new-group-after-retention"),
        pytest.param(3, 5, [5], [], 1, id="committed-before-what-retention-kept"),
        # Read again from before: the same event again, with the same id (`processors.timelines`).
        pytest.param(4, 0, [4, 5, 2, 3, 4], [], 2, id="read-again-after-a-seek-back"),
        pytest.param(None, 0, [18], ["restart"], 0, id="nothing-committed-and-records-dropped"),
        pytest.param(4, 0, [9], ["restart"], 0, id="records-dropped-after-the-committed-one"),
        pytest.param(4, 0, [4, 5, 8], ["restart"], 1, id="records-dropped-mid-stream"),
    ],
)
def test_a_record_handed_over_past_ones_faust_never_handed_over_restarts_the_worker(
    committed: int | None, log_start: int, offsets: list[int], restarts: list[str], sent: int
) -> None:
    """Faust can drop records it fetched while recovering (issue #596) and, with nothing committed
    yet, commit past them: the agent must not handle a record beyond a hole."""
    domain, dead_letters, restarted = Topic(), Topic(), []
    handler = _handler(domain, dead_letters, restarted, Consumer(committed, log_start))

    async def run() -> None:
        for offset in offsets:
            await handler.handle(_at(offset), RECORD)

    asyncio.run(run())
    assert restarted == restarts
    assert len(domain.sent) == sent
