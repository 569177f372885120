"""Checkpoints: per watch scope, the last resourceVersion whose records were all acknowledged.

They live in a compacted Kafka topic (key `<cluster>/<namespace or *>`), so a collector restarted on
another node, or another replica taking a cluster over, resumes where the last one stopped. A
checkpoint names the API server it came from: one taken against another server (the cluster was
re-pointed) is ignored, since its resourceVersions mean nothing there.

Writing one never blocks and never raises anything but `PublishError`: when the producer's queue is
full (Kafka slow or away, the watches' records waiting), the caller keeps the checkpoint and writes
it later. Reading them at start raises `KafkaUnavailableError` when Kafka does not answer, to be
waited for. The topic itself is checked (and created) by `collectors.topics`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from collectors.errors import KafkaUnavailableError, PublishError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    resource_version: str
    server: str


def scope_key(cluster: str, namespace: str | None) -> str:
    return f"{cluster}/{namespace or '*'}"


class CheckpointStore(Protocol):
    def save(self, scope: str, checkpoint: Checkpoint) -> None:
        """Hand the checkpoint over without waiting; PublishError if it cannot be taken now."""


class KafkaCheckpointStore:
    def __init__(self, producer: Producer, *, bootstrap: str, topic: str) -> None:
        self._producer = producer
        self._bootstrap = bootstrap
        self._topic = topic

    def load(self, *, timeout_s: float = 20) -> dict[str, Checkpoint]:
        """Read the topic from the beginning to its end; the newest value per key wins.

        KafkaUnavailableError if Kafka does not answer, or the end is not reached within about
        `timeout_s`."""
        consumer = Consumer(
            {
                "bootstrap.servers": self._bootstrap,
                "group.id": f"herald-checkpoint-reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "logger": log,
            }
        )
        checkpoints: dict[str, Checkpoint] = {}
        deadline = time.monotonic() + timeout_s
        try:
            metadata = consumer.list_topics(self._topic, timeout=5).topics.get(self._topic)
            if metadata is None or metadata.error is not None:
                error = "no such topic" if metadata is None else metadata.error.str()
                raise KafkaUnavailableError(
                    f"cannot read the checkpoints in {self._topic!r}: {error}"
                )
            ends = {}
            for partition in metadata.partitions:
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(self._topic, partition), timeout=5
                )
                if high > 0:
                    ends[partition] = high
            consumer.assign([TopicPartition(self._topic, p, 0) for p in ends])
            while ends:
                if time.monotonic() > deadline:
                    raise KafkaUnavailableError(
                        f"cannot read the checkpoints in {self._topic!r} within {timeout_s:.0f}s"
                    )
                for message in consumer.consume(num_messages=500, timeout=0.5):
                    if message.error() is None:
                        _apply(checkpoints, message.key(), message.value())
                for position in consumer.position([TopicPartition(self._topic, p) for p in ends]):
                    if position.offset >= ends[position.partition]:
                        ends.pop(position.partition)
        except KafkaException as e:
            raise KafkaUnavailableError(
                f"cannot read the checkpoints in {self._topic!r}: {e}"
            ) from e
        finally:
            consumer.close()
        return checkpoints

    def save(self, scope: str, checkpoint: Checkpoint) -> None:
        """Hand the checkpoint to the producer, never waiting; PublishError if it cannot take it now."""
        value = json.dumps(
            {"resource_version": checkpoint.resource_version, "server": checkpoint.server}
        )
        try:
            self._producer.produce(self._topic, key=scope.encode(), value=value.encode())
        except BufferError as e:
            raise PublishError(
                "the producer's queue is full (Kafka is slow or away): checkpoint kept for later"
            ) from e
        except KafkaException as e:
            raise PublishError(f"cannot produce to {self._topic}: {e}") from e


def _apply(checkpoints: dict[str, Checkpoint], key: bytes | None, value: bytes | None) -> None:
    scope = (key or b"").decode()
    if not value:
        checkpoints.pop(scope, None)
        return
    try:
        data = json.loads(value)
        checkpoints[scope] = Checkpoint(str(data["resource_version"]), str(data["server"]))
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring an unreadable checkpoint for %s", scope)
