"""The Faust app: one agent reads the raw topic, interprets each record, sends the domain events.

The agent is a short loop: decode (dead-letter what does not decode, with the reason), look up the
state (only for records of the catalogue), call the pure `interpret`, send the domain events, and
remember the occurrence. Sends are not awaited one by one: Faust flushes the producer before it
commits offsets, and a send that fails restarts the worker before that commit, so the committed
offset is never past an event that was not written; a crash between sending and committing re-sends
the same events with the same ids, which consumers absorb.

State, in Faust tables (changelogged, so it survives restarts and rebalances; co-partitioned with
the raw topic, whose key is the involved object, so an Event's state lives where its records are):
- `occurrences`: the occurrence numbers processed per Event uid, in tumbling windows relative to
  the records' own timestamps, expiring well after the Kubernetes Event TTL
  (`occurrence_window_s`); a lookup checks the current and the previous window.
- `rollouts`: whether each rollout is aborted (for the progress-deadline RolloutAborted).
Both hold timelines (`processors.timelines`): each value with the raw offset that set it, and a
record is judged on the state as it stood before its own offset, so a record read again after a
crash decides the same as the first time even if the table already holds its own update.
Concurrency stays 1: with more, Faust can commit past an unfinished message (faust issue #606).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import faust
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge, Histogram

from herald_contracts import (
    ContractError,
    DomainEvent,
    dead_letter_headers,
    decode_raw_record,
    encode_domain_event,
)
from processors import timelines
from processors.interpreting import Occurrence, Outcome, interpret
from processors.settings import ProcessorSettings
from processors.stalls import StallGuard

log = logging.getLogger(__name__)

RECORDS = Counter("herald_processor_records_total", "Raw records read, by outcome.", ["outcome"])
DOMAIN_EVENTS = Counter(
    "herald_processor_domain_events_total", "Domain events sent, by type.", ["type"]
)
LATENCY = Histogram(
    "herald_processor_latency_seconds",
    "From the raw record's Kafka timestamp to its domain events handed to the producer.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LAG = Gauge(
    "herald_processor_consumer_lag",
    "Raw records not yet committed, by partition (end offset minus committed offset).",
    ["partition"],
)

STALLS = Counter(
    "herald_processor_commit_stalls_total",
    "Worker restarts by the stall guards: a raw partition with records waiting stopped committing,"
    " or the worker stayed rebalancing or recovering too long.",
)

STAGE = "processors"


def build_app(
    settings: ProcessorSettings, *, raw_partitions: int, restart: Callable[[], None]
) -> faust.App:
    """The Faust app. `restart` starts the worker over (the stall guard's remedy)."""
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
        table_cleanup_interval=60.0,
        # A worker that died (kill -9, node lost) is noticed after this, and its partitions move.
        broker_session_timeout=settings.session_timeout_s,
        # The tables' keys (str, and (str, window) for the windowed one) and values travel as JSON.
        key_serializer="json",
        value_serializer="json",
    )

    def bytes_topic(name: str) -> Any:
        return app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    source = bytes_topic(settings.raw_topic)
    domain = bytes_topic(settings.domain_topic)
    dead_letters = bytes_topic(settings.dead_letter_topic)
    state = TableState(app, settings, raw_partitions)

    async def dead_letter(message: Any, error: str) -> None:
        log.warning(
            "dead-lettering %s[%d]@%d: %s", message.topic, message.partition, message.offset, error
        )
        headers = dead_letter_headers(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            stage=STAGE,
            error=error,
        )
        await (await dead_letters.send(key=message.key, value=message.value, headers=headers))
        RECORDS.labels("dead_lettered").inc()

    def delivered(sent: asyncio.Future[Any]) -> None:
        if sent.cancelled() or sent.exception() is not None:
            # Faust flushes the producer before it commits offsets, and this callback runs as
            # soon as the send fails, before that flush returns: restarting here means the
            # offset of a record whose event was not written is never committed.
            log.error("a domain event was not written (%s); restarting the worker", sent)
            restart()

    async def send(domain_event: DomainEvent) -> None:
        sent = await domain.send(
            key=domain_event.key.encode(), value=encode_domain_event(domain_event)
        )
        sent.add_done_callback(delivered)
        DOMAIN_EVENTS.labels(domain_event.type).inc()

    @app.agent(source, concurrency=1)
    async def interpret_raw_events(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            try:
                record = decode_raw_record(event.value)
            except ContractError as e:
                await dead_letter(message, str(e))
                continue
            outcome = interpret(record, last_n=None, aborted=False)
            aborted = False
            if outcome.occurrence is not None:
                # Only a record of the catalogue needs its state; most records are noise.
                last_n, aborted = state.before(
                    message.offset, outcome.occurrence, outcome.rollout_key
                )
                outcome = interpret(record, last_n=last_n, aborted=aborted)
            for domain_event in outcome.events:
                await send(domain_event)
                log.debug("%s %s for %s", domain_event.type, domain_event.id, domain_event.key)
            state.remember(message, outcome, aborted_before=aborted)
            if outcome.events:
                LATENCY.observe(max(0.0, time.time() - message.timestamp))
            RECORDS.labels(_label(outcome)).inc()

    _guard_commits(app, settings, restart)
    return app


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


class TableState:
    """The two tables, read as they stood before a record's offset (see `processors.timelines`)."""

    def __init__(self, app: faust.App, settings: ProcessorSettings, partitions: int) -> None:
        self._app = app
        self._window = timedelta(seconds=settings.occurrence_window_s)
        self.occurrences = (
            app.Table("occurrences", default=list, partitions=partitions)
            .tumbling(self._window, expires=2 * self._window)
            .relative_to_stream()
        )
        self.rollouts = app.Table("rollouts", default=list, partitions=partitions)

    def before(
        self, offset: int, occurrence: Occurrence, rollout: str | None
    ) -> tuple[int | None, bool]:
        """The last n processed for the Event uid (None: never), and whether the rollout was
        aborted, both as they stood before `offset`. Needs the current event (Faust context)."""
        windows = self.occurrences[occurrence.key]
        last_n = max(
            timelines.value_before(windows.current(), offset, 0),
            timelines.value_before(windows.delta(self._window), offset, 0),
        )
        aborted = rollout is not None and timelines.value_before(
            self.rollouts[rollout], offset, False
        )
        return last_n or None, aborted

    def remember(self, message: Any, outcome: Outcome, *, aborted_before: bool) -> None:
        if outcome.occurrence is None:
            return  # noise, a duplicate: nothing to remember
        at = message.offset
        # Faust keeps the committed offsets in private state; without them a timeline keeps
        # its last `timelines.KEEP` changes.
        committed = getattr(self._app.consumer, "_committed_offset", {}).get(message.tp)
        done = committed if isinstance(committed, int) else None
        key = outcome.occurrence.key
        self.occurrences[key] = timelines.record(
            self.occurrences[key].current(), at, outcome.occurrence.n, committed=done
        )
        if outcome.rollout_key is not None and outcome.aborted not in (None, aborted_before):
            key = outcome.rollout_key
            self.rollouts[key] = timelines.record(
                self.rollouts[key], at, outcome.aborted, committed=done
            )


def guard_interval_s(settings: ProcessorSettings) -> float:
    """How often the commit-stall guard looks."""
    return max(1.0, settings.commit_stall_s / 6)


def _guard_commits(
    app: faust.App, settings: ProcessorSettings, restart: Callable[[], None]
) -> None:
    """Restart the worker when a raw partition with records waiting stops committing (`stalls`).
    A worker stuck recovering or rebalancing is the watchdog thread's (`processors.liveness`)."""
    guard = StallGuard(after_s=settings.commit_stall_s)

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
            return
        try:
            ends = await consumer.highwaters(*assigned)
        except (KafkaError, TimeoutError) as e:  # a rebalance, an outage: look again next time
            log.debug("no end offsets for the stall guard: %r", e)
            return
        # Faust keeps the offsets it committed in private state.
        committed = consumer._committed_offset
        for tp in assigned:
            if ends.get(tp) is not None:
                LAG.labels(str(tp.partition)).set(max(0, ends[tp] - (committed.get(tp) or 0)))
        stalled = guard.check(
            {tp: (committed.get(tp), ends.get(tp)) for tp in assigned}, now=time.monotonic()
        )
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


def _label(outcome: Outcome) -> str:
    if outcome.duplicate:
        return "duplicate"
    if outcome.events:
        return "interpreted"
    return "suppressed" if outcome.occurrence is not None else "ignored"
