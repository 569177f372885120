"""How the worker's consumer fetches: Kafka's `fetch.min.bytes` and `fetch.max.wait.ms`.

Faust builds its aiokafka consumer with Kafka's default `fetch.min.bytes` (1) and a
`fetch.max.wait.ms` of its own (1,500 ms), and offers neither as a setting: the broker answers a
fetch as soon as one record is there, so at a few hundred to a few thousand records a second the
worker runs a whole fetch round (the request, the response parsed in the consumer's thread, the
hand-over to the event loop, Faust's `getmany`) for a record or two. Each round costs about 0.4 ms
of CPU (`bench/README.md`); asking the broker to gather up to `fetch_min_bytes` for up to
`fetch_max_wait_ms` takes 12-33 % off the worker's CPU per record at 250-2,500 records/s, at
the price of up to `fetch_max_wait_ms` of added latency and, when idle, one empty fetch round per
`fetch_max_wait_ms` (about 5 % of a core at 10 ms).

Faust's hook for this is its transport class: `FetchTunedTransport` is aiokafka's transport whose
consumer thread builds the aiokafka consumer with these two values.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka


class FetchTunedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, with the transport's fetch sizes and waits."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka keeps its constructor's `fetch_min_bytes` and `fetch_max_wait_ms` here and
        # hands them to its fetcher at `start()` (aiokafka.consumer.consumer.AIOKafkaConsumer);
        # `tests/processors/test_fetching.py` fails if that changes.
        consumer._fetch_min_bytes = transport.fetch_min_bytes
        consumer._fetch_max_wait_ms = transport.fetch_max_wait_ms
        return consumer


class FetchTunedConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> FetchTunedConsumerThread:
        return FetchTunedConsumerThread(self, loop=self.loop, beacon=self.beacon)


class FetchTunedTransport(faust_aiokafka.Transport):
    """aiokafka's transport whose worker consumer fetches `fetch_min_bytes` (bytes) or waits
    `fetch_max_wait_ms` (milliseconds), whichever comes first."""

    Consumer = FetchTunedConsumer

    def __init__(
        self, url: Any, app: faust.App, *, fetch_min_bytes: int, fetch_max_wait_ms: int
    ) -> None:
        super().__init__(url, app)
        self.fetch_min_bytes = fetch_min_bytes
        self.fetch_max_wait_ms = fetch_max_wait_ms


def tune_fetches(app: faust.App, *, min_bytes: int, max_wait_ms: int) -> None:
    """Make `app`'s worker consumer fetch at least `min_bytes` or wait `max_wait_ms`; before the
    worker starts (the consumer is built from `app.transport` when it first is asked for)."""
    app.transport = FetchTunedTransport(
        app.conf.broker_consumer, app, fetch_min_bytes=min_bytes, fetch_max_wait_ms=max_wait_ms
    )
