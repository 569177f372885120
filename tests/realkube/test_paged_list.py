"""Thousands of Events a collector finds at start are listed page by page from the real server
(page size 500) and each is published exactly once."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from kubernetes import client

from herald_dev.processes import ServiceProcess
from herald_dev.realkube import RealKube
from tests.conftest import Topics
from tests.realkube.kube import core_event, create_many, metric, objects, start_collector, uids
from tests.support import TopicReader

EVENTS = 2500
PAGE = 500


def test_thousands_of_events_are_listed_in_pages_and_each_published_exactly_once(
    kafka: str,
    topics: Topics,
    real_kube: RealKube,
    namespace: str,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    held = create_many(
        real_kube, [core_event(namespace, name=f"bulk-{i:05d}") for i in range(EVENTS)]
    )
    print(f"created {EVENTS} Events in {time.monotonic() - started:.1f}s")
    with real_kube.admin() as api:  # the server does page them at this size
        first = client.CoreV1Api(api).list_namespaced_event(namespace, limit=PAGE)
    assert len(first.items) == PAGE
    assert first.metadata._continue
    collector, port = start_collector(
        services,
        real_kube,
        topics,
        tmp_path,
        namespace=namespace,
        env={"HERALD_LIST_PAGE_SIZE": str(PAGE)},
    )
    reader = TopicReader(kafka, topics.raw)
    started = time.monotonic()
    try:
        assert reader.read_until(
            lambda v: uids(held) <= uids(r["object"] for r in objects(v, namespace)),
            timeout_s=60,
        )
    finally:
        reader.close()
    print(f"published {EVENTS} listed Events in {time.monotonic() - started:.1f}s")
    published = Counter(r["object"]["metadata"]["uid"] for r in objects(reader.values, namespace))
    assert set(published.values()) == {1}
    assert {r["watch_type"] for r in objects(reader.values, namespace)} == {"ADDED"}
    received = metric(
        port, "herald_collector_events_received_total", cluster="real", watch_type="ADDED"
    )
    assert received == EVENTS  # one list, each item once: no relist
    assert collector.stop() == 0
