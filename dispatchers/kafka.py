"""The dispatcher's Kafka adapters: the domain-topic consumer and the dead-letter producer.

Offsets are never committed automatically, nor stored automatically: `commit` is called by the
consuming loop only after the deliveries of a batch are committed in Postgres and its dead letters
acknowledged, and it commits the offsets just past that batch's records, not librdkafka's stored
offsets. (librdkafka stores the offset of every record it hands over, and a `seek` back does not
undo that: committing the stored offsets after a batch was read again from an earlier position
would commit past records not handled yet.)

A dead letter waits for Kafka as long as it takes (`message.timeout.ms` 0: librdkafka's default
of 5 minutes would expire it while Kafka is away, and `flush` would then report nothing left to
send: the offsets were committed and the record was lost). A dead letter Kafka refuses (the topic
is missing, or not writable) is sent again at the next flush, so the loop keeps waiting and says
why; one too large for the dead-letter topic is sent without its value, its headers still pointing
at the record in its source topic.

At start, `wait_for_topics` waits until the domain and dead-letter topics exist: unready meanwhile,
saying which are missing and the command that creates them (`herald_runtime.topics.waiting`).
(A consumer subscribed to a missing topic waits without a word, and a dead letter could not be
written.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from dispatchers.consuming import CommitError, ConsumedRecord, ConsumeError, DeadLetterError
from herald_contracts import dead_letter_headers
from herald_runtime.backoff import Backoff
from herald_runtime.topics import waiting as topic_waiting

log = logging.getLogger(__name__)


def wait_for_topics(
    *,
    bootstrap: str,
    topics: Sequence[str],
    waiting: Callable[[str], None],
    beat: Callable[[], None],
    stop: threading.Event,
    backoff: Backoff,
) -> bool:
    """True once every one of `topics` exists; False if `stop` is set first. `waiting(reason)` is
    told why after every ask that finds one missing (or no broker), `beat()` before every ask."""
    found = topic_waiting.wait_for_topics(
        bootstrap=bootstrap, topics=topics, waiting=waiting, beat=beat, stop=stop, backoff=backoff
    )
    return found is not None


class KafkaRecordSource:
    def __init__(
        self,
        *,
        bootstrap: str,
        group_id: str,
        topic: str,
        extra_topics: Sequence[str] = (),
        session_timeout_s: float = 45.0,
    ) -> None:
        """Read `topic` (the domain topic) and `extra_topics`, in one consumer group: order is kept
        per partition, so per key per topic. A replica that died keeps its partitions until
        `session_timeout_s` has passed without its heartbeat."""
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,  # `commit` names the offsets: see above
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "cooperative-sticky",
                "session.timeout.ms": int(session_timeout_s * 1000),
                "logger": log,  # librdkafka's logs through `logging`, written as it is polled
            }
        )
        self._consumer.subscribe([topic, *extra_topics])
        self._topic = topic

    def poll_batch(self, *, max_records: int, timeout_s: float) -> list[ConsumedRecord]:
        """The first record as soon as it is fetched, with whatever librdkafka has fetched behind it
        (`consume` with no timeout returns what is queued). Asking for a full batch with a
        timeout would hold a lone record until the timeout: about 440 ms of 500."""
        messages = self._consumer.consume(num_messages=1, timeout=timeout_s)
        if messages and max_records > 1:
            messages += self._consumer.consume(num_messages=max_records - 1, timeout=0)
        records = []
        for message in messages:
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
                    headers=_headers(message.headers()),
                )
            )
        return records

    def commit(self, records: Sequence[ConsumedRecord]) -> None:
        after: dict[tuple[str, int], int] = {}
        for record in records:
            key = (record.topic, record.partition)
            after[key] = max(after.get(key, 0), record.offset + 1)
        if not after:
            return
        offsets = [
            TopicPartition(topic, partition, offset) for (topic, partition), offset in after.items()
        ]
        try:
            committed = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            raise CommitError(f"offset commit failed: {e}") from e
        refused = [tp for tp in committed or () if tp.error is not None]
        if refused:
            raise CommitError(
                "offset commit failed: "
                + "; ".join(f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in refused)
            )

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
        """Per assigned partition number (summed over the topics read), records not yet read: the
        high watermark the last fetch saw minus this consumer's position (no broker round trip).
        Partitions not fetched yet are left out."""
        lags: dict[int, int] = {}
        assigned = self._consumer.assignment()
        if not assigned:
            return lags
        for tp in self._consumer.position(assigned):
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high is None or high < 0 or tp.offset < 0:
                continue
            # Summed over the topics read: the metric is labelled by partition only.
            lags[tp.partition] = lags.get(tp.partition, 0) + max(0, high - tp.offset)
        return lags

    def unreachable(self) -> str | None:
        """Why no broker answers a metadata request within 2 s, or None (one round trip)."""
        try:
            self._consumer.list_topics(self._topic, timeout=2)
        except KafkaException as e:
            return f"no Kafka broker answers: {e}"
        return None

    def close(self) -> None:
        self._consumer.close()


def _headers(raw: object) -> tuple[tuple[str, bytes | None], ...]:
    """A consumed record's headers as (name, bytes) pairs (the consumer gives a list of them)."""
    if not isinstance(raw, list):
        return ()
    return tuple((name, value.encode() if isinstance(value, str) else value) for name, value in raw)


class KafkaDeadLetters:
    def __init__(self, *, bootstrap: str, topic: str) -> None:
        self._topic = topic
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "partitioner": "murmur2_random",
                "message.timeout.ms": 0,  # never expire: see the module docstring
                "logger": log,  # librdkafka's logs through `logging`, written as it is polled
            }
        )
        self._refused: list[tuple[ConsumedRecord, str, KafkaError]] = []

    def send(self, record: ConsumedRecord, *, error: str) -> None:
        self._produce(record, error=error, value=record.value)

    def _produce(self, record: ConsumedRecord, *, error: str, value: bytes | None) -> None:
        def delivered(failure: KafkaError | None, _: Message) -> None:
            if failure is not None:
                self._refused.append((record, error, failure))

        headers = dead_letter_headers(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            stage="dispatchers",
            error=error,
        )
        try:
            self._producer.produce(
                self._topic,
                key=record.key,
                value=value,
                headers=list(headers),
                on_delivery=delivered,
            )
        except KafkaException as e:  # refused before sending (larger than message.max.bytes)
            self._refused.append((record, error, e.args[0]))

    def flush(self, timeout_s: float) -> None:
        unsent = self._producer.flush(timeout_s)
        refused, self._refused = self._refused, []
        for record, error, failure in refused:
            if failure.code() in (KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE):
                size = len(record.value or b"")
                # The note first: the error header is cut at 4 KiB.
                self._produce(
                    record,
                    error=f"value left out ({size} bytes, too large for the dead-letter topic):"
                    f" read it at its source position. {error}",
                    value=None,
                )
            else:
                self._produce(record, error=error, value=record.value)
        if unsent or refused:
            reasons = sorted({str(failure) for _, _, failure in refused})
            raise DeadLetterError(
                f"{unsent + len(refused)} dead letters not acknowledged by Kafka"
                + (f" ({'; '.join(reasons)})" if reasons else "")
            )
