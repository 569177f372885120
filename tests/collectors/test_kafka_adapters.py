"""The Kafka adapters' refusals, on a real librdkafka producer that never reaches a broker (nothing
listens on 127.0.0.1:1): what the producer refuses at once must come out as the collector's errors."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from collectors.checkpoints import Checkpoint, KafkaCheckpointStore
from collectors.errors import PublishError, RecordRefusedError
from collectors.kafka import KafkaRecordSink, producer_config
from collectors.records import to_raw_record
from herald_contracts import RawRecord, encode_raw_record
from tests.support import rollout_event

NOWHERE = "127.0.0.1:1"


@pytest.fixture
def producer() -> Iterator[Producer]:
    p = Producer(
        {
            **producer_config(NOWHERE, message_max_bytes=100_000, queue_max_messages=2),
            "logger": logging.getLogger("test.librdkafka"),
        }
    )
    yield p
    p.purge()
    p.flush(0)


def _record(padding: int, **fields: object) -> RawRecord:
    event = {**rollout_event("Unhealthy", "probe"), **fields}
    event["metadata"]["annotations"] = {"pad": "x" * padding}
    return to_raw_record(cluster="c", watch_type="ADDED", event=event, collected_at="t")


def _sized(total: int) -> RawRecord:
    """A record whose key and value take `total` bytes."""
    base = _record(0)
    overhead = len(base.key.encode()) + len(encode_raw_record(base))
    return _record(total - overhead)


def _publish(sink: KafkaRecordSink, record: RawRecord, reports: list[str | None]) -> None:
    sink.publish(record, on_delivery=reports.append, stop=threading.Event())


def _queued(producer: Producer, reports: list[str | None]) -> int:
    """How many records the producer had taken: purged, each reports once."""
    producer.purge()
    producer.poll(1)
    return len(reports)


def test_a_record_larger_than_the_producer_takes_is_refused_for_good(producer: Producer) -> None:
    sink = KafkaRecordSink(producer, topic="t", message_max_bytes=100_000)
    reports: list[str | None] = []
    with pytest.raises(RecordRefusedError, match="takes 150000 bytes") as refused:
        _publish(sink, _sized(150_000), reports)
    assert refused.value.reason == "too_large"
    assert _queued(producer, reports) == 0


def test_a_record_that_fits_only_without_kafkas_framing_is_refused_for_good(
    producer: Producer,
) -> None:
    sink = KafkaRecordSink(producer, topic="t", message_max_bytes=100_000)
    reports: list[str | None] = []
    with pytest.raises(RecordRefusedError, match="with Kafka's framing") as refused:
        _publish(sink, _sized(99_995), reports)
    assert refused.value.reason == "too_large"
    _publish(sink, _sized(90_000), reports)
    assert _queued(producer, reports) == 1


def test_a_record_that_is_not_utf8_is_refused_for_good(producer: Producer) -> None:
    sink = KafkaRecordSink(producer, topic="t", message_max_bytes=100_000)
    with pytest.raises(RecordRefusedError) as refused:
        _publish(sink, _record(0, message="lone \ud800 surrogate"), [])
    assert refused.value.reason == "not_utf8"


def test_a_checkpoint_the_full_producer_cannot_take_raises_publish_error_not_buffer_error(
    producer: Producer,
) -> None:
    store = KafkaCheckpointStore(producer, bootstrap=NOWHERE, topic="cp")
    store.save("c/*", Checkpoint("1", "https://k"))
    store.save("c/*", Checkpoint("2", "https://k"))
    with pytest.raises(PublishError, match="queue is full"):
        store.save("c/*", Checkpoint("3", "https://k"))
