"""What the processor asks Kafka before its worker starts: that its topics exist (raw, domain,
dead letters), and the raw topic's partition count.

The tables are co-partitioned with the raw topic, so the worker cannot be built without that count;
and a worker started without its domain or dead-letter topic could only hold its commits until
they exist. A broker that does not answer, or a topic that does not exist yet, is a dependency not
there yet, not a bad setting: `wait_for_raw_partitions` asks again with a growing pause (published
for /readyz, and logged: each time Kafka does not answer, once which topics are missing and the
command that creates them) until Kafka answers and the topics exist, or a stop is requested
(`herald_runtime.topics.waiting`). Before issue 9 the processor exited with "bad setting:
HERALD_KAFKA_BOOTSTRAP" when the broker was merely down at start.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from herald_runtime.backoff import Backoff
from herald_runtime.topics.waiting import wait_for_topics

BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 10.0


def wait_for_raw_partitions(
    *,
    bootstrap: str,
    topic: str,
    also: Sequence[str] = (),
    waiting: Callable[[str], None],
    beat: Callable[[], None],
    stop: threading.Event,
) -> int | None:
    """The raw `topic`'s partition count, once Kafka tells it and the topics in `also` exist too;
    None if `stop` is set first. `waiting(reason)` is called on every failed ask, `beat()` on
    every ask."""
    found = wait_for_topics(
        bootstrap=bootstrap,
        topics=[topic, *(name for name in also if name != topic)],
        waiting=waiting,
        beat=beat,
        stop=stop,
        backoff=Backoff(base_s=BACKOFF_BASE_S, cap_s=BACKOFF_MAX_S),
    )
    return None if found is None else found[topic]


async def holds_records(
    bootstrap: str, topic: str, partition: int, start: int, end: int, *, timeout_s: float = 10.0
) -> bool:
    """Whether offsets `start` to `end - 1` of a partition hold a record a consumer is handed: not
    when they hold only transaction markers (a transactional producer's commit or abort marker
    takes an offset, and the end offset counts it) or compacted keys. Read with a consumer of its
    own, in no group, at Faust's isolation level (read_uncommitted).

    Raises `aiokafka.errors.KafkaError` or `TimeoutError` when Kafka does not answer within
    `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await asyncio.wait_for(consumer.start(), timeout_s)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        while loop.time() < deadline:
            fetched = await consumer.getmany(tp, timeout_ms=500, max_records=1)
            if fetched.get(tp):
                return bool(fetched[tp][0].offset < end)
            if await consumer.position(tp) >= end:
                return False
        raise TimeoutError(f"{topic}[{partition}] was not read from {start} in {timeout_s}s")
    finally:
        await consumer.stop()
