"""What the processor asks Kafka before its worker starts: the raw topic's partition count.

The tables are co-partitioned with the raw topic, so the worker cannot be built without that count.
A broker that does not answer, or a raw topic that does not exist yet, is a dependency not there
yet, not a bad setting: `wait_for_raw_partitions` asks again with a growing pause (logged, and
published for /readyz) until Kafka answers or a stop is requested. Before issue 9 the processor
exited with "bad setting: HERALD_KAFKA_BOOTSTRAP" when the broker was merely down at start.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from herald_runtime.backoff import Backoff

log = logging.getLogger(__name__)

ASK_TIMEOUT_S = 5.0
"""How long one metadata request may take."""
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 10.0


class KafkaUnavailableError(Exception):
    """Kafka cannot tell the raw topic's partition count yet; the message says why."""


def raw_partitions(admin: AdminClient, *, bootstrap: str, topic: str) -> int:
    try:
        metadata = admin.list_topics(topic=topic, timeout=ASK_TIMEOUT_S)
    except KafkaException as e:
        raise KafkaUnavailableError(f"Kafka at {bootstrap} does not answer: {e}") from e
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        why = f" ({found.error.str()})" if found is not None and found.error is not None else ""
        raise KafkaUnavailableError(
            f"the raw topic {topic!r} does not exist on Kafka at {bootstrap}{why}: it must be"
            " created (the processor does not create it; its partition count sizes the tables)"
        )
    return len(found.partitions)


def wait_for_raw_partitions(
    *,
    bootstrap: str,
    topic: str,
    waiting: Callable[[str], None],
    beat: Callable[[], None],
    stop: threading.Event,
) -> int | None:
    """The raw topic's partition count, once Kafka tells it; None if `stop` is set first.
    `waiting(reason)` is called on every failed ask, `beat()` on every ask."""
    admin = AdminClient(
        {
            "bootstrap.servers": bootstrap,
            # librdkafka's logs through `logging` (its repeats held back: `herald_runtime.logs`),
            # written when the client is polled, below.
            "logger": log,  # type: ignore[dict-item]
        }
    )
    backoff = Backoff(base_s=BACKOFF_BASE_S, cap_s=BACKOFF_MAX_S)
    failures = 0
    while not stop.is_set():
        beat()
        try:
            return raw_partitions(admin, bootstrap=bootstrap, topic=topic)
        except KafkaUnavailableError as e:
            failures += 1
            pause = backoff.delay(failures, rand=random.random())  # noqa: S311 - jitter, not a secret
            admin.poll(0)  # librdkafka's logs of the failed ask: why, when it says more
            log.warning("waiting for Kafka: %s; asking again in %.1fs", e, pause)
            waiting(str(e))
        stop.wait(pause)
    return None
