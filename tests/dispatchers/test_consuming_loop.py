"""The consuming loop's decisions on in-memory fakes (milliseconds): what it sets aside, how it finds
the records a database refuses, and that a failed commit neither loses nor repeats anything. The
same loop on the real broker and database is tested in test_consuming.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from dispatchers.consuming import CommitError, ConsumedRecord, ConsumingLoop, DeadLetterError
from dispatchers.matching import SubscriptionFilter
from dispatchers.memory import MemoryStore
from dispatchers.model import StoredBatch, StoreError, Subscription, ValuesRefusedError
from herald_contracts import CloudEvent, encode_domain_event
from herald_runtime.backoff import Backoff
from tests.support import domain_event

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


@dataclass
class FakeSource:
    records: list[ConsumedRecord]
    position: int = 0
    committed: int = 0
    failing_commits: int = 0

    def poll_batch(self, *, max_records: int, timeout_s: float) -> list[ConsumedRecord]:
        batch = self.records[self.position : self.position + max_records]
        self.position += len(batch)
        return batch

    def commit(self, records: Sequence[ConsumedRecord]) -> None:
        """As Kafka: the offset just past the last record named (not the consumer's position)."""
        if self.failing_commits:
            self.failing_commits -= 1
            raise CommitError("offset commit failed: REBALANCE_IN_PROGRESS")
        self.committed = max(r.offset for r in records) + 1

    def rewind(self, records: Sequence[ConsumedRecord]) -> None:
        self.position = min(r.offset for r in records)

    def lag(self) -> dict[int, int]:
        return {0: len(self.records) - self.position}

    def unreachable(self) -> str | None:
        return None


@dataclass
class FakeSink:
    sent: list[tuple[int, str]] = field(default_factory=list)
    unacknowledged_flushes: int = 0

    def send(self, record: ConsumedRecord, *, error: str) -> None:
        self.sent.append((record.offset, error))

    def flush(self, timeout_s: float) -> None:
        if self.unacknowledged_flushes:
            self.unacknowledged_flushes -= 1
            raise DeadLetterError("1 dead letters not acknowledged by Kafka")


def _subscribed() -> MemoryStore:
    store = MemoryStore()
    store.subscriptions.create(
        url="http://127.0.0.1:9/a",
        secrets=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        filter=SubscriptionFilter(),
        ordered=True,
    )
    return store


@dataclass
class FakeStore:
    """The in-memory store's intake (one subscription, which wants every event), with faults: a
    batch holding a refused id is refused (as Postgres refuses a value), and the next calls named
    in `away_for` fail as with the database away."""

    refused_ids: set[str] = field(default_factory=set)
    transactions: int = 0
    away_for: list[str] = field(default_factory=list)
    """The next calls to fail as with the database away, by name ("subscriptions", "record_batch")."""
    store: MemoryStore = field(default_factory=_subscribed)

    @property
    def events(self) -> list[str]:
        """The ids of the events stored, in the order they were."""
        return list(self.store.tables.events)

    def _maybe_away(self, call: str) -> None:
        if self.away_for and self.away_for[0] == call:
            self.away_for.pop(0)
            raise StoreError("terminating connection due to administrator command")

    def subscriptions(self, *, enabled_only: bool = False) -> list[Subscription]:
        self._maybe_away("subscriptions")
        return self.store.intake.subscriptions(enabled_only=enabled_only)

    def record_batch(
        self, batch: Sequence[tuple[CloudEvent, bytes, Sequence[uuid.UUID]]], *, now: datetime
    ) -> StoredBatch:
        self._maybe_away("record_batch")
        self.transactions += 1
        if any(event.id in self.refused_ids for event, _, _ in batch):
            raise ValuesRefusedError("index row size 8016 exceeds btree version 4 maximum 2704")
        return self.store.intake.record_batch(batch, now=now)


def _records(values: list[bytes]) -> list[ConsumedRecord]:
    return [
        ConsumedRecord(topic="d", partition=0, offset=i, key=b"c/billing/Rollout/p", value=v)
        for i, v in enumerate(values)
    ]


def _loop(source: FakeSource, sink: FakeSink, store: FakeStore, kinds: list[str]) -> ConsumingLoop:
    return ConsumingLoop(
        source=source,
        dead_letters=sink,
        store=store,
        now=lambda: NOW,
        on_dead_letter=kinds.append,
        backoff=Backoff(base_s=0.001, cap_s=0.001),
    )


@pytest.mark.parametrize(
    "refused", [pytest.param({7}, id="one"), pytest.param({0, 250, 499}, id="three-spread-out")]
)
def test_the_records_a_database_refuses_are_found_alone_and_the_rest_is_stored_in_order(
    refused: set[int],
) -> None:
    events = [domain_event(n, event_id=f"e-{n:03}") for n in range(500)]
    store = FakeStore(refused_ids={f"e-{n:03}" for n in refused})
    source, sink, kinds = (
        FakeSource(_records([encode_domain_event(e) for e in events])),
        FakeSink(),
        [],
    )
    created = _loop(source, sink, store, kinds).run_once(timeout_s=0)
    assert created == 500 - len(refused)
    assert store.events == [e.id for n, e in enumerate(events) if n not in refused]
    assert [offset for offset, _ in sink.sent] == sorted(refused)
    assert all("index row size" in reason for _, reason in sink.sent)
    assert kinds == ["refused_by_database"] * len(refused)
    assert source.committed == 500
    # Each refused record costs about two transactions per halving of the batch of 500.
    assert store.transactions <= 1 + len(refused) * 2 * 9


def test_a_failed_commit_reads_the_batch_again_without_losing_or_repeating_anything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = [domain_event(n, event_id=f"e-{n}") for n in range(3)]
    values = [encode_domain_event(good[0]), b"not json", encode_domain_event(good[1])]
    source = FakeSource(_records(values), failing_commits=1)
    sink, store, kinds = FakeSink(), FakeStore(), []
    loop = _loop(source, sink, store, kinds)
    assert loop.run_once(timeout_s=0) == 2
    assert source.committed == 0
    assert "offsets" in loop.problems
    assert loop.run_once(timeout_s=0) == 0  # read again: the events are absorbed
    assert source.committed == 3
    assert "offsets" not in loop.problems
    assert store.events == ["e-0", "e-1"]
    assert sink.sent == [(1, sink.sent[0][1])]  # set aside once
    assert kinds == ["undecodable"]
    assert sum("set aside" in r.getMessage() for r in caplog.records) == 1


def test_offsets_wait_until_the_dead_letters_are_acknowledged() -> None:
    source = FakeSource(_records([b"not json", encode_domain_event(domain_event(1))]))
    sink = FakeSink(unacknowledged_flushes=3)
    seen: list[dict[str, str]] = []
    loop = _loop(source, sink, FakeStore(), [])
    loop.beat = lambda: seen.append(dict(loop.problems))
    loop.run_once(timeout_s=0)
    assert source.committed == 2
    assert len(seen) == 3
    assert all("dead_letters" in problems for problems in seen)
    assert loop.problems == {}


def test_a_loop_stopped_while_waiting_for_kafka_commits_nothing_and_reads_the_batch_again() -> None:
    source = FakeSource(_records([b"not json", encode_domain_event(domain_event(1))]))
    sink = FakeSink(unacknowledged_flushes=1000)
    loop = _loop(source, sink, FakeStore(), [])
    loop.beat = loop.stop.set
    loop.run_once(timeout_s=0)
    assert source.committed == 0
    assert source.position == 0


def test_an_id_already_another_sources_is_set_aside_and_the_rest_stored() -> None:
    def foreign(event_id: str, source: str) -> bytes:
        attributes = {"id": event_id, "source": source, "type": "com.example.app.deployed"}
        return json.dumps({"specversion": "1.0", **attributes}).encode()

    values = [
        foreign("1", "https://a.example/"),
        foreign("1", "https://b.example/"),  # another producer counting from 1 too
        foreign("1", "https://a.example/"),  # a repeat of the first: absorbed
        foreign("2", "https://b.example/"),
    ]
    source, sink, store, kinds = FakeSource(_records(values)), FakeSink(), FakeStore(), []
    assert _loop(source, sink, store, kinds).run_once(timeout_s=0) == 2
    assert store.events == ["1", "2"]
    [(offset, reason)] = sink.sent
    assert offset == 1
    assert "already the id of an event from another source ('https://a.example/')" in reason
    assert kinds == ["undeliverable"]
    assert source.committed == 4


@pytest.mark.parametrize("failing_call", ["subscriptions", "record_batch"])
def test_a_batch_polled_while_the_database_is_away_is_read_again_and_stored_once_it_is_back(
    failing_call: str,
) -> None:
    # Field fault (pipeline fault test, seed 741754): the subscriptions' refresh found Postgres
    # stopped after a batch was polled; the batch was dropped without being read again, and the
    # next batch's commit went past it.
    events = [domain_event(n, event_id=f"e-{n}") for n in range(6)]
    source = FakeSource(_records([encode_domain_event(e) for e in events]))
    store = FakeStore(away_for=[failing_call])
    loop = _loop(source, FakeSink(), store, [])
    loop.subscriptions_refresh_s = 0.0  # refreshed before every batch
    loop.max_batch = 3
    with pytest.raises(StoreError):
        loop.run_once(timeout_s=0)
    assert source.committed == 0
    assert loop.run_once(timeout_s=0) == 3
    assert loop.run_once(timeout_s=0) == 3
    assert store.events == [e.id for e in events]
    assert source.committed == 6


def test_a_commit_names_only_the_records_of_the_batch_handled() -> None:
    source = FakeSource(_records([encode_domain_event(domain_event(n)) for n in range(5)]))
    loop = _loop(source, FakeSink(), FakeStore(), [])
    loop.max_batch = 2
    loop.run_once(timeout_s=0)
    assert source.committed == 2
    loop.run_once(timeout_s=0)
    assert source.committed == 4


def test_the_deliveries_a_batch_creates_are_told_once_stored_before_the_offsets_are_committed() -> (
    None
):
    source = FakeSource(_records([encode_domain_event(domain_event(n)) for n in range(3)]))
    loop = _loop(source, FakeSink(), FakeStore(), [])
    told: list[tuple[int, int]] = []
    loop.on_stored = lambda created: told.append((created, source.committed))
    assert loop.run_once(timeout_s=0) == 3
    assert told == [(3, 0)]  # the sending workers are woken before the commit's round trip
    assert loop.run_once(timeout_s=0) == 0
    assert told == [(3, 0)]  # nothing new stored: no one woken
