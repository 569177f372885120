"""The consuming loop on the real broker and database: records become deliveries, bad ones dead letters,
and offsets are committed only after the rows."""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from dispatchers.consuming import ConsumedRecord, ConsumingLoop
from dispatchers.kafka import KafkaDeadLetters, KafkaRecordSource
from dispatchers.matching import SubscriptionFilter
from dispatchers.postgres import Store
from herald_contracts import (
    DeadLetterHeader,
    DomainEvent,
    domain_record_headers,
    encode_domain_event,
)
from herald_dev import infra
from herald_runtime.backoff import Backoff
from tests.conftest import Topics
from tests.support import consume, produce, produce_domain_events

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _event(n: int, domain_type: str = "rollout.step_advanced") -> DomainEvent:
    return DomainEvent(
        id=f"e-{n}",
        source="/clusters/c/namespaces/billing/rollouts/payments",
        type=f"dev.herald.{domain_type}",
        subject="payments",
        time="2026-08-20T09:00:00Z",
        data={"cluster": "c", "namespace": "billing", "name": "payments"},
        key="c/billing/Rollout/payments",
    )


def _loop(
    kafka: str, topics: Topics, store: Store, group: str, *, kinds: list[str] | None = None
) -> tuple[ConsumingLoop, KafkaRecordSource]:
    source = KafkaRecordSource(bootstrap=kafka, group_id=group, topic=topics.domain)
    loop = ConsumingLoop(
        source=source,
        dead_letters=KafkaDeadLetters(bootstrap=kafka, topic=topics.dead_letters),
        store=store.intake,
        now=lambda: datetime.now(UTC),
        subscriptions_refresh_s=0,
        on_dead_letter=(kinds if kinds is not None else []).append,
    )
    return loop, source


def _run_until(
    loop: ConsumingLoop, rows: int, database_url: str, *, timeout_polls: int = 60
) -> None:
    for _ in range(timeout_polls):
        loop.run_once(timeout_s=0.5)
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT count(*) FROM deliveries").fetchone()
            if row is not None and row[0] >= rows:
                return
    raise AssertionError(f"fewer than {rows} deliveries")


def _committed(kafka: str, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": group})
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(partitions, timeout=10))
    finally:
        consumer.close()


def test_events_become_one_delivery_per_matching_subscription_and_offsets_are_committed(
    kafka: str, topics: Topics, store: Store, database_url: str
) -> None:
    rollouts = store.subscriptions.create(
        url="http://127.0.0.1:9/a",
        secrets=[SECRET],
        filter=SubscriptionFilter(event_types=("rollout.*",)),
        ordered=True,
    )
    store.subscriptions.create(
        url="http://127.0.0.1:9/b",
        secrets=[SECRET],
        filter=SubscriptionFilter(event_types=("application.*",)),
        ordered=True,
    )
    events = [_event(n) for n in range(5)]
    produce_domain_events(kafka, topics.domain, events)
    group = f"g-{uuid.uuid4().hex}"
    loop, source = _loop(kafka, topics, store, group)
    try:
        _run_until(loop, 5, database_url)
    finally:
        source.close()
    rows = store.log.deliveries()
    assert {r["subscription_id"] for r in rows} == {str(rollouts)}
    assert sorted(r["event_id"] for r in rows) == [f"e-{n}" for n in range(5)]
    assert _committed(kafka, group, topics.domain) == 5


def test_a_redelivered_batch_is_absorbed(
    kafka: str, topics: Topics, store: Store, database_url: str
) -> None:
    store.subscriptions.create(
        url="http://127.0.0.1:9/a", secrets=[SECRET], filter=SubscriptionFilter(), ordered=True
    )
    records = [(e.key.encode(), encode_domain_event(e)) for e in (_event(1), _event(2))]
    # e.g. a processor crashed before committing
    produce(kafka, topics.domain, records + records, headers=domain_record_headers())
    loop, source = _loop(kafka, topics, store, f"g-{uuid.uuid4().hex}")
    try:
        _run_until(loop, 2, database_url)
        for _ in range(4):
            loop.run_once(timeout_s=0.5)
    finally:
        source.close()
    assert len(store.log.deliveries()) == 2


