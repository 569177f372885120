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

import threading
from collections.abc import Callable, Sequence

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
