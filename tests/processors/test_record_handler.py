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


def _handle(domain: Topic, dead_letters: Topic) -> list[str]:
    restarts: list[str] = []
    handler = RecordHandler(
        SimpleNamespace(consumer=SimpleNamespace(_committed_offset={})),  # type: ignore[arg-type]
        ProcessorSettings(kafka_bootstrap="127.0.0.1:1"),
        Keeper({}, {}, retention_s=86_400),
        domain=domain,
        dead_letters=dead_letters,
        restart=lambda: restarts.append("restart"),
    )
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