def test_undecodable_records_go_to_the_dead_letter_topic_with_the_reason(
    kafka: str, topics: Topics, store: Store, database_url: str
) -> None:
    store.subscriptions.create(
        url="http://127.0.0.1:9/a", secrets=[SECRET], filter=SubscriptionFilter(), ordered=True
    )
    good = _event(1)
    # A type of a rule pack this dispatcher never heard of is delivered, not set aside.
    unknown = dataclasses.replace(_event(2), type="dev.herald.flagger.promoted")
    produce(
        kafka,
        topics.domain,
        [
            (b"c/billing/Rollout/payments", b"not json"),
            (good.key.encode(), encode_domain_event(good)),
            (good.key.encode(), encode_domain_event(unknown)),
            (good.key.encode(), json.dumps({**good.to_cloudevent(), "id": ""}).encode()),
        ],
        headers=domain_record_headers(),
    )
    group = f"g-{uuid.uuid4().hex}"
    loop, source = _loop(kafka, topics, store, group)
    try:
        _run_until(loop, 2, database_url)
        loop.run_once(timeout_s=0.5)
    finally:
        source.close()
    dead, malformed = consume(kafka, topics.dead_letters, count=2)
    assert b"'id'" in malformed.headers[DeadLetterHeader.ERROR]
    assert {d["event_id"] for d in store.log.deliveries()} == {good.id, unknown.id}
    assert dead.value == b"not json"
    assert dead.key == b"c/billing/Rollout/payments"
    assert dead.headers[DeadLetterHeader.SOURCE_TOPIC] == topics.domain.encode()
    assert dead.headers[DeadLetterHeader.STAGE] == b"dispatchers"
    assert b"not JSON" in dead.headers[DeadLetterHeader.ERROR]
    assert int(dead.headers[DeadLetterHeader.SOURCE_OFFSET]) >= 0
    assert _committed(kafka, group, topics.domain) == 4


def test_the_lag_counts_the_records_not_read_yet(
    kafka: str, topics: Topics, store: Store, database_url: str
) -> None:
    store.subscriptions.create(
        url="http://127.0.0.1:9/a", secrets=[SECRET], filter=SubscriptionFilter(), ordered=True
    )
    events = [_event(n) for n in range(10)]  # one key: one partition
    produce_domain_events(kafka, topics.domain, events)
    loop, source = _loop(kafka, topics, store, f"lag-{uuid.uuid4().hex[:8]}")
    loop.max_batch = 4
    read = 0
    try:
        for _ in range(60):
            read += loop.run_once(timeout_s=0.5)
            if read:
                break
        assert 0 < read < 10
        assert sum(source.lag().values()) == 10 - read
        for _ in range(60):
            if read == 10:
                break
            read += loop.run_once(timeout_s=0.5)
        assert read == 10
        assert sum(source.lag().values()) == 0
    finally:
        source.close()


def _application_event(message: str) -> DomainEvent:
    """An Argo CD sync failure as the processors publish it (shared case nul-in-message.jsonl)."""
    return DomainEvent(
        id="0f8e4a52-9d5e-5b8e-9a51-2f1d7e3c6b10",
        source="/clusters/c/namespaces/argocd/applications/edge-gateway",
        type="dev.herald.application.operation_completed",
        subject="edge-gateway",
        time="2026-11-29T10:10:00Z",
        data={
            "cluster": "c",
            "kind": "Application",
            "namespace": "argocd",
            "name": "edge-gateway",
            "source_message": message,
            "phase": "Failed",
            "revision": "4e1d9c2b7a6f5e4d3c2b1a09f8e7d6c5b4a39281",
            "detail": message.split("failed: ", 1)[1],
        },
        key="c/argocd/Application/edge-gateway",
    )


