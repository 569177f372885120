"""A worker started on changelogs holding a week of state keeps only what is still needed: entries
past their retention, and entries of the older windowed version, are dropped as they are recovered
and deleted from the changelog (tombstones), while live entries still deduplicate."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from herald_contracts import RawRecord, WatchType, encode_raw_record
from herald_dev import infra
from herald_dev.processes import ServiceProcess
from tests.conftest import Topics
from tests.support import (
    ROLLOUT,
    TopicReader,
    consume,
    http_get,
    produce,
    rollout_event,
    wait_until,
)

DAY = 86_400.0


def _changelog(kafka: str, topic: str, records: list[tuple[int, object, object]]) -> None:
    """Write (partition, key, value) records as Faust's JSON-serialized table would."""
    admin = AdminClient({"bootstrap.servers": kafka})
    for future in admin.create_topics(
        [
            NewTopic(
                topic, num_partitions=3, replication_factor=1, config={"cleanup.policy": "compact"}
            )
        ]
    ).values():
        future.result(timeout=30)
    producer = Producer({"bootstrap.servers": kafka})
    for partition, key, value in records:
        producer.produce(
            topic,
            key=json.dumps(key).encode(),
            value=json.dumps(value).encode(),
            partition=partition,
        )
    assert producer.flush(30) == 0


def _raw(uid: str, count: int, *, name: str = "payments") -> tuple[bytes, bytes]:
    event = rollout_event(
        "RolloutResumed",
        "Rollout is resumed",
        uid=uid,
        count=count,
        involved={**ROLLOUT, "name": name},
    )
    record = RawRecord(
        cluster="prod-eu",
        watch_type=WatchType.MODIFIED,
        collected_at="2026-08-20T09:17:00Z",
        object=event,
    )
    return record.key.encode(), encode_raw_record(record)


def _last_values(kafka: str, topic: str, count: int) -> dict[str, object]:
    values: dict[str, object] = {}
    for record in consume(kafka, topic, count=count, timeout_s=30):
        values[json.dumps(json.loads(record.key or b"null"))] = (
            None if record.value is None else json.loads(record.value)
        )
    return values


@pytest.mark.timeout(240)
def test_a_worker_restarted_on_old_state_drops_it_and_still_deduplicates_live_state(
    kafka: str, topics: Topics, services: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    app_id = f"retention-{uuid.uuid4().hex[:8]}"
    now = time.time()
    live = [(k % 3, f"prod-eu/live-{k}", [k % 3, now - 3600, [[-1, 5]]]) for k in range(50)]
    old = [(k % 3, f"prod-eu/old-{k}", [k % 3, now - 7 * DAY, [[-1, 5]]]) for k in range(300)]
    windowed = [
        (k % 3, [f"prod-eu/win-{k}", [now - 7 * DAY, now - 6.5 * DAY]], [[-1, 5]])
        for k in range(50)
    ]
    _changelog(kafka, f"{app_id}-occurrences-changelog", live + old + windowed)
    port = infra.free_port()
    services(
        "processors",
        {
            **topics.env(),
            "HERALD_PROCESSOR_APP_ID": app_id,
            "HERALD_PROCESSOR_DATA_DIR": str(tmp_path / "data"),
            "HERALD_PROCESSOR_SWEEP_INTERVAL_S": "2",
            "HERALD_METRICS_PORT": str(port),
        },
    )

    def metric(name: str) -> float | None:
        for line in http_get(port, "/metrics")[1].splitlines():
            if line.startswith(f'{name}{{table="occurrences"}}'):
                return float(line.split()[-1])
        return None

    wait_until(lambda: metric("herald_processor_state_entries") == 50, timeout_s=90)
    assert metric("herald_processor_state_forgotten_total") == 350

    changelog = _last_values(kafka, f"{app_id}-occurrences-changelog", count=400 + 350)
    tombstoned = {key for key, value in changelog.items() if value is None}
    assert tombstoned == {json.dumps(key) for _, key, _ in old + windowed}

    # A live entry still deduplicates (count 3 <= 5 seen); a forgotten one yields its event again.
    produce(
        kafka,
        topics.raw,
        [_raw("live-7", 3), _raw("old-7", 3), _raw("win-7", 3)],
    )
    reader = TopicReader(kafka, topics.domain)
    try:
        assert reader.read_until(lambda v: len(v) >= 2, timeout_s=60)
        reader.read_until(lambda v: False, timeout_s=3)
    finally:
        reader.close()
    uids = sorted(v["data"]["source_event_uid"] for v in reader.values)
    assert uids == ["old-7", "win-7"]
