"""The worker's consumer fetches with the processor's `fetch.min.bytes` and `fetch.max.wait.ms`."""

from __future__ import annotations

import asyncio
from typing import Any

import aiokafka
import pytest

from processors.app import build_app
from processors.fetching import FetchTunedTransport
from processors.settings import ProcessorSettings


def settings(**env: str) -> ProcessorSettings:
    return ProcessorSettings.from_env({"HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:9", **env})


@pytest.mark.parametrize(
    ("env", "min_bytes", "max_wait_ms"),
    [
        ({}, 65_536, 10),
        (
            {
                "HERALD_PROCESSOR_FETCH_MIN_BYTES": "1",
                "HERALD_PROCESSOR_FETCH_MAX_WAIT_MS": "1500",
            },
            1,
            1500,
        ),
    ],
    ids=["defaults", "fausts-own"],
)
def test_the_worker_consumer_is_built_with_the_settings_fetch_size_and_wait(
    env: dict[str, str], min_bytes: int, max_wait_ms: int
) -> None:

    async def built() -> tuple[Any, ...]:  # aiokafka builds a consumer only in a running loop
        app = build_app(settings(**env), raw_partitions=3, restart=lambda: None)
        assert isinstance(app.transport, FetchTunedTransport)
        thread = app.consumer._thread  # type: ignore[attr-defined]
        try:
            consumer = thread._create_worker_consumer(app.transport)
            await consumer.stop()
        finally:
            thread.thread_loop.close()  # the consumer thread's own loop, never started here
        return (
            consumer._fetch_min_bytes,
            consumer._fetch_max_wait_ms,
            # Everything else stays Faust's choice.
            consumer._group_id == app.conf.id,
            consumer._max_poll_records == app.conf.broker_max_poll_records,
        )

    assert asyncio.run(built()) == (min_bytes, max_wait_ms, True, True)


def test_aiokafka_keeps_the_fetch_size_and_wait_where_the_tuned_thread_sets_them() -> None:
    """`FetchTunedConsumerThread` sets aiokafka's private attributes after Faust built the
    consumer; aiokafka hands them to its fetcher at `start()`. A release that renames them fails
    here, not silently in production."""

    async def kept() -> tuple[int, int]:
        consumer = aiokafka.AIOKafkaConsumer(
            bootstrap_servers="127.0.0.1:9", fetch_min_bytes=7, fetch_max_wait_ms=11
        )
        await consumer.stop()
        return consumer._fetch_min_bytes, consumer._fetch_max_wait_ms

    assert asyncio.run(kept()) == (7, 11)
