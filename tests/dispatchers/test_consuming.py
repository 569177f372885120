"""The consuming loop on the real broker and database: records become deliveries, bad ones dead letters,
and offsets are committed only after the rows."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime

import psycopg
from confluent_kafka import Consumer, TopicPartition

from dispatchers.consuming import ConsumingLoop
from dispatchers.kafka import KafkaDeadLetters, KafkaRecordSource
from dispatchers.matching import SubscriptionFilter
from dispatchers.postgres import Store
from herald_contracts import DeadLetterHeader, DomainEvent, encode_domain_event
from tests.conftest import Topics
from tests.support import consume, produce

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
    kafka: str, topics: Topics, store: Store, group: str
) -> tuple[ConsumingLoop, KafkaRecordSource]:
    source = KafkaRecordSource(bootstrap=kafka, group_id=group, topic=topics.domain)
    loop = ConsumingLoop(
        source=source,
        dead_letters=KafkaDeadLetters(bootstrap=kafka, topic=topics.dead_letters),
        store=store,
        now=lambda: datetime.now(UTC),
        subscriptions_refresh_s=0,
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
    rollouts = store.create_subscription(
        url="http://127.0.0.1:9/a",
        secrets=[SECRET],
        filter=SubscriptionFilter(event_types=("rollout.*",)),
        ordered=True,
    )
    store.create_subscription(
        url="http://127.0.0.1:9/b",
        secrets=[SECRET],
        filter=SubscriptionFilter(event_types=("application.*",)),
        ordered=True,
    )
    events = [_event(n) for n in range(5)]
    produce(kafka, topics.domain, [(e.key.encode(), encode_domain_event(e)) for e in events])
    group = f"g-{uuid.uuid4().hex}"
    loop, source = _loop(kafka, topics, store, group)
    try:
        _run_until(loop, 5, database_url)
    finally:
        source.close()
    rows = store.deliveries()
    assert {r["subscription_id"] for r in rows} == {str(rollouts)}
    assert sorted(r["event_id"] for r in rows) == [f"e-{n}" for n in range(5)]
    assert _committed(kafka, group, topics.domain) == 5


def test_a_redelivered_batch_is_absorbed(
    kafka: str, topics: Topics, store: Store, database_url: str
) -> None:
    store.create_subscription(
        url="http://127.0.0.1:9/a", secrets=[SECRET], filter=SubscriptionFilter(), ordered=True
    )
    records = [(e.key.encode(), encode_domain_event(e)) for e in (_event(1), _event(2))]
    produce(kafka, topics.domain, records + records)  # e.g. a processor crashed before committing
    loop, source = _loop(kafka, topics, store, f"g-{uuid.uuid4().hex}")
    try:
        _run_until(loop, 2, database_url)
        for _ in range(4):
            loop.run_once(timeout_s=0.5)
    finally:
        source.close()
    assert len(store.deliveries()) == 2


def test_undecodable_records_go_to_the_dead_letter_topic_with_the_reason(
    kafka: str, topics: Topics, store: Store, database_url: str
) -> None:
    store.create_subscription(
        url="http://127.0.0.1:9/a", secrets=[SECRET], filter=SubscriptionFilter(), ordered=True
    )
    good = _event(1)
    unknown = dataclasses.replace(_event(2), type="dev.herald.rollout.exploded")
    produce(
        kafka,
        topics.domain,
        [
            (b"c/billing/Rollout/payments", b"not json"),
            (good.key.encode(), encode_domain_event(good)),
            (good.key.encode(), encode_domain_event(unknown)),
            (good.key.encode(), json.dumps({**good.to_cloudevent(), "id": ""}).encode()),
        ],
    )
    group = f"g-{uuid.uuid4().hex}"
    loop, source = _loop(kafka, topics, store, group)
    try:
        _run_until(loop, 1, database_url)
        loop.run_once(timeout_s=0.5)
    finally:
        source.close()
    dead, unknown_dead, malformed = consume(kafka, topics.dead_letters, count=3)
    assert (
        b"unknown event type 'dev.herald.rollout.exploded'"
        in unknown_dead.headers[DeadLetterHeader.ERROR]
    )
    assert b"'id'" in malformed.headers[DeadLetterHeader.ERROR]
    assert len(store.deliveries()) == 1
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
    store.create_subscription(
        url="http://127.0.0.1:9/a", secrets=[SECRET], filter=SubscriptionFilter(), ordered=True
    )
    events = [_event(n) for n in range(10)]  # one key: one partition
    produce(kafka, topics.domain, [(e.key.encode(), encode_domain_event(e)) for e in events])
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