NUL_MESSAGE = (
    "Sync operation to 4e1d9c2b7a6f5e4d3c2b1a09f8e7d6c5b4a39281 failed: ComparisonError: "
    "decrypt: unexpected byte \x00 at offset 0 (PK\x03\x04\x00\x00...)\n\x1b[31merror\x1b[0m:"
    " sops metadata not found"
)


def test_an_event_with_nul_in_its_message_is_stored_and_sent_as_read_and_so_is_the_next(
    kafka: str, topics: Topics, store: Store, database_url: str
) -> None:
    """Postgres text and jsonb cannot hold U+0000: the insert failed, the dispatcher exited, and
    every restart died on the same batch. Now the body is kept byte for byte (where U+0000 is the
    escape \\u0000) and only the copy kept for queries replaces it."""
    store.subscriptions.create(
        url="http://127.0.0.1:9/a", secrets=[SECRET], filter=SubscriptionFilter(), ordered=True
    )
    failure = _application_event(NUL_MESSAGE)
    completed = _event(7, "rollout.completed")
    values = [encode_domain_event(failure), encode_domain_event(completed)]
    assert b"\\u0000" in values[0]
    produce(
        kafka,
        topics.domain,
        [(failure.key.encode(), values[0]), (completed.key.encode(), values[1])],
        headers=domain_record_headers(),
    )
    group = f"g-{uuid.uuid4().hex}"
    kinds: list[str] = []
    loop, source = _loop(kafka, topics, store, group, kinds=kinds)
    try:
        _run_until(loop, 2, database_url)
    finally:
        source.close()
    assert kinds == []
    assert _committed(kafka, group, topics.domain) == 2
    with psycopg.connect(database_url) as conn:
        stored = dict(conn.execute("SELECT id, body FROM events").fetchall())
        message = conn.execute(
            "SELECT payload->'data'->>'source_message' FROM events WHERE id = %s", (failure.id,)
        ).fetchone()
    assert stored == {failure.id: values[0].decode(), completed.id: values[1].decode()}
    assert message is not None
    assert message[0] == NUL_MESSAGE.replace("\x00", "\ufffd")


