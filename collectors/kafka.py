"""`RecordSink` on confluent-kafka: one idempotent producer shared by every watch of the process.

A record counts as published only when its delivery report says so; the report is handed to the
watch's callback (which moves its checkpoint). The producer's queue is bounded: when it is full,
`publish` waits for the broker to take records, so a slow or absent broker slows the watches down
(backpressure) instead of growing memory or dropping records. Records that still fail (the broker
was away longer than `message_timeout_s`) are reported as failed, and the watch re-reads from its
checkpoint.

A record Kafka will never take is refused here, at once, with `RecordRefusedError`, so the watch
sets it aside instead of re-reading it for ever: one larger than the producer's `message.max.bytes`
(librdkafka refuses it in `produce()`, and the broker would refuse it too), or one that is not valid
UTF-8 (a lone surrogate from a `\ud800` escape, which no API server writes but a proxy could).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from collectors.errors import PublishError, RecordRefusedError
from collectors.watching import DeliveryCallback
from herald_contracts import RawRecord, encode_raw_record

log = logging.getLogger(__name__)


DEFAULT_MESSAGE_MAX_BYTES = 1_000_000
"""librdkafka's default `message.max.bytes`, below the broker's default (1 MiB and 12 bytes)."""


def producer_config(
    bootstrap: str,
    *,
    queue_max_messages: int = 20_000,
    queue_max_kbytes: int = 32_768,
    message_timeout_s: float = 300.0,
    message_max_bytes: int = DEFAULT_MESSAGE_MAX_BYTES,
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
        # A batch never exceeds what one record may be, so a broker that takes the largest record
        # takes every batch.
        "batch.size": min(1_000_000, message_max_bytes),
        "message.max.bytes": message_max_bytes,
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
        message_max_bytes: int = DEFAULT_MESSAGE_MAX_BYTES,
        observe: DeliveryObserver = lambda record, latency_s, error: None,
    ) -> None:
        """`message_max_bytes`: the producer's `message.max.bytes` (see `producer_config`)."""
        self._producer = producer
        self._topic = topic
        self._message_max_bytes = message_max_bytes
        self._observe = observe

    def publish(
        self, record: RawRecord, *, on_delivery: DeliveryCallback, stop: threading.Event
    ) -> None:
        try:
            key, value = record.key.encode(), encode_raw_record(record)
        except UnicodeEncodeError as e:
            raise RecordRefusedError(f"not valid UTF-8: {e}", reason="not_utf8") from e
        size = len(key) + len(value)
        if size > self._message_max_bytes:
            raise RecordRefusedError(
                f"the record takes {size} bytes, more than Kafka takes "
                f"(message.max.bytes {self._message_max_bytes})",
                reason="too_large",
            )
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
                self._producer.produce(self._topic, key=key, value=value, on_delivery=report)
            except BufferError:
                # Backpressure: the queue is full because the broker is slow or away. Wait for it.
                if stop.is_set():
                    raise PublishError("stopped while Kafka was not taking records") from None
                self._producer.poll(0.1)
            except KafkaException as e:
                error = e.args[0] if e.args else None
                if isinstance(error, KafkaError) and error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                    # The size above is the record's; librdkafka adds its framing to it.
                    raise RecordRefusedError(
                        f"the record takes {size} bytes with Kafka's framing, more than "
                        f"message.max.bytes {self._message_max_bytes}",
                        reason="too_large",
                    ) from e
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
