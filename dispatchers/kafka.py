"""The dispatcher's Kafka adapters: the domain-topic consumer and the dead-letter producer.

Offsets are never committed automatically: `commit` is called by the consuming loop only after the
deliveries of everything it consumed are committed in Postgres.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from dispatchers.consuming import ConsumedRecord, ConsumeError
from herald_contracts import dead_letter_headers

log = logging.getLogger(__name__)


class KafkaRecordSource:
    def __init__(self, *, bootstrap: str, group_id: str, topic: str) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "cooperative-sticky",
            }
        )
        self._consumer.subscribe([topic])

    def poll_batch(self, *, max_records: int, timeout_s: float) -> list[ConsumedRecord]:
        records = []
        for message in self._consumer.consume(num_messages=max_records, timeout=timeout_s):
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise ConsumeError(f"fatal Kafka consumer error: {error}")
                log.warning("Kafka consumer: %s", error)
                continue
            records.append(
                ConsumedRecord(
                    topic=message.topic() or "",
                    partition=message.partition() or 0,
                    offset=message.offset() or 0,
                    key=message.key(),
                    value=message.value(),
                )
            )
        return records

    def commit(self) -> None:
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as e:
            # "No offset stored" means nothing was consumed since the last commit: not an error.
            if "NO_OFFSET" not in str(e):
                raise ConsumeError(f"offset commit failed: {e}") from e

    def rewind(self, records: Sequence[ConsumedRecord]) -> None:
        first: dict[tuple[str, int], int] = {}
        for record in records:
            key = (record.topic, record.partition)
            first[key] = min(first.get(key, record.offset), record.offset)
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as e:
                # No longer assigned (a rebalance): its new owner reads from the committed offset.
                log.info("not rewinding %s[%d]: %s", topic, partition, e)

    def lag(self) -> dict[int, int]:
        """Per assigned partition, records not yet read: the high watermark the last fetch saw
        minus this consumer's position (no broker round trip). Partitions not fetched yet are
        left out."""
        lags: dict[int, int] = {}
        assigned = self._consumer.assignment()
        if not assigned:
            return lags
        for tp in self._consumer.position(assigned):
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high is None or high < 0 or tp.offset < 0:
                continue
            lags[tp.partition] = max(0, high - tp.offset)
        return lags

    def close(self) -> None:
        self._consumer.close()


class KafkaDeadLetters:
    def __init__(self, *, bootstrap: str, topic: str) -> None:
        self._topic = topic
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "partitioner": "murmur2_random",
            }
        )

    def send(self, record: ConsumedRecord, *, error: str) -> None:
        headers = dead_letter_headers(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            stage="dispatchers",
            error=error,
        )
        self._producer.produce(
            self._topic, key=record.key, value=record.value, headers=list(headers)
        )

    def flush(self, timeout_s: float) -> None:
        unsent = self._producer.flush(timeout_s)
        if unsent:
            raise ConsumeError(f"{unsent} dead letters not acknowledged by Kafka")