def _hex(n: int) -> str:
    return secrets.token_hex(n // 2)  # random: an index cannot compress it


BAD_RECORDS = [
    pytest.param(
        b"c/billing/Rollout/payments",
        json.dumps({**_event(9).to_cloudevent(), "data": {"x": float("nan")}}).encode(),
        "undecodable",
        b"NaN",
        id="nan",
    ),
    pytest.param(
        b"c/billing/Rollout/payments",
        json.dumps(_event(9).to_cloudevent()).encode("utf-16"),
        "undecodable",
        b"UTF-8",
        id="utf-16-body",
    ),
    pytest.param(
        b"c/billing/Rollout/payments",
        json.dumps(_event(9).to_cloudevent())[:-1].encode() + b', "n": ' + b"1" * 5000 + b"}",
        "undecodable",
        b"4300",
        id="integer-past-4300-digits",
    ),
    pytest.param(
        b"c/billing/Rollout/payments",
        encode_domain_event(dataclasses.replace(_event(9), time="9999-12-31T23:59:59-01:00")),
        "undecodable",
        b"out of range",
        id="time-in-the-year-10000-in-utc",  # stored, then every claim failed reading it back
    ),
    pytest.param(
        b"c/billing/Rollout/payments",
        encode_domain_event(dataclasses.replace(_event(9), id="\u4e8b\u4ef6-9")),
        "undeliverable",
        b"webhook-id",
        id="id-not-latin-1",
    ),
    pytest.param(
        b"c/billing/Rollout/pay\x00ments",
        encode_domain_event(_event(9)),
        "undeliverable",
        b"control characters",
        id="key-with-nul",
    ),
    pytest.param(
        b"c/billing/Rollout/payments",
        encode_domain_event(dataclasses.replace(_event(9), id=_hex(8000))),
        "refused_by_database",
        b"index row size",
        id="id-too-large-for-the-index",
    ),
    pytest.param(
        f"c/billing/Rollout/{_hex(8000)}".encode(),
        encode_domain_event(_event(9)),
        "refused_by_database",
        b"index row size",
        id="key-too-large-for-the-index",
    ),
]


@pytest.mark.parametrize(("key", "value", "kind", "reason"), BAD_RECORDS)
def test_a_record_the_dispatcher_cannot_handle_is_set_aside_once_and_the_rest_is_stored(
    kafka: str,
    topics: Topics,
    store: Store,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    key: bytes,
    value: bytes,
    kind: str,
    reason: bytes,
) -> None:
    """Each of these stopped the dispatcher (the insert raised, or a value too large for an index
    passed for an outage and held every record behind it), or would have stopped a sending worker.
    Between two good records in one batch, it is set aside with the reason, logged once and
    counted; the good ones are stored and the offsets committed past all three."""
    store.subscriptions.create(
        url="http://127.0.0.1:9/a", secrets=[SECRET], filter=SubscriptionFilter(), ordered=True
    )
    before, after = _event(1), _event(2)
    produce(
        kafka,
        topics.domain,
        [
            (before.key.encode(), encode_domain_event(before)),
            (key, value),
            (after.key.encode(), encode_domain_event(after)),
        ],
        headers=domain_record_headers(),
    )
    group = f"g-{uuid.uuid4().hex}"
    kinds: list[str] = []
    loop, source = _loop(kafka, topics, store, group, kinds=kinds)
    caplog.set_level(logging.WARNING, logger="dispatchers")
    try:
        _run_until(loop, 2, database_url)
        for _ in range(3):
            if _committed(kafka, group, topics.domain) == 3:
                break
            loop.run_once(timeout_s=0.5)
    finally:
        source.close()
    assert sorted(r["event_id"] for r in store.log.deliveries()) == ["e-1", "e-2"]
    assert _committed(kafka, group, topics.domain) == 3
    assert kinds == [kind]
    # The sending workers can read what was stored (ordered: e-2 waits behind e-1).
    claimed = store.queue.claim(now=datetime.now(UTC), limit=10, lease_s=60)
    assert [d.event_id for d in claimed.deliveries] == ["e-1"]
    (dead,) = consume(kafka, topics.dead_letters, count=1, timeout_s=10)
    assert (dead.key, dead.value) == (key, value)
    assert reason in dead.headers[DeadLetterHeader.ERROR], dead.headers[DeadLetterHeader.ERROR]
    offset = int(dead.headers[DeadLetterHeader.SOURCE_OFFSET])
    logged = [r for r in caplog.records if f"@{offset} " in r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in caplog.records]


class _StopsKafkaAfterSending:
    """The real dead-letter sink, but Kafka stops just before the first dead letter is handed to
    it (the records were read); it comes back `down_s` later."""

    def __init__(self, sink: KafkaDeadLetters, pid: int, home: str, bootstrap: str, down_s: float):
        self.sink, self.pid, self.home, self.bootstrap, self.down_s = (
            sink,
            pid,
            home,
            bootstrap,
            down_s,
        )
        self.restarted = threading.Event()

    def send(self, record: ConsumedRecord, *, error: str) -> None:
        if not hasattr(self, "_timer"):
            infra.stop_kafka(self.pid)

            def restart() -> None:
                self.pid = infra.launch_kafka(Path(self.home), self.bootstrap)
                self.restarted.set()

            self._timer = threading.Timer(self.down_s, restart)
            self._timer.start()
        self.sink.send(record, error=error)

    def flush(self, timeout_s: float) -> None:
        self.sink.flush(timeout_s)


@pytest.mark.timeout(180)
def test_dead_letters_wait_for_kafka_with_backoff_and_the_offsets_wait_for_them(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    """Kafka away between sending a dead letter and its acknowledgement, for longer than a flush
    waits: the loop used to raise ("not acknowledged") and stop the dispatcher. Now it waits with
    backoff, says why in `problems` (the readiness check), and once Kafka is back the dead letter
    is there once and the offsets are committed past it."""
    pid, bootstrap, home = infra.start_kafka(tmp_path / "private-kafka")
    sink: _StopsKafkaAfterSending | None = None
    try:
        topics = Topics(raw="r", domain="d", dead_letters="dl", checkpoints="cp")
        infra.create_topics(bootstrap, topics.env(), partitions=1)
        store.subscriptions.create(
            url="http://127.0.0.1:9/a", secrets=[SECRET], filter=SubscriptionFilter(), ordered=True
        )
        good = _event(1)
        produce(
            bootstrap,
            topics.domain,
            [(good.key.encode(), b"not json"), (good.key.encode(), encode_domain_event(good))],
            headers=domain_record_headers(),
        )
        group = f"g-{uuid.uuid4().hex}"
        sink = _StopsKafkaAfterSending(
            KafkaDeadLetters(bootstrap=bootstrap, topic=topics.dead_letters),
            pid,
            home,
            bootstrap,
            down_s=8,  # longer than a flush waits (5 s)
        )
        source = KafkaRecordSource(bootstrap=bootstrap, group_id=group, topic=topics.domain)
        seen: list[dict[str, str]] = []
        loop = ConsumingLoop(
            source=source,
            dead_letters=sink,
            store=store.intake,
            now=lambda: datetime.now(UTC),
            subscriptions_refresh_s=0,
            backoff=Backoff(base_s=0.2, cap_s=1),
            beat=lambda: seen.append(dict(loop.problems)),
        )
        try:
            created = 0
            for _ in range(60):
                created += loop.run_once(timeout_s=0.5)
                if created:
                    break
        finally:
            source.close()
        assert created == 1
        # The broker was away and came back (its restart may return after the loop went on: the
        # broker answers before the readiness check that launches it does).
        assert sink.restarted.wait(30)
        assert any("dead_letters" in problems for problems in seen)
        assert "dead_letters" not in loop.problems
        assert _committed(bootstrap, group, topics.domain) == 2
        # Read on 3 s past the first for a second (it would be there by now: the loop is done).
        dead = consume(bootstrap, topics.dead_letters, count=1, timeout_s=10, linger_s=3)
        assert [d.value for d in dead] == [b"not json"]
    finally:
        if sink is not None:
            sink.restarted.wait(30)
            pid = sink.pid
        infra.stop_kafka(pid)


def test_a_dead_letter_too_large_for_its_topic_goes_without_its_value_pointing_at_the_source(
    kafka: str, topics: Topics, store: Store, database_url: str
) -> None:
    """A record the dead-letter topic cannot take whole (its max.message.bytes is smaller than the
    source topic's) would be refused by Kafka for ever and hold every record behind it."""
    admin = AdminClient({"bootstrap.servers": kafka})
    small = f"{topics.dead_letters}.small"
    admin.create_topics([NewTopic(small, 1, 1, config={"max.message.bytes": "2048"})])[
        small
    ].result(30)
    big = b"not json " + b"x" * 4000
    good = _event(1)
    produce(
        kafka,
        topics.domain,
        [(good.key.encode(), big), (good.key.encode(), encode_domain_event(good))],
        headers=domain_record_headers(),
    )
    group = f"g-{uuid.uuid4().hex}"
    source = KafkaRecordSource(bootstrap=kafka, group_id=group, topic=topics.domain)
    loop = ConsumingLoop(
        source=source,
        dead_letters=KafkaDeadLetters(bootstrap=kafka, topic=small),
        store=store.intake,
        now=lambda: datetime.now(UTC),
        backoff=Backoff(base_s=0.1, cap_s=0.5),
    )
    try:
        for _ in range(60):
            loop.run_once(timeout_s=0.5)
            if _committed(kafka, group, topics.domain) == 2:
                break
    finally:
        source.close()
    assert _committed(kafka, group, topics.domain) == 2
    (dead,) = consume(kafka, small, count=1, timeout_s=10)
    assert dead.value is None
    assert dead.key == good.key.encode()
    assert dead.headers[DeadLetterHeader.SOURCE_TOPIC] == topics.domain.encode()
    assert b"not JSON" in dead.headers[DeadLetterHeader.ERROR]
    assert b"too large for the dead-letter topic" in dead.headers[DeadLetterHeader.ERROR]


def _poll_until(source: KafkaRecordSource, count: int) -> list[ConsumedRecord]:
    records: list[ConsumedRecord] = []
    for _ in range(60):
        records += source.poll_batch(max_records=count - len(records), timeout_s=0.5)
        if len(records) >= count:
            return records
    raise AssertionError(f"fewer than {count} records polled: {len(records)}")


def test_a_commit_names_the_offsets_of_the_records_handled_not_how_far_the_consumer_read(
    kafka: str, topics: Topics
) -> None:
    # librdkafka would commit how far it handed records over (its stored offsets), which a seek
    # back does not undo: a batch read again after the database went away would be committed past.
    events = [_event(n) for n in range(6)]  # one key: one partition, in order
    produce_domain_events(kafka, topics.domain, events)
    group = f"g-{uuid.uuid4().hex}"
    source = KafkaRecordSource(bootstrap=kafka, group_id=group, topic=topics.domain)
    try:
        records = _poll_until(source, 6)
        source.commit(records[:2])
        assert _committed(kafka, group, topics.domain) == 2
        source.rewind(records[2:])
        again = _poll_until(source, 4)
        assert [r.offset for r in again] == [r.offset for r in records[2:]]
        source.commit(again)
        assert _committed(kafka, group, topics.domain) == 6
    finally:
        source.close()


def test_a_lone_record_is_handed_on_as_soon_as_it_is_fetched_not_when_the_poll_times_out(
    kafka: str, topics: Topics
) -> None:
    # Asking librdkafka for a batch of 500 with a timeout held a lone record until the timeout
    # (about 440 ms of 500): most of the dispatcher's end-to-end latency.
    produce_domain_events(kafka, topics.domain, [_event(0)])
    source = KafkaRecordSource(
        bootstrap=kafka, group_id=f"g-{uuid.uuid4().hex}", topic=topics.domain
    )
    try:
        for _ in range(10):  # the first polls may go on joining the group
            started = time.monotonic()
            records = source.poll_batch(max_records=500, timeout_s=60)
            if records:
                break
        assert [r.offset for r in records] == [0]
        assert time.monotonic() - started < 30  # not the 60 s the poll was allowed
    finally:
        source.close()


def test_records_fetched_together_are_handed_on_together(kafka: str, topics: Topics) -> None:
    events = [_event(n) for n in range(50)]  # one key: one partition, fetched together
    produce_domain_events(kafka, topics.domain, events)
    source = KafkaRecordSource(
        bootstrap=kafka, group_id=f"g-{uuid.uuid4().hex}", topic=topics.domain
    )
    batches: list[list[ConsumedRecord]] = []
    try:
        for _ in range(60):
            batch = source.poll_batch(max_records=500, timeout_s=0.5)
            if batch:
                batches.append(batch)
            if sum(map(len, batches)) >= 50:
                break
    finally:
        source.close()
    assert [r.offset for batch in batches for r in batch] == list(range(50))
    assert len(batches[0]) > 1  # not one record per turn of the loop under load
