"""`RecordSink` on confluent-kafka: one idempotent producer shared by every watch of the process.

A record counts as published only when its delivery report says so; the report is handed to the
watch's callback (which moves its checkpoint). The producer's queue is bounded: when it is full,
`publish` waits for the broker to take records, so a slow or absent broker slows the watches down
(backpressure) instead of growing memory or dropping records. Records that still fail (the broker
was away longer than `message_timeout_s`) are reported as failed, and the watch re-reads from its
checkpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from collectors.errors import PublishError
from collectors.watching import DeliveryCallback
from herald_contracts import RawRecord, encode_raw_record

log = logging.getLogger(__name__)


def producer_config(
    bootstrap: str,
    *,
    queue_max_messages: int = 20_000,
    queue_max_kbytes: int = 32_768,
    message_timeout_s: float = 300.0,
) -> dict[str, object]:
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        # Same key hashing as the Java client and aiokafka (faust), so one key means one partition
        # whichever service produced it.
        "partitioner": "murmur2_random",
        "compression.type": "lz4",
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": queue_max_messages,
        "queue.buffering.max.kbytes": queue_max_kbytes,
        "message.timeout.ms": int(message_timeout_s * 1000),
    }


DeliveryObserver = Callable[[RawRecord, float, str | None], None]
"""(record, seconds from produce to report, error or None)."""


class KafkaRecordSink:
    def __init__(
        self,
        producer: Producer,
        *,
        topic: str,
        observe: DeliveryObserver = lambda record, latency_s, error: None,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._observe = observe

    def publish(
        self, record: RawRecord, *, on_delivery: DeliveryCallback, stop: threading.Event
    ) -> None:
        value = encode_raw_record(record)
        started = time.monotonic()

        def report(error: KafkaError | None, message: Message) -> None:
            text = None if error is None else str(error.name())
            self._observe(record, time.monotonic() - started, text)
            if text is not None:
                log.error(
                    "record %s for %s not delivered: %s",
                    record.object.get("metadata", {}).get("uid"),
                    record.key,
                    error,
                )
            on_delivery(text)

        while True:
            try:
                self._producer.produce(
                    self._topic, key=record.key.encode(), value=value, on_delivery=report
                )
            except BufferError:
                # Backpressure: the queue is full because the broker is slow or away. Wait for it.
                if stop.is_set():
                    raise PublishError("stopped while Kafka was not taking records") from None
                self._producer.poll(0.1)
            except KafkaException as e:
                raise PublishError(f"cannot produce to {self._topic}: {e}") from e
            else:
                return

    def serve_reports(self, stop: threading.Event) -> None:
        """Serve delivery reports until `stop` (run in a thread of its own)."""
        while not stop.is_set():
            self._producer.poll(0.1)

    def flush(self, timeout_s: float) -> int:
        """Wait for outstanding delivery reports; return how many records are still unsent."""
        return int(self._producer.flush(timeout_s))
