"""The Faust app: one agent reads the raw topic, processes each record, sends the domain events.

The agent is a short loop over `processors.processing.process` (decode, read the state, interpret,
remember), which says what to send or why to dead-letter a record: a record the processor cannot
handle is set aside on the dead-letter topic with the reason, counted, logged once, and the stream
moves on. Sends are not awaited one by one: Faust flushes the producer before it commits offsets,
and a send that fails restarts the worker before that commit, so the committed offset is never past
an event that was not written; a crash between sending and committing re-sends the same events with
the same ids, which consumers absorb. Nothing may leave the agent as an exception (`RecordHandler`):
Faust acks the record an agent raised on and would commit past it.

State lives in two Faust tables (changelogged, so it survives restarts and rebalances;
co-partitioned with the raw topic, whose key is the involved object, so an Event's state lives where
its records are), kept bounded by `processors.tables` under the rules of `processors.state`; a record
is judged on the state as it stood before its own offset (`processors.timelines`), so a record read
again after a crash decides the same as the first time.
Concurrency stays 1: with more, Faust can commit past an unfinished message (faust issue #606).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from prometheus_client import Counter, Gauge, Histogram

from herald_contracts import (
    DomainEvent,
    dead_letter_headers,
    domain_record_headers,
    encode_domain_event,
)
from herald_runtime.metrics import replace_series, start_at_zero
from processors.catalogue import Catalogue
from processors.fetching import tune_fetches
from processors.kafka import holds_records
from processors.processing import process
from processors.settings import ProcessorSettings
from processors.stalls import StallGuard, committable, skipped
from processors.state import Keeper
from processors.tables import build_tables, sweep_tables

log = logging.getLogger(__name__)

RECORDS = Counter("herald_processor_records_total", "Raw records read, by outcome.", ["outcome"])
DOMAIN_EVENTS = Counter(
    "herald_processor_domain_events_total", "Domain events sent, by type.", ["type"]
)
NOT_UNDERSTOOD = Counter(
    "herald_processor_messages_not_understood_total",
    "Events of a catalogued reason whose message matched no known format, by reason: each still"
    " gave its domain event, flagged `source_message_understood: false` (a new Argo wording).",
    ["reason"],
)
LATENCY = Histogram(
    "herald_processor_latency_seconds",
    "From the raw record's Kafka timestamp to its domain events handed to the producer.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LAG = Gauge(
    "herald_processor_consumer_lag",
    "Raw records not yet committed, by partition (end offset minus committed offset), of the"
    " partitions assigned to this worker now.",
    ["partition"],
)

SKIPS = Counter(
    "herald_processor_skipped_records_total",
    "Holes: Faust handed the agent a raw record past ones it never handed over (dropped while"
    " recovering or rebalancing, faust issue #596); the worker seeks back and reads them again, in"
    " place (counted once per hole, however often it must seek).",
)
start_at_zero(  # `increase()` then sees the first dead letter after a start
    RECORDS, outcome=("interpreted", "duplicate", "suppressed", "ignored", "dead_lettered")
)
STALLS = Counter(
    "herald_processor_commit_stalls_total",
    "Worker restarts by the commit-stall guard: a raw partition with records waiting stopped"
    " committing.",
)

STAGE = "processors"
MAX_POLL_RECORDS = 1000
KAFKA_FAILURES = (KafkaError, ProducerSendError, OSError, TimeoutError)
"""What a send raises when Kafka, not the record, is at fault: Faust wraps aiokafka's errors in
`ProducerSendError` (`faust.transport.drivers.aiokafka.Producer.send`)."""


def count_from_zero(catalogue: Catalogue) -> None:
    """Every reason the enabled packs may find not understood (each reason's fallback, and rows
    flagged `understood: false`) has its counter at 0: the first message in a new wording after a
    start then alerts (`HeraldArgoMessagesNotUnderstood`)."""
    rules = (*catalogue.rules, *catalogue.fallbacks)
    start_at_zero(NOT_UNDERSTOOD, reason=sorted({r.reason for r in rules if not r.understood}))


def build_app(
    settings: ProcessorSettings, *, raw_partitions: int, restart: Callable[[], None]
) -> faust.App:
    """The Faust app. `restart` starts the worker over (the stall guard's remedy)."""
    count_from_zero(settings.catalogue)
    app = faust.App(
        settings.app_id,
        broker=settings.faust_broker,
        datadir=str(settings.data_dir),
        web_enabled=False,
        producer_acks=-1,
        # Batch the domain events and changelog writes a little: far fewer produce requests.
        producer_linger=settings.producer_linger_ms / 1000,
        topic_replication_factor=settings.replication_factor,
        topic_partitions=raw_partitions,
        consumer_auto_offset_reset="earliest",
        # Records handed over per poll: unbounded (Faust's default), a recovery parsed a whole
        # fetch of the changelog into objects at once, tens of MiB for a large one.
        broker_max_poll_records=MAX_POLL_RECORDS,
        # A worker that died (kill -9, node lost) is noticed after this, and its partitions move.
        broker_session_timeout=settings.session_timeout_s,
        # The tables' keys and values travel as JSON.
        key_serializer="json",
        value_serializer="json",
    )
    tune_fetches(app, min_bytes=settings.fetch_min_bytes, max_wait_ms=settings.fetch_max_wait_ms)

    def bytes_topic(name: str) -> Any:
        return app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    source = bytes_topic(settings.raw_topic)
    domain = bytes_topic(settings.domain_topic)
    dead_letters = bytes_topic(settings.dead_letter_topic)
    keeper, tables = build_tables(app, settings, raw_partitions)
    sweep_tables(app, settings, keeper, tables)

    handler = RecordHandler(
        app, settings, keeper, domain=domain, dead_letters=dead_letters, restart=restart
    )

    @app.agent(source, concurrency=1)
    async def interpret_raw_events(stream: faust.StreamT[bytes]) -> None:
        handler.cap_commits()  # before the first record: no commit can pass one it did not handle
        handler.complete_seeks()
        async for event in stream.events():
            await handler.handle(event.message, event.value)

    _guard_commits(app, settings, restart)
    return app


GAP_SIGHTINGS = 3
"""How many times the same record must come first after seeks to the same gap before the gap is
taken for offsets the log holds no record at (a race of a fetch with the seek brings a later
record once, not the same one again and again)."""


@dataclass(frozen=True)
class Sighting:
    """A hole seen before `offset`, `times` times in a row."""

    hole: range
    offset: int
    times: int

    def again(self, hole: range, offset: int) -> Sighting | None:
        """The same hole seen once more before the same record; None if it is another one."""
        if hole.start != self.hole.start or offset != self.offset:
            return None
        return Sighting(hole, offset, self.times + 1)


class RecordHandler:
    """What the agent does with one raw record: `processors.processing.process` it, send its domain
    events or its dead letter, count it. Kafka's failures restart the worker (`restart`).

    It handles each raw partition's records in an unbroken run from the committed offset, and no
    commit goes past that run (`cap_commits`): Faust acks records it never handed over (issue #596).
    A record handed over past a hole is not handled; the worker seeks back and reads the hole
    again, in place (`_rewind`; an exec-restart recovered the tables again, and Faust dropped the
    same records again: a livelock)."""

    def __init__(
        self,
        app: faust.App,
        settings: ProcessorSettings,
        keeper: Keeper,
        *,
        domain: Any,
        dead_letters: Any,
        restart: Callable[[], None],
    ) -> None:
        self._app, self._settings, self._keeper = app, settings, keeper
        self._domain, self._dead_letters, self._restart = domain, dead_letters, restart
        self._warned: set[str] = set()
        self._next: dict[Any, int] = {}
        """Per raw partition, the offset after the last record handled."""
        self._holes: dict[Any, Sighting] = {}
        """Per raw partition, the hole the handler last sought back to, until it is read again."""

    async def handle(self, message: Any, value: bytes | None) -> None:
        """Never raises: Faust acks the record an agent raised on (the stream's iterator acks it
        as it closes), its offset is committed, and the record would be neither processed nor set
        aside. A send Kafka refused restarts the worker before that commit (the record is read
        again); anything else sets the record aside."""
        try:
            if await self._skipped(message):
                return
            handled = await self._handle(message, value)
        except KAFKA_FAILURES:
            log.exception("a domain event was not handed to Kafka; restarting the worker")
            self._restart()
            return
        except Exception as e:  # noqa: BLE001 - a bug on one record must not lose it
            error = f"the processor failed on this record: {e!r}"
            handled = await self._dead_letter(message, error, e)
        if handled:
            self._next[message.tp] = message.offset + 1

    def cap_commits(self) -> None:
        """Commit a raw partition to the end of the unbroken run of records this handler handled
        (`stalls.committable`), never to what Faust's acks would give: its stream acks the
        records it skips, and where its fetcher saw a gap (a transaction marker) its run takes the
        record after the gap as acked before the agent handled it. Faust's own choice is still
        asked for, so it trims its acked offsets."""
        consumer: Any = self._app.consumer
        if getattr(consumer, "_herald_commits_capped", False):
            return
        faust_offsets = (
            consumer._filter_committable_offsets
        )  # Faust's, private: what it would commit

        def capped(tps: Any) -> dict[Any, int]:
            tps = list(tps)
            offsets: dict[Any, int | None] = dict(faust_offsets(tps))
            for tp in tps:
                if tp.topic == self._settings.raw_topic:
                    offsets[tp] = committable(self._next.get(tp), self._committed(tp))
            return {tp: offset for tp, offset in offsets.items() if offset is not None}

        consumer._filter_committable_offsets = capped
        consumer._herald_commits_capped = True

    def complete_seeks(self) -> None:
        """Make Faust's seek back to the committed offsets (after every rebalance, and whenever a
        fetch returns while its flow is stopped) seek the raw partitions it leaves where they are:
        aiokafka's `seek_to_committed` skips a partition committed at 0 or not at all, and records
        fetched meanwhile and dropped (Faust clears its queues as it resumes) are then never read
        again. Seen at "Worker ready" with a group whose offsets were reset to 0: every record was
        fetched during the recovery and dropped, and nothing came after."""
        consumer: Any = self._app.consumer
        if getattr(consumer, "_herald_seeks_completed", False):
            return
        faust_seek = consumer.perform_seek

        async def perform_seek() -> None:
            await faust_seek()
            committed = consumer._committed_offset  # Faust's, private; 0 is kept as None
            left = [
                tp
                for tp in consumer.assignment()
                if tp.topic == self._settings.raw_topic and not committed.get(tp)
            ]
            for tp, offset in (await self._expected(left)).items():
                await self._seek(tp, offset)

        consumer.perform_seek = perform_seek
        consumer._herald_seeks_completed = True

    async def _skipped(self, message: Any) -> bool:
        """Whether records before this one were never handed to the agent (`stalls.skipped`):
        then the record is not handled, and the worker seeks back to read them (`_rewind`).

        Not every gap is a hole: a log holds no record at the offsets of transaction markers
        (a transactional producer: MirrorMaker 2 or Kafka Connect exactly-once) or of compacted
        keys. Faust's fetcher notes such gaps as it reads (offsets it was never handed between two
        it was); where it could not (its note starts after the committed offset), the same record
        coming first again `GAP_SIGHTINGS` times, each after a seek to the gap, shows the log
        holds nothing there. A hole is logged and counted once its records are read again."""
        tp = message.tp
        handled, committed = self._next.get(tp), self._committed(tp)
        known = [x for x in (handled, committed) if x is not None]
        expected = max(known) if known else None
        pending = self._holes.get(tp)
        if message.offset <= (expected or 0):  # no hole can end here: no need to ask Kafka
            if pending is not None and message.offset in pending.hole:
                del self._holes[tp]
                log.error(
                    "%s: records %d-%d were never handed to the agent before record %d (dropped"
                    " by Faust while it recovered, faust issue #596); read again in place",
                    tp,
                    pending.hole.start,
                    pending.hole.stop - 1,
                    pending.offset,
                )
                SKIPS.inc()
            return False
        if self._noted_gap(tp, skipped(expected, message.offset, None)):  # no Kafka round trip
            self._holes.pop(tp, None)
            return False
        starts = await self._app.consumer.earliest_offsets(tp)
        hole = skipped(expected, message.offset, starts.get(tp))
        if not hole:
            return False
        if self._noted_gap(tp, hole):
            self._holes.pop(tp, None)
            log.debug(
                "%s: offsets %d-%d hold no record (Faust's fetcher saw the gap)",
                tp,
                hole.start,
                hole.stop - 1,
            )
            return False
        sighting = pending.again(hole, message.offset) if pending else None
        sighting = sighting or Sighting(hole, message.offset, 1)
        if sighting.times >= GAP_SIGHTINGS:
            self._holes.pop(tp, None)
            log.info(
                "%s: offsets %d-%d hold no record (read from %d %d times, record %d came first"
                " each time: transaction markers or compacted keys); going on",
                tp,
                hole.start,
                hole.stop - 1,
                hole.start,
                sighting.times - 1,
                message.offset,
            )
            return False
        self._holes[tp] = sighting
        await self._rewind()
        return True

    def _noted_gap(self, tp: Any, hole: range) -> bool:
        """Whether Faust's fetcher noted every offset of `hole` as absent from the log (its
        `_gap`, private: an interval tree per partition, filled in `_drain_messages`)."""
        tree = getattr(self._app.consumer, "_gap", {}).get(tp)
        if not tree:
            return False
        return any(
            gap.begin <= hole.start and gap.end >= hole.stop
            for gap in tree.overlap(hole.start, hole.stop)
        )

    async def _rewind(self) -> None:
        """Read every raw partition again from the offset this handler expects next (`_expected`),
        in place, the way Faust does after a rebalance: fetching stopped, the records already
        fetched and queued dropped, then a seek. Not Faust's `perform_seek`: it seeks to the
        committed offsets through aiokafka's `seek_to_committed`, which leaves a partition whose
        committed offset is 0 where its fetch position is (`if offset and offset > 0`), past the
        records dropped; that is how the hole arose at "Worker ready" in the first place, and a
        restart, or that seek, hit it again. In a rebalance Faust seeks itself once it is done, and
        a hole it leaves shows on the next record."""
        app: Any = self._app
        consumer = app.consumer
        if app.rebalancing:
            return
        generation = app.consumer_generation_id
        raw = [tp for tp in consumer.assignment() if tp.topic == self._settings.raw_topic]
        consumer.stop_flow()
        app.flow_control.suspend()
        app.flow_control.clear()
        try:
            for tp, offset in (await self._expected(raw)).items():
                await self._seek(tp, offset)
        finally:
            if not app.rebalancing and app.consumer_generation_id == generation:
                app.flow_control.resume()
                consumer.resume_flow()

    async def _seek(self, tp: Any, offset: int) -> None:
        """Faust's `seek`, but in the consumer's thread: aiokafka's seek drops the partition's
        fetched records, and from the event loop's thread it raced the fetch iterating them (a
        KeyError in `Fetcher.fetched_records`, and the worker crashed)."""
        consumer: Any = self._app.consumer
        thread = consumer._thread  # Faust's, private: the thread running the aiokafka consumer
        await thread.call_thread(thread.seek, tp, offset)
        consumer._read_offset[tp] = offset if offset else None  # what Faust's `seek` sets

    async def _expected(self, tps: list[Any]) -> dict[Any, int]:
        """Per raw partition, the offset after the last record handled or the committed one,
        whichever is higher; where neither is known, the partition's first offset still held."""
        expected: dict[Any, int] = {}
        for tp in tps:
            known = [x for x in (self._next.get(tp), self._committed(tp)) if x is not None]
            if known:
                expected[tp] = max(known)
        unknown = [tp for tp in tps if tp not in expected]
        starts = await self._app.consumer.earliest_offsets(*unknown) if unknown else {}
        return {**{tp: starts.get(tp, 0) for tp in unknown}, **expected}

    async def _handle(self, message: Any, value: bytes | None) -> bool:
        """Whether the record was handled (its events handed over, or it was set aside)."""
        processed = process(
            value,
            state=self._keeper,
            partition=message.partition,
            offset=message.offset,
            # A record dated in the future must not keep its state alive past the retention.
            at=min(message.timestamp, time.time()),
            committed=self._committed(message.tp),
            catalogue=self._settings.catalogue,
        )
        if processed.dead_letter is not None:
            return await self._dead_letter(message, processed.dead_letter, processed.failure)
        for domain_event in processed.events:
            await self._send(domain_event)
            log.debug("%s %s for %s", domain_event.type, domain_event.id, domain_event.key)
        if processed.events:
            LATENCY.observe(max(0.0, time.time() - message.timestamp))
        if processed.not_understood is not None:
            self._not_understood(processed.not_understood, processed.events)
        RECORDS.labels(processed.outcome).inc()
        return True

    async def _dead_letter(self, message: Any, error: str, failure: Exception | None) -> bool:
        """Whether the record was set aside (else the worker restarts)."""
        log.warning(
            "dead-lettering %s[%d]@%d: %s",
            message.topic,
            message.partition,
            message.offset,
            error,
            exc_info=failure,  # a bug in the core: its traceback, in the same one line of log
        )
        headers = dead_letter_headers(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            stage=STAGE,
            error=error,
        )
        try:
            sent = await self._dead_letters.send(
                key=message.key, value=message.value, headers=headers
            )
            await sent
        except KAFKA_FAILURES:  # Kafka's failure, not the record's: read it again
            log.exception("a dead letter was not written; restarting the worker")
            self._restart()
            return False
        RECORDS.labels("dead_lettered").inc()
        return True

    def _delivered(self, sent: asyncio.Future[Any]) -> None:
        if sent.cancelled() or sent.exception() is not None:
            # Faust flushes the producer before it commits offsets, and this callback runs as
            # soon as the send fails, before that flush returns (aiokafka resolves a batch's
            # future, the flush's waiter, before its messages' futures, and each wakes by a
            # callback in that order): restarting here means the offset of a record whose event
            # was not written is never committed.
            log.error("a domain event was not written (%s); restarting the worker", sent)
            self._restart()

    async def _send(self, domain_event: DomainEvent) -> None:
        # The content-type header makes the record structured mode for every CloudEvents SDK.
        sent = await self._domain.send(
            key=domain_event.key.encode(),
            value=encode_domain_event(domain_event),
            headers=domain_record_headers(),
        )
        sent.add_done_callback(self._delivered)
        DOMAIN_EVENTS.labels(domain_event.type).inc()

    def _not_understood(self, reason: str, events: tuple[DomainEvent, ...]) -> None:
        NOT_UNDERSTOOD.labels(reason).inc()
        if reason not in self._warned:  # once per reason and process: the metric counts the rest
            self._warned.add(reason)
            log.warning(
                "a %s message matched no known format (its domain event, if any, is flagged"
                " source_message_understood: false): %r (next ones are only counted, in"
                " herald_processor_messages_not_understood_total)",
                reason,
                events[0].data.get("source_message") if events else None,
            )

    def _committed(self, tp: Any) -> int | None:
        # Faust keeps the committed offsets in private state; without them a timeline keeps its
        # last `timelines.KEEP` changes.
        offset = getattr(self._app.consumer, "_committed_offset", {}).get(tp)
        return offset if isinstance(offset, int) else None


def publish_status(
    app: faust.App,
    loop: asyncio.AbstractEventLoop,
    publish: Callable[..., None],
    *,
    interval_s: float = 1.0,
) -> None:
    """Every `interval_s`, from the first turn of the worker's event loop on, `publish(recovered=,
    rebalancing=)` (see `processors.liveness`: the only way other threads learn Faust's state).
    A callback of the loop itself, not a Faust timer: those start only once the tables are
    recovered, so a timer could never tell that recovery hangs."""

    def tick() -> None:
        publish(
            recovered=app.tables.recovery.completed.is_set(),  # type: ignore[attr-defined]
            rebalancing=bool(app.rebalancing),
        )
        loop.call_later(interval_s, tick)

    loop.call_soon(tick)


def observe_lag(lags: dict[int, int]) -> None:
    """The lag of each raw partition assigned to this worker now. The series of a partition a
    rebalance moved away go: left at their last value, they were summed with the new owner's by
    the dashboard and the lag alert (9 series for 6 partitions)."""
    replace_series(LAG, {str(partition): lag for partition, lag in lags.items()})


def guard_interval_s(settings: ProcessorSettings) -> float:
    """How often the commit-stall guard looks."""
    return max(1.0, settings.commit_stall_s / 6)


def _guard_commits(
    app: faust.App, settings: ProcessorSettings, restart: Callable[[], None]
) -> None:
    """Restart the worker when a raw partition with records waiting stops committing (`stalls`).
    A worker stuck recovering or rebalancing is the watchdog thread's (`processors.liveness`)."""
    guard = StallGuard(after_s=settings.commit_stall_s)
    empty: dict[Any, tuple[int | None, int | None]] = {}
    """Per raw partition, the (committed, end) offsets between which Kafka held no record."""

    @app.timer(interval=guard_interval_s(settings))  # type: ignore[untyped-decorator]
    async def guard_commits() -> None:
        consumer: Any = app.consumer
        recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
        unready = bool(app.rebalancing) or not recovered
        if unready:
            guard.reset()
            return
        assigned = [tp for tp in consumer.assignment() if tp.topic == settings.raw_topic]
        if not assigned:
            observe_lag({})
            return
        try:
            ends = await consumer.highwaters(*assigned)
        except (KafkaError, TimeoutError) as e:  # a rebalance, an outage: look again next time
            log.debug("no end offsets for the stall guard: %r", e)
            return
        # Faust keeps the offsets it committed in private state.
        committed = consumer._committed_offset
        observe_lag(
            {
                tp.partition: max(0, ends[tp] - (committed.get(tp) or 0))
                for tp in assigned
                if ends.get(tp) is not None
            }
        )
        progress = {tp: (committed.get(tp), ends.get(tp)) for tp in assigned}
        # A range found to hold no record (a transactional producer's last marker: the end offset
        # counts it, and nothing is ever handed over to commit past it) is nothing waiting.
        progress.update(
            {tp: (end, end) for tp, (_, end) in progress.items() if empty.get(tp) == progress[tp]}
        )
        stalled = guard.check(progress, now=time.monotonic())
        for suspect in list(stalled):
            tp: Any = suspect
            start, end = progress[tp]
            try:
                held = await holds_records(
                    settings.kafka_bootstrap, tp.topic, tp.partition, start or 0, end or 0
                )
            except (KafkaError, TimeoutError) as e:  # Kafka away: restart as before
                log.debug("%s not read for the stall guard: %r", tp, e)
                continue
            if not held:
                log.debug("%s: offsets %s-%s hold no record (transaction markers)", tp, start, end)
                empty[tp] = (start, end)
                stalled.discard(tp)
        if stalled:
            log.error(
                "%s have records waiting and committed nothing for %ss (Faust can drop records "
                "or leave a partition unfetched after a rebalance, faust issue #596); restarting "
                "the worker to re-read them from the committed offsets",
                sorted(str(tp) for tp in stalled),
                settings.commit_stall_s,
            )
            STALLS.inc()
            restart()
