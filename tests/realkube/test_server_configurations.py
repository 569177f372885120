"""The collector delivers every change whatever the API server's configuration: without any watch
cache (every list and watch read from etcd), with Events in the watch cache (lists and watches
served from the cache), and with Events expiring (`--event-ttl`: the expiry is a DELETED). Each
test starts a server of its own with those flags."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from herald_dev.processes import ServiceProcess
from herald_dev.realkube import RealKube
from tests.conftest import Topics
from tests.realkube.kube import (
    about,
    core_event,
    create,
    create_events_api_event,
    delete,
    new_namespace,
    recount,
    repeat_events_api_event,
    rv,
    start_collector,
)
from tests.support import TopicReader


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"watch_cache": False}, id="watch-cache-off"),
        pytest.param({"watch_cache_events": True}, id="events-in-watch-cache"),
    ],
)
def test_every_change_is_delivered_whatever_the_watch_cache(
    options: dict[str, Any],
    kafka: str,
    topics: Topics,
    start_real_kube: Callable[..., RealKube],
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    kube = start_real_kube(**options)
    namespace = new_namespace(kube)
    listed = create(kube, core_event(namespace, message="there before the collector"))
    collector, _ = start_collector(services, kube, topics, tmp_path, namespace=namespace)
    reader = TopicReader(kafka, topics.raw)
    try:
        assert reader.read_until(lambda v: about(v, [listed["metadata"]["uid"]]), timeout_s=30)
        core = create(kube, core_event(namespace))
        recount(kube, namespace, core["metadata"]["name"], 2)
        recount(kube, namespace, core["metadata"]["name"], 3)
        delete(kube, namespace, core["metadata"]["name"])
        new = create_events_api_event(kube, namespace)
        repeat_events_api_event(kube, namespace, new["metadata"]["name"], 2)
        mine = [listed["metadata"]["uid"], core["metadata"]["uid"], new["metadata"]["uid"]]
        assert reader.read_until(lambda v: len(about(v, mine)) >= 7, timeout_s=30)
    finally:
        reader.close()
    records = about(reader.values, mine)
    changes = [
        (r["watch_type"], r["object"]["metadata"]["uid"], r["object"].get("count")) for r in records
    ]
    assert changes == [
        ("ADDED", listed["metadata"]["uid"], 1),
        ("ADDED", core["metadata"]["uid"], 1),
        ("MODIFIED", core["metadata"]["uid"], 2),
        ("MODIFIED", core["metadata"]["uid"], 3),
        ("DELETED", core["metadata"]["uid"], 3),
        ("ADDED", new["metadata"]["uid"], None),
        ("MODIFIED", new["metadata"]["uid"], None),
    ]
    versions = [rv(r["object"]) for r in records]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)
    assert collector.stop() == 0


def test_an_event_that_expires_reaches_the_raw_topic_as_deleted(
    kafka: str,
    topics: Topics,
    start_real_kube: Callable[..., RealKube],
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    kube = start_real_kube(event_ttl="3s")
    namespace = new_namespace(kube)
    collector, _ = start_collector(services, kube, topics, tmp_path, namespace=namespace)
    reader = TopicReader(kafka, topics.raw)
    try:
        event = create(kube, core_event(namespace))
        uid = event["metadata"]["uid"]
        assert reader.read_until(lambda v: len(about(v, [uid])) >= 2, timeout_s=30)
    finally:
        reader.close()
    added, expired = about(reader.values, [uid])
    assert (added["watch_type"], expired["watch_type"]) == ("ADDED", "DELETED")
    assert rv(expired["object"]) > rv(added["object"])
    assert expired["object"]["count"] == 1
    assert collector.stop() == 0
