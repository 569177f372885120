"""The agent's handling of one record (`processors.app.RecordHandler`) when a send fails: nothing may
leave the agent, because Faust acks the record an agent raised on and commits past it. Kafka's
failure restarts the worker before that commit; anything else sets the record aside. And when Faust
hands over a record past ones it dropped (faust issue #596): no commit past the hole, and the hole
read again in place."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, NamedTuple

import pytest
from faust.exceptions import ProducerSendError
from intervaltree import Interval, IntervalTree
from prometheus_client import REGISTRY

from herald_contracts import RawRecord, WatchType, encode_raw_record
from processors.app import GAP_SIGHTINGS, RecordHandler
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


class TP(NamedTuple):
    topic: str
    partition: int


RAW = ProcessorSettings(kafka_bootstrap="127.0.0.1:1").raw_topic
TP0 = TP(RAW, 0)
MESSAGE = SimpleNamespace(
    topic=RAW, partition=0, offset=7, timestamp=1_787_000_000.0, key=b"k", value=RECORD, tp=TP0
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
    """Faust's consumer as the handler uses it: committed offsets, each partition's start, the
    offsets its contiguous-run commit would take from what was acked, its flow and its seek."""

    def __init__(self, committed: int | None, log_start: int) -> None:
        # Faust keeps a committed 0 as None (`perform_seek`: `offset if offset else None`).
        self._committed_offset = {TP0: committed or None}
        self.log_start = log_start
        self.acked: list[int] = []
        self.flowing = True
        self.seeks: list[tuple[Any, int, bool]] = []  # (tp, offset, whether the flow was stopped)
        self._read_offset: dict[Any, int | None] = {}
        self._gap: dict[Any, IntervalTree] = {}  # what Faust's fetcher saw missing
        self._thread = Thread(self)

    async def earliest_offsets(self, *tps: Any) -> dict[Any, int]:
        return dict.fromkeys(tps, self.log_start)

    def _filter_committable_offsets(self, tps: Any) -> dict[Any, int]:
        """Faust's choice: with nothing committed, the first unbroken run of acked offsets,
        wherever it starts (`Consumer._new_offset`)."""
        run = sorted(self.acked)[:1]
        for offset in sorted(self.acked)[1:]:
            if offset != run[-1] + 1:
                break
            run.append(offset)
        return {TP0: run[-1] + 1} if run and TP0 in tps else {}

    def stop_flow(self) -> None:
        self.flowing = False

    def resume_flow(self) -> None:
        self.flowing = True

    async def perform_seek(self) -> None:
        """Faust's: seeks only the partitions committed past 0 (aiokafka's `seek_to_committed`)."""
        for tp, offset in self._committed_offset.items():
            if offset:
                self._thread.seek(tp, offset)

    def assignment(self) -> set[Any]:
        return {TP0, TP("some-changelog", 0)}


class Thread:
    """The thread running the aiokafka consumer, in Faust's driver."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer

    async def call_thread(self, fun: Any, *args: Any) -> Any:
        return fun(*args)

    def seek(self, tp: Any, offset: int) -> None:
        self.consumer.seeks.append((tp, offset, not self.consumer.flowing))


class FlowControl:
    def __init__(self) -> None:
        self.active, self.cleared = True, 0

    def suspend(self) -> None:
        self.active = False

    def clear(self) -> None:
        self.cleared += 1

    def resume(self) -> None:
        self.active = True


def _app(consumer: Consumer, *, rebalancing: bool = False) -> SimpleNamespace:
    return SimpleNamespace(
        consumer=consumer,
        flow_control=FlowControl(),
        rebalancing=rebalancing,
        consumer_generation_id=3,
    )


