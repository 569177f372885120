"""Faults the collector survives against a real API server and etcd, as a real process with its
own least-privilege identity: the collector killed with SIGKILL, the API server restarted (TERM or
KILL) while Events are being written, the checkpoint compacted away in etcd while the collector was
stopped. In each, every Event the server took reaches the raw topic, and what was published and
checkpointed before is not published again.

Every Event of a test is about the same Rollout, so every record has the same key and lands in
the same partition, in the order the collector produced it: once a sentinel Event written last is
read, everything the collector published before it has been read too (no waiting for quiet).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from herald_dev.processes import ServiceProcess
from herald_dev.realkube import RealKube
from tests.conftest import Topics
from tests.realkube.kube import (
    EventWriter,
    core_event,
    create,
    create_many,
    metric,
    new_namespace,
    objects,
    recount,
    rv,
    saved_checkpoint,
    start_collector,
    uids,
)
from tests.support import TopicReader, wait_until

_END_WATCHES_ON_TERM = "--shutdown-watch-termination-grace-period=5s"


def read_through_sentinel(
    kube: RealKube, reader: TopicReader, namespace: str, *, timeout_s: float = 60
) -> list[dict[str, Any]]:
    """Write a last Event and read until its record arrives; the records about `namespace`."""
    sentinel = create(kube, core_event(namespace, name="sentinel", message="the last one"))
    uid = sentinel["metadata"]["uid"]
    assert reader.read_until(
        lambda v: any(r["object"]["metadata"]["uid"] == uid for r in objects(v, namespace)),
        timeout_s=timeout_s,
    )
    return [r for r in objects(reader.values, namespace) if r["object"]["metadata"]["uid"] != uid]


def times_published(records: list[dict[str, Any]]) -> Counter[tuple[str, int]]:
    """How often each (uid, resourceVersion) was published."""
    return Counter((r["object"]["metadata"]["uid"], rv(r["object"])) for r in records)


def test_a_collector_killed_with_sigkill_resumes_from_its_checkpoint_and_loses_nothing(
    kafka: str,
    topics: Topics,
    real_kube: RealKube,
    namespace: str,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    first, _ = start_collector(services, real_kube, topics, tmp_path, namespace=namespace)
    reader = TopicReader(kafka, topics.raw)
    try:
        with EventWriter(real_kube, namespace, prefix="w") as writer:
            assert reader.read_until(lambda v: len(objects(v, namespace)) >= 40, timeout_s=30)
            first.kill()  # kill -9 while Events are being written and published
            while_down = writer.count
            wait_until(lambda: writer.count >= while_down + 30, timeout_s=30)
            checkpoint = saved_checkpoint(kafka, topics, f"real/{namespace}")
            second, port = start_collector(
                services, real_kube, topics, tmp_path, namespace=namespace
            )
            restarted = writer.count
            wait_until(lambda: writer.count >= restarted + 30, timeout_s=30)
        created = writer.stop()
        records = read_through_sentinel(real_kube, reader, namespace)
    finally:
        reader.close()
    assert checkpoint is not None
    published = times_published(records)
    assert {(e["metadata"]["uid"], rv(e)) for e in created} == set(published)  # nothing lost
    assert {r["watch_type"] for r in records} == {"ADDED"}
    # What the first collector published up to its last checkpoint is not published again; only
    # what it published after it (the checkpoint is written every 0.2 s) may be.
    assert all(n == 1 for (_, version), n in published.items() if version <= checkpoint)
    duplicates = sum(published.values()) - len(published)
    print(f"kill -9: {len(created)} Events, checkpoint {checkpoint}, {duplicates} duplicates")
    assert sum(1 for e in created if rv(e) <= checkpoint) >= 40
    assert metric(port, "herald_collector_relists_total", cluster="real", cause="start") == 0
    assert (
        f"resuming real/{namespace} from resourceVersion {checkpoint}"
        in second.log_path.read_text()
    )
    assert second.stop() == 0


@pytest.mark.parametrize(
    ("kill", "options"),
    [
        # With its default flags, a kube-apiserver given SIGTERM keeps open watches open and
        # silent for 60 s before it exits (herald_dev.realkube.RealKube.restart_apiserver); this
        # flag makes it end them at once, which keeps the test short.
        pytest.param(False, {"apiserver_args": (_END_WATCHES_ON_TERM,)}, id="TERM"),
        pytest.param(True, {}, id="KILL"),
        pytest.param(
            False,
            {"watch_cache_events": True, "apiserver_args": (_END_WATCHES_ON_TERM,)},
            id="TERM-events-in-watch-cache",
        ),
    ],
)
def test_an_api_server_restarted_while_events_are_written_loses_nothing(
    kill: bool,
    options: dict[str, Any],
    kafka: str,
    topics: Topics,
    start_real_kube: Callable[..., RealKube],
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    kube = start_real_kube(**options)
    namespace = new_namespace(kube)
    collector, port = start_collector(services, kube, topics, tmp_path, namespace=namespace)
    reader = TopicReader(kafka, topics.raw)
    try:
        with EventWriter(kube, namespace, prefix="w") as writer:
            assert reader.read_until(lambda v: len(objects(v, namespace)) >= 20, timeout_s=30)
            kube.restart_apiserver(kill=kill)
            restarted = writer.count
            wait_until(lambda: writer.count >= restarted + 20, timeout_s=30)
        created = writer.stop()
        records = read_through_sentinel(kube, reader, namespace)
    finally:
        reader.close()
    published = times_published(records)
    assert {(e["metadata"]["uid"], rv(e)) for e in created} == set(published)  # nothing lost
    # Resumed from the last resourceVersion seen, or (410) relisted skipping what was published:
    # nothing twice.
    assert sum(published.values()) == len(published)
    relists = metric(port, "herald_collector_relists_total", cluster="real", cause="expired")
    print(f"API server restart: {len(created)} Events, {relists:.0f} relists after a 410")
    assert collector.stop() == 0


def test_a_checkpoint_compacted_away_relists_and_publishes_only_what_is_new(
    kafka: str,
    topics: Topics,
    real_kube: RealKube,
    namespace: str,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    before = create_many(
        real_kube, [core_event(namespace, name=f"before-{i:03d}") for i in range(30)]
    )
    first, _ = start_collector(services, real_kube, topics, tmp_path, namespace=namespace)
    reader = TopicReader(kafka, topics.raw)
    try:
        assert reader.read_until(
            lambda v: uids(before) <= uids(r["object"] for r in v), timeout_s=30
        )
        assert first.stop() == 0  # SIGTERM: flush, then write the last checkpoint
        checkpoint = saved_checkpoint(kafka, topics, f"real/{namespace}")
        assert checkpoint is not None
        assert checkpoint >= max(rv(e) for e in before)
        written = create_many(
            real_kube, [core_event(namespace, name=f"stopped-{i:03d}") for i in range(20)]
        )
        repeated = recount(real_kube, namespace, before[0]["metadata"]["name"], 2)
        real_kube.compact()  # the checkpoint's resourceVersion is gone: the watch gets 410
        second, port = start_collector(services, real_kube, topics, tmp_path, namespace=namespace)
        records = read_through_sentinel(real_kube, reader, namespace)
    finally:
        reader.close()
    published = times_published(records)
    expected = {(e["metadata"]["uid"], rv(e)) for e in [*before, *written, repeated]}
    assert set(published) == expected
    assert sum(published.values()) == len(published)  # the relist skipped the 30 published
    assert [
        r["object"]["count"]
        for r in records
        if r["object"]["metadata"]["uid"] == repeated["metadata"]["uid"]
    ] == [1, 2]
    assert metric(port, "herald_collector_relists_total", cluster="real", cause="expired") == 1
    dropped = metric(
        port, "herald_collector_events_dropped_total", cluster="real", reason="already_published"
    )
    assert dropped == 29  # the 30 listed again, but the one repeated since
    assert second.stop() == 0
