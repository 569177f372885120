"""The consuming loop: domain events from Kafka become pending deliveries in Postgres.

For each batch: decode every record (dead-letter what does not decode), match it against the
enabled subscriptions, write the events and deliveries in one transaction, make sure the dead
letters are acknowledged, and only then commit the offsets. A crash anywhere re-reads at most the
uncommitted batch, and the (event id, subscription id) uniqueness absorbs the repeats.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from dispatchers.matching import matches
from dispatchers.postgres import StoreError, Subscription
from herald_contracts import EVENT_TYPES, ContractError, DomainEvent, decode_domain_event

log = logging.getLogger(__name__)


class ConsumeError(Exception):
    """Kafka failed in a way the loop cannot carry on from."""


@dataclass(frozen=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class RecordSource(Protocol):
    def poll_batch(self, *, max_records: int, timeout_s: float) -> list[ConsumedRecord]: ...

    def commit(self) -> None: ...

    def rewind(self, records: Sequence[ConsumedRecord]) -> None:
        """Read these records again on the next poll (their batch could not be stored)."""
        ...

    def lag(self) -> dict[int, int]:
        """Records not read yet, by assigned partition."""
        ...


class DeadLetterSink(Protocol):
    def send(self, record: ConsumedRecord, *, error: str) -> None: ...

    def flush(self, timeout_s: float) -> None: ...


class DeliveryStore(Protocol):
    def subscriptions(self, *, enabled_only: bool = False) -> list[Subscription]: ...

    def record_events(
        self, batch: Sequence[tuple[DomainEvent, bytes, Sequence[uuid.UUID]]], *, now: datetime
    ) -> int: ...


@dataclass
class ConsumingLoop:
    source: RecordSource
    dead_letters: DeadLetterSink
    store: DeliveryStore
    now: Callable[[], datetime]
    subscriptions_refresh_s: float = 2.0
    max_batch: int = 500
    stop: threading.Event = field(default_factory=threading.Event)
    on_dead_letter: Callable[[], None] = lambda: None
    beat: Callable[[], None] = lambda: None
    """Called once per turn (the liveness check: the loop is not stuck)."""
    on_lag: Callable[[dict[int, int]], None] = lambda lags: None
    """Told the consumer's lag by partition, every `lag_every_s`."""
    lag_every_s: float = 5.0
    _lag_told_at: float = float("-inf")
    _subscriptions: list[Subscription] = field(default_factory=list)
    _refreshed_at: float = float("-inf")

    def run(self) -> None:
        while not self.stop.is_set():
            self.beat()
            if time.monotonic() - self._lag_told_at >= self.lag_every_s:
                self._lag_told_at = time.monotonic()
                self.on_lag(self.source.lag())
            try:
                self.run_once(timeout_s=0.5)
            except StoreError as e:
                # Postgres restarting or unreachable: the batch was rewound, nothing committed.
                log.warning("the store failed (%s); reading the batch again shortly", e)
                self.stop.wait(1.0)

    def run_once(self, *, timeout_s: float) -> int:
        """Consume one batch and commit it; return how many deliveries it created."""
        records = self.source.poll_batch(max_records=self.max_batch, timeout_s=timeout_s)
        if not records:
            return 0
        subscriptions = self._current_subscriptions()
        batch: list[tuple[DomainEvent, bytes, Sequence[uuid.UUID]]] = []
        dead = 0
        for record in records:
            try:
                event = _known(decode_domain_event(record.value, key=record.key))
            except ContractError as e:
                log.warning(
                    "dead-lettering %s[%d]@%d: %s", record.topic, record.partition, record.offset, e
                )
                self.dead_letters.send(record, error=str(e))
                self.on_dead_letter()
                dead += 1
                continue
            wanted = [s.id for s in subscriptions if matches(s.filter, event)]
            batch.append((event, record.value or b"", wanted))
        try:
            created = self.store.record_events(batch, now=self.now())
        except StoreError:
            self.source.rewind(records)
            raise
        if dead:
            self.dead_letters.flush(10)
        self.source.commit()
        log.debug(
            "batch of %d records: %d deliveries, %d dead letters", len(records), created, dead
        )
        return created

    def _current_subscriptions(self) -> list[Subscription]:
        if time.monotonic() - self._refreshed_at >= self.subscriptions_refresh_s:
            self._subscriptions = self.store.subscriptions(enabled_only=True)
            self._refreshed_at = time.monotonic()
        return self._subscriptions


def _known(event: DomainEvent) -> DomainEvent:
    if event.catalogue_name not in EVENT_TYPES:
        # A newer processor's type: dead-lettered, to be replayed once this dispatcher knows it
        # (subscription filters are validated against the known types).
        raise ContractError(f"unknown event type {event.type!r}")
    return event
