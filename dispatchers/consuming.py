"""The consuming loop: CloudEvents from Kafka (the domain topic and any further topics the
dispatcher reads) become pending deliveries in Postgres.

A batch is what has arrived: the first record as soon as it is fetched, with those fetched behind
it (`RecordSource.poll_batch`), so a lone record waits for no other and batches grow with the load.
For each batch: take every record the dispatcher can handle (`dispatchers.intake`), match it against
the enabled subscriptions, write the events and deliveries in one transaction, set aside in the
dead-letter topic what cannot be handled, wait until Kafka has acknowledged those, and only then
commit the offsets. A crash anywhere re-reads at most the uncommitted batch, and the (event id,
subscription id) uniqueness absorbs the repeats.

A record is set aside, never retried: refused by the intake, refused by the database for its
values (the batch is then split until the records refused alone are found; the others are
stored), or an event whose id the store holds already as another source's (its deliveries would
send that event's body). It is logged once, counted, and the loop moves on. A dependency that is
away is a different matter: Postgres unreachable rewinds the batch, Kafka not acknowledging dead
letters or not taking the commit holds it, and both are waited for with backoff while the readiness
check says why (`problems`, the store's `last_error`); nothing is set aside for them.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from dispatchers.intake import Admitted, RefusalKind, Refused, admit
from dispatchers.matching import matches
from dispatchers.model import StoredBatch, StoreError, Subscription, ValuesRefusedError
from herald_contracts import CloudEvent
from herald_runtime.backoff import Backoff

log = logging.getLogger(__name__)


class ConsumeError(Exception):
    """Kafka failed in a way the loop cannot carry on from (a fatal consumer error)."""


class CommitError(Exception):
    """Kafka did not take the offset commit (unreachable, or the group is rebalancing)."""


class DeadLetterError(Exception):
    """Kafka has not acknowledged every dead letter sent (unreachable, or the topic refuses them)."""


@dataclass(frozen=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


class RecordSource(Protocol):
    def poll_batch(self, *, max_records: int, timeout_s: float) -> list[ConsumedRecord]:
        """Wait up to `timeout_s` for a record; once one is there, return it at once with those
        already fetched behind it, up to `max_records` (a lone record is not held back waiting
        for company; under load the batches fill from what arrived meanwhile)."""
        ...

    def commit(self, records: Sequence[ConsumedRecord]) -> None:
        """Commit, for each partition these records come from, the offset just past its last one
        (they are handled); nothing else. CommitError if Kafka does not take it."""
        ...

    def rewind(self, records: Sequence[ConsumedRecord]) -> None:
        """Read these records again on the next poll (their batch could not be stored)."""
        ...

    def lag(self) -> dict[int, int]:
        """Records not read yet, by assigned partition."""
        ...

    def unreachable(self) -> str | None:
        """Why no broker answers now, or None if one does."""
        ...


class DeadLetterSink(Protocol):
    def send(self, record: ConsumedRecord, *, error: str) -> None: ...

    def flush(self, timeout_s: float) -> None:
        """Wait until every dead letter sent is acknowledged; DeadLetterError if some are not
        (they stay queued, and are sent again, until they are)."""
        ...


class DeliveryStore(Protocol):
    def subscriptions(self, *, enabled_only: bool = False) -> list[Subscription]: ...

    def record_batch(
        self, batch: Sequence[tuple[CloudEvent, bytes, Sequence[uuid.UUID]]], *, now: datetime
    ) -> StoredBatch: ...


Row = tuple[CloudEvent, bytes, Sequence[uuid.UUID]]


@dataclass
class ConsumingLoop:
    source: RecordSource
    dead_letters: DeadLetterSink
    store: DeliveryStore
    now: Callable[[], datetime]
    subscriptions_refresh_s: float = 2.0
    max_batch: int = 500
    stop: threading.Event = field(default_factory=threading.Event)
    on_dead_letter: Callable[[str], None] = lambda kind: None
    """Told the kind of every record set aside (`intake.RefusalKind`)."""
    beat: Callable[[], None] = lambda: None
    """Called once per turn (the liveness check: the loop is not stuck), also while it waits."""
    on_stored: Callable[[int], None] = lambda created: None
    """Told how many deliveries a batch created, as soon as they are in Postgres (before the
    offsets are committed): the process's sending workers are woken to claim them."""
    on_lag: Callable[[dict[int, int]], None] = lambda lags: None
    """Told the consumer's lag by partition, every `lag_every_s`."""
    lag_every_s: float = 5.0
    backoff: Backoff = field(default_factory=Backoff)
    """How long to wait for a dependency that failed, by consecutive failures."""
    rand: Callable[[], float] = random.random
    problems: dict[str, str] = field(default_factory=dict)
    """What the loop waits for on Kafka now, and why: `kafka` (no broker answers), `dead_letters`
    (not acknowledged), `offsets` (the commit was refused). Empty when nothing. (The database's
    state is the store's `last_error`, which the sending workers keep too.)"""
    _lag_told_at: float = float("-inf")
    _subscriptions: list[Subscription] = field(default_factory=list)
    _refreshed_at: float = float("-inf")
    _set_aside: set[tuple[str, int, int]] = field(default_factory=set)
    """Positions set aside since the last commit: read again after a failed commit, they are
    neither sent nor logged twice."""

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            self.beat()
            if time.monotonic() - self._lag_told_at >= self.lag_every_s:
                self._lag_told_at = time.monotonic()
                self.on_lag(self.source.lag())
                self._note("kafka", self.source.unreachable())
            try:
                self.run_once(timeout_s=0.5)
            except StoreError as e:
                # Postgres restarting or unreachable: the batch was rewound, nothing committed.
                failures += 1
                if failures == 1:
                    log.warning("the store failed (%s); waiting for it with backoff", e)
                self.stop.wait(self.backoff.delay(failures, rand=self.rand()))
                continue
            if failures:
                log.info("the store is back after %d failed tries", failures)
                failures = 0

    def run_once(self, *, timeout_s: float) -> int:
        """Consume one batch and commit it; return how many deliveries it created."""
        records = self.source.poll_batch(max_records=self.max_batch, timeout_s=timeout_s)
        if not records:
            self.problems.pop("offsets", None)  # nothing polled is left uncommitted
            return 0
        try:
            return self._handle(records)
        except StoreError:
            # Whichever call found the database away (the subscriptions' refresh or the batch's
            # transaction), the batch is read again once it is back: nothing is committed past it.
            self.source.rewind(records)
            raise

    def _handle(self, records: Sequence[ConsumedRecord]) -> int:
        subscriptions = self._current_subscriptions()
        admitted: list[tuple[ConsumedRecord, Row]] = []
        refused: list[tuple[ConsumedRecord, Refused]] = []
        for record in records:
            verdict = admit(record.value, key=record.key, headers=record.headers)
            if isinstance(verdict, Admitted):
                wanted = [s.id for s in subscriptions if matches(s.filter, verdict.event)]
                admitted.append((record, (verdict.event, verdict.body, wanted)))
            else:
                refused.append((record, verdict))
        created, unstorable = self._store(admitted)
        if created:
            self.on_stored(created)
        for record, refusal in sorted(refused + unstorable, key=lambda r: _position(r[0])):
            self._set_aside_once(record, refusal)
        if self._set_aside and not self._acknowledged():
            self.source.rewind(records)  # stopping: read again (and absorbed) after a restart
            return created
        try:
            self.source.commit(records)
        except CommitError as e:
            # Offsets not committed: the records are read again (stored ones are absorbed, those
            # set aside are skipped) and committed with a later batch.
            self.problems["offsets"] = str(e)
            log.warning("offset commit failed (%s); reading the batch again", e)
            self.source.rewind(records)
            return created
        self.problems.pop("offsets", None)
        self._set_aside.clear()
        log.debug(
            "batch of %d records: %d deliveries, %d set aside",
            len(records),
            created,
            len(refused) + len(unstorable),
        )
        return created

    def _store(
        self, batch: Sequence[tuple[ConsumedRecord, Row]]
    ) -> tuple[int, list[tuple[ConsumedRecord, Refused]]]:
        """Store the batch; if the database refuses a value, store each half on its own, down to
        the records refused alone (about two transactions per halving for each of them). Topic
        order is kept: the left half is stored before the right."""
        if not batch:
            return 0, []
        try:
            stored = self.store.record_batch([row for _, row in batch], now=self.now())
        except ValuesRefusedError as e:
            if len(batch) == 1:
                record, (event, _, _) = batch[0]
                reason = f"the database refused event {_shown(event.id)}: {e}"
                return 0, [(record, Refused(reason, RefusalKind.REFUSED_BY_DATABASE))]
        else:
            return stored.created, [_taken(batch[i], source) for i, source in stored.taken.items()]
        half = len(batch) // 2
        left, left_refused = self._store(batch[:half])
        right, right_refused = self._store(batch[half:])
        return left + right, left_refused + right_refused

    def _set_aside_once(self, record: ConsumedRecord, refusal: Refused) -> None:
        position = _position(record)
        if position in self._set_aside:
            return
        log.warning(
            "set aside %s[%d]@%d (key %s, %d bytes) in the dead-letter topic: %s",
            record.topic,
            record.partition,
            record.offset,
            _shown(record.key),
            len(record.value or b""),
            refusal.reason,
        )
        self.dead_letters.send(record, error=refusal.reason)
        self.on_dead_letter(refusal.kind)
        self._set_aside.add(position)

    def _acknowledged(self) -> bool:
        """Wait, with backoff, until Kafka has acknowledged every dead letter sent; False if the
        loop was stopped first."""
        failures = 0
        while True:
            try:
                self.dead_letters.flush(5.0)
            except DeadLetterError as e:
                failures += 1
                self.problems["dead_letters"] = str(e)
                if failures == 1:
                    log.warning("%s; waiting for Kafka with backoff", e)
                self.beat()
                if self.stop.wait(self.backoff.delay(failures, rand=self.rand())):
                    return False
                continue
            if failures:
                log.info("dead letters acknowledged after %d tries", failures + 1)
                self.problems.pop("dead_letters", None)
            return True

    def _note(self, dependency: str, problem: str | None) -> None:
        if problem is None:
            if self.problems.pop(dependency, None) is not None:
                log.info("%s is reachable again", dependency)
        else:
            if dependency not in self.problems:
                log.warning("%s: %s", dependency, problem)
            self.problems[dependency] = problem

    def _current_subscriptions(self) -> list[Subscription]:
        if time.monotonic() - self._refreshed_at >= self.subscriptions_refresh_s:
            self._subscriptions = self.store.subscriptions(enabled_only=True)
            self._refreshed_at = time.monotonic()
        return self._subscriptions


def _taken(row: tuple[ConsumedRecord, Row], source: str) -> tuple[ConsumedRecord, Refused]:
    record, (event, _, _) = row
    reason = (
        f"CloudEvent id {_shown(event.id)} is already the id of an event from another source"
        f" ({_shown(source)}); the dispatcher knows an event by its id alone, and receivers by"
        " webhook-id: its producer must use ids unique beyond its source (a UUID)"
    )
    return record, Refused(reason, RefusalKind.UNDELIVERABLE)


def _position(record: ConsumedRecord) -> tuple[str, int, int]:
    return (record.topic, record.partition, record.offset)


def _shown(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 120 else shown[:117] + "..."
