"""What the stall guard asks Kafka before it restarts a worker (`processors.kafka.holds_records`):
whether the offsets between a partition's committed offset and its end hold a record at all. A
transactional producer's commit marker takes an offset and the end offset counts it, but no
consumer is handed it, so a partition whose last offset is a marker looks like one with a record
waiting forever."""

from __future__ import annotations

import asyncio
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from processors.kafka import holds_records


def _write_in_one_transaction(kafka: str, topic: str, count: int) -> None:
    producer = Producer(
        {
            "bootstrap.servers": kafka,
            "partitioner": "murmur2_random",
            "transactional.id": f"markers-{uuid.uuid4().hex[:8]}",
        }
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(count):
        producer.produce(topic, key=b"k", value=str(i).encode(), partition=0)
    producer.commit_transaction(30)


def _end(kafka: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": f"ends-{uuid.uuid4().hex[:6]}"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        consumer.close()


def test_a_partition_ending_in_a_transaction_marker_holds_no_record_past_its_last_one(
    kafka: str,
) -> None:
    topic = f"markers.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    _write_in_one_transaction(kafka, topic, 3)
    end = _end(kafka, topic)
    assert end == 4  # three records, then the commit marker

    assert asyncio.run(holds_records(kafka, topic, 0, 0, end))
    assert asyncio.run(holds_records(kafka, topic, 0, 2, end))  # the last record
    assert not asyncio.run(holds_records(kafka, topic, 0, 3, end))  # only the marker