def _handler(
    domain: Topic,
    dead_letters: Topic,
    restarts: list[str],
    consumer: Consumer,
    app: SimpleNamespace | None = None,
) -> RecordHandler:
    return RecordHandler(
        app or _app(consumer),  # type: ignore[arg-type]
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


def _skips() -> float:
    return REGISTRY.get_sample_value("herald_processor_skipped_records_total") or 0.0


def _handled() -> float:
    """Records handled, whatever their outcome (the same record again is a duplicate)."""
    return sum(
        REGISTRY.get_sample_value("herald_processor_records_total", {"outcome": outcome}) or 0.0
        for outcome in ("interpreted", "duplicate", "suppressed", "ignored", "dead_lettered")
    )


@pytest.mark.parametrize(
    ("committed", "log_start", "offsets", "seeks", "sent"),
    [
        pytest.param(None, 0, [0, 1, 2], [], 1, id="a-new-group-from-the-start"),
        pytest.param(None, 5, [5, 6], [], 1, id="a-new-group-after-retention"),
        pytest.param(3, 5, [5], [], 1, id="committed-before-what-retention-kept"),
        # Read again from before: the same event again, with the same id (`processors.timelines`).
        pytest.param(4, 0, [4, 5, 2, 3, 4], [], 2, id="read-again-after-a-seek-back"),
        pytest.param(None, 0, [18], [0], 0, id="nothing-committed-and-records-dropped"),
        pytest.param(None, 7, [18], [7], 0, id="nothing-committed-after-retention"),
        # aiokafka's `seek_to_committed` does not seek a partition committed at 0: this one must.
        pytest.param(0, 0, [18], [0], 0, id="committed-0-which-faust-keeps-as-none"),
        pytest.param(4, 0, [9], [4], 0, id="records-dropped-after-the-committed-one"),
        pytest.param(4, 0, [4, 5, 8], [6], 1, id="records-dropped-mid-stream"),
    ],
)
def test_a_record_handed_over_past_ones_faust_never_handed_over_seeks_back_in_place(
    committed: int | None, log_start: int, offsets: list[int], seeks: list[int], sent: int
) -> None:
    """Faust can drop records it fetched while recovering (issue #596) and, with nothing committed
    yet, commit past them: the agent must not handle a record beyond a hole, and the worker seeks
    back with its flow stopped, without restarting (a restart recovered the tables again, and
    Faust dropped the same records again: 6 of 100 events in 90 s)."""
    domain, dead_letters, restarted = Topic(), Topic(), []
    consumer = Consumer(committed, log_start)
    handler = _handler(domain, dead_letters, restarted, consumer)
    before = _skips()

    async def run() -> None:
        for offset in offsets:
            await handler.handle(_at(offset), RECORD)

    asyncio.run(run())
    assert restarted == []
    # Each seek to the first record not handled, with the flow stopped; the raw partitions only.
    assert consumer.seeks == [(TP0, offset, True) for offset in seeks]
    assert consumer.flowing
    assert _skips() - before == 0  # counted once its records are read again (below)
    assert len(domain.sent) == sent


def test_the_hole_is_read_again_and_counted_once_however_often_it_shows() -> None:
    """After the seek, a record fetched before it may still come first (the same hole again): it
    is not handled, the worker seeks again, and the hole is logged and counted once; then the
    records of the hole, read again, are handled in order."""
    domain, dead_letters, restarted = Topic(), Topic(), []
    consumer = Consumer(None, 0)
    handler = _handler(domain, dead_letters, restarted, consumer)
    before, handled = _skips(), _handled()

    async def run() -> None:
        for offset in [0, 1, 5, 6, 2, 3, 4, 5, 6]:
            await handler.handle(_at(offset), RECORD)

    asyncio.run(run())
    assert restarted == []
    assert consumer.seeks == [(TP0, 2, True), (TP0, 2, True)]
    assert _skips() - before == 1
    assert _handled() - handled == 7  # 0-6, each once


def test_a_gap_faust_fetched_around_is_no_hole_and_is_not_read_again() -> None:
    """Transaction markers and compacted keys leave offsets with no record: Faust's fetcher notes
    the gap (its `_gap`), and the record after it is handled at once, with no seek and no count.
    Seen with records written in transactions: the worker sought back to the marker forever."""
    domain, dead_letters, restarted = Topic(), Topic(), []
    consumer = Consumer(None, 0)
    consumer._gap[TP0] = IntervalTree([Interval(3, 5)])  # Faust notes [r_offset + 1, offset + 1)
    handler = _handler(domain, dead_letters, restarted, consumer)
    handler.cap_commits()
    before, handled = _skips(), _handled()

    async def run() -> None:
        for offset in [0, 1, 2, 4, 5]:
            await handler.handle(_at(offset), RECORD)

    asyncio.run(run())
    assert consumer.seeks == []
    assert _skips() - before == 0
    assert _handled() - handled == 5
    consumer.acked = [0, 1, 2, 3, 4, 5]  # Faust adds the gap it noted to what was acked
    assert consumer._filter_committable_offsets({TP0}) == {TP0: 6}  # past the gap


def test_a_gap_the_same_record_follows_after_every_seek_is_taken_for_no_record() -> None:
    """Where Faust's fetcher could not note the gap (its note starts after the committed offset),
    the same record coming first again after each seek to the gap shows the log holds nothing
    there: after `GAP_SIGHTINGS` sightings the record is handled; the gap is not counted as a
    hole."""
    domain, dead_letters, restarted = Topic(), Topic(), []
    consumer = Consumer(committed=31, log_start=0)
    handler = _handler(domain, dead_letters, restarted, consumer)
    before = _skips()

    async def run() -> None:
        for _ in range(GAP_SIGHTINGS):
            await handler.handle(_at(32), RECORD)
        await handler.handle(_at(33), RECORD)

    asyncio.run(run())
    assert restarted == []
    assert consumer.seeks == [(TP0, 31, True)] * (GAP_SIGHTINGS - 1)
    assert _skips() - before == 0
    assert len(domain.sent) == 1  # 32, then 33 (the same event again, with the same id)


def test_a_hole_whose_records_come_after_a_later_one_is_sought_again_not_given_up() -> None:
    """A fetch racing the seek brings later records first, never the same one each time: the
    sightings start over, and the hole's records, once read, are counted once."""
    domain, dead_letters, restarted = Topic(), Topic(), []
    consumer = Consumer(committed=4, log_start=0)
    handler = _handler(domain, dead_letters, restarted, consumer)
    before = _skips()

    async def run() -> None:
        for offset in [8, 9, 8, 10, 4, 5, 6, 7, 8]:
            await handler.handle(_at(offset), RECORD)

    asyncio.run(run())
    assert consumer.seeks == [(TP0, 4, True)] * 4
    assert _skips() - before == 1


def test_records_faust_skipped_and_acked_are_never_committed_past() -> None:
    """Faust's stream skips, and acks, the records of an older generation or that arrive while its
    flow control is suspended; with nothing committed its commit then takes the whole run: the
    commit stops at the records the handler handled."""
    domain, dead_letters, restarted = Topic(), Topic(), []
    consumer = Consumer(None, 0)
    handler = _handler(domain, dead_letters, restarted, consumer)
    handler.cap_commits()

    async def run() -> None:
        for offset in [0, 1, 2]:
            await handler.handle(_at(offset), RECORD)

    asyncio.run(run())
    consumer.acked = list(range(10))  # 3-9 skipped by the stream, acked all the same
    assert consumer._filter_committable_offsets({TP0}) == {TP0: 3}


def test_a_commit_held_back_by_the_handler_goes_on_once_it_has_handled_the_rest() -> None:
    """Faust drops the acked offsets its commit took, even where the handler held the commit
    back: the next commit comes from what the handler handled, not from Faust's acks (the
    partition committed nothing more, and the stall guard restarted the worker again and again,
    with records written in transactions)."""
    domain, dead_letters, restarted = Topic(), Topic(), []
    consumer = Consumer(None, 0)
    handler = _handler(domain, dead_letters, restarted, consumer)
    handler.cap_commits()

    async def handle(offsets: list[int]) -> None:
        for offset in offsets:
            await handler.handle(_at(offset), RECORD)

    asyncio.run(handle([0, 1, 2]))
    consumer.acked = list(range(6))
    assert consumer._filter_committable_offsets({TP0}) == {TP0: 3}
    consumer._committed_offset[TP0] = 3
    consumer.acked = []  # taken by Faust's run, up to 6
    asyncio.run(handle([3, 4, 5]))
    assert consumer._filter_committable_offsets({TP0}) == {TP0: 6}


def test_nothing_is_committed_on_a_partition_the_handler_has_handled_nothing_of() -> None:
    consumer = Consumer(None, 0)
    handler = _handler(Topic(), Topic(), [], consumer)
    handler.cap_commits()
    consumer.acked = [4, 5, 6]
    assert consumer._filter_committable_offsets({TP0}) == {}


def test_during_a_rebalance_the_seek_is_left_to_faust() -> None:
    """Faust seeks to the committed offsets itself once the tables are recovered."""
    consumer = Consumer(4, 0)
    restarted: list[str] = []
    handler = _handler(Topic(), Topic(), restarted, consumer, _app(consumer, rebalancing=True))
    asyncio.run(handler.handle(_at(9), RECORD))
    assert consumer.seeks == []
    assert consumer.flowing
    assert restarted == []


def test_a_record_set_aside_after_a_bug_leaves_no_hole() -> None:
    """The next record follows on: it is handled, not taken for one past a hole."""
    domain, dead_letters, restarted = Topic(fails=[ValueError("a bug")]), Topic(), []
    consumer = Consumer(4, 0)
    handler = _handler(domain, dead_letters, restarted, consumer)
    handled = _handled()

    async def run() -> None:
        for offset in [4, 5]:
            await handler.handle(_at(offset), RECORD)

    asyncio.run(run())
    assert len(dead_letters.sent) == 1
    assert _handled() - handled == 2
    assert consumer.seeks == []
    assert restarted == []


@pytest.mark.parametrize(("committed", "seek"), [(None, 3), (0, 3), (2, 2)])
def test_faust_seek_back_also_seeks_the_partitions_it_leaves_where_they_are(
    committed: int | None, seek: int
) -> None:
    """aiokafka's `seek_to_committed` leaves a partition committed at 0, or not at all, at its
    fetch position: past records fetched and dropped while Faust recovered its tables."""
    consumer = Consumer(committed, 0)
    handler = _handler(Topic(), Topic(), [], consumer)
    handler.complete_seeks()

    async def run() -> None:
        for offset in range(3):
            await handler.handle(_at(offset), RECORD)
        await consumer.perform_seek()

    asyncio.run(run())
    assert consumer.seeks[-1][:2] == (TP0, seek)
