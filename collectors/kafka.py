"""`RecordSink` on confluent-kafka: an idempotent producer whose delivery reports are counted.

A record counts as published only when its delivery report says so. When librdkafka's queue is
full, `publish` serves delivery reports until there is room, so a slow or absent broker slows the
watch down (backpressure) instead of growing memory or dropping records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from collectors.errors import PublishError
from herald_contracts import RawRecord, encode_raw_record

log = logging.getLogger(__name__)


def producer_config(bootstrap: str) -> dict[str, object]:
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        # Same key hashing as the Java client and aiokafka (faust), so one key means one partition
        # whichever service produced it.
        "partitioner": "murmur2_random",
        "compression.type": "lz4",
        "linger.ms": 5,
        "queue.buffering.max.messages": 100_000,
    }


class KafkaRecordSink:
    def __init__(
        self,
        producer: Producer,
        *,
        topic: str,
        on_delivered: Callable[[float], None] = lambda latency_s: None,
        on_failed: Callable[[str], None] = lambda error: None,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._on_delivered = on_delivered
        self._on_failed = on_failed
        self.delivered = 0
        self.failed = 0

    def publish(self, record: RawRecord) -> None:
        value = encode_raw_record(record)
        while True:
            try:
                self._producer.produce(
                    self._topic, key=record.key.encode(), value=value, on_delivery=self._report
                )
                break
            except BufferError:
                self._producer.poll(0.1)  # backpressure: wait for the broker to take records
            except KafkaException as e:
                raise PublishError(f"cannot produce to {self._topic}: {e}") from e
        self._producer.poll(0)

    def _report(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.failed += 1
            log.error("record for %s not delivered: %s", message.key(), error)
            self._on_failed(str(error.name()))
            return
        self.delivered += 1
        _, timestamp_ms = message.timestamp()
        self._on_delivered(max(0.0, message.latency() or 0.0) if timestamp_ms else 0.0)

    def flush(self, timeout_s: float) -> int:
        """Wait for outstanding delivery reports; return how many records are still unsent."""
        return int(self._producer.flush(timeout_s))
