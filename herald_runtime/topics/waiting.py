"""What a service does at start while its topics do not exist: it waits, unready, and says which
topics and which command creates them (`plan.ENSURE_COMMAND`), then goes on by itself once they
exist. A broker that does not answer is waited for the same way. Neither is a bad setting: topics
are often created by a Job or an operator while the services start.

Logged: each time Kafka does not answer (with the next pause), and once per change in the set of
missing topics (the readiness check says it the rest of the time).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence

from herald_runtime.backoff import Backoff
from herald_runtime.topics.ensuring import TopicsError
from herald_runtime.topics.kafka import admin_client, topic_partitions
from herald_runtime.topics.plan import missing_message

log = logging.getLogger(__name__)

ASK_TIMEOUT_S = 5.0
"""How long one metadata request may take."""


def wait_for_topics(
    *,
    bootstrap: str,
    topics: Sequence[str],
    waiting: Callable[[str], None],
    beat: Callable[[], None],
    stop: threading.Event,
    backoff: Backoff | None = None,
    rand: Callable[[], float] = random.random,
) -> dict[str, int] | None:
    """The partition count of each of `topics`, once they all exist; None if `stop` is set first.
    `waiting(reason)` is called after every ask that finds them not all there, `beat()` before
    every ask (each takes at most `ASK_TIMEOUT_S`)."""
    admin = admin_client(bootstrap)

    def ask() -> dict[str, tuple[int, int]]:
        return topic_partitions(admin, topics, bootstrap=bootstrap, timeout_s=ASK_TIMEOUT_S)

    return wait_with(
        ask,
        bootstrap=bootstrap,
        topics=topics,
        waiting=waiting,
        beat=beat,
        stop=stop,
        backoff=backoff or Backoff(base_s=0.5, cap_s=10.0),
        rand=rand,
    )


def wait_with(
    ask: Callable[[], dict[str, tuple[int, int]]],
    *,
    bootstrap: str,
    topics: Sequence[str],
    waiting: Callable[[str], None],
    beat: Callable[[], None],
    stop: threading.Event,
    backoff: Backoff,
    rand: Callable[[], float],
) -> dict[str, int] | None:
    """`wait_for_topics` with the question to Kafka passed in: `ask()` gives (partitions, replicas)
    of the topics that exist, or raises TopicsError."""
    failures = 0
    said = ""
    while not stop.is_set():
        beat()
        try:
            found = ask()
        except TopicsError as e:
            reason = str(e)
        else:
            missing = [name for name in topics if name not in found]
            if not missing:
                if said:
                    log.info("the topics %s exist now", ", ".join(topics))
                return {name: partitions for name, (partitions, _) in found.items()}
            reason = missing_message(missing, bootstrap=bootstrap)
        failures += 1
        pause = backoff.delay(failures, rand=rand())
        if reason != said or "does not answer" in reason:
            log.warning("waiting for Kafka: %s; asking again in %.1fs", reason, pause)
            said = reason
        waiting(reason)
        stop.wait(pause)
    return None
