"""Bad records mixed into a stream, through Kafka and the real Faust worker: the domain topic gets
exactly the events of the stream without them (same ids), and each bad record is dead-lettered once,
with where it came from; the worker neither stops nor holds back the records behind them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from herald_contracts import DeadLetterHeader, RawRecord, WatchType, encode_raw_record
from herald_dev import infra
from herald_dev.processes import ServiceProcess
from processors.processing import process
from processors.state import Keeper
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


def _good() -> list[tuple[bytes, bytes]]:
    records = []
    for i in range(60):
        name = f"svc-{i % 6}"
        involved = {**ROLLOUT, "name": name, "uid": name}
        reason, message = [
            ("RolloutUpdated", "Rollout updated to revision 3"),
            ("RolloutStepCompleted", "Rollout step 1/2 completed (setWeight: 50)"),
            ("RolloutAborted", f'Rollout "{name}" has timed out progressing.'),
            ("RolloutAborted", f'Rollout "{name}" has timed out progressing.'),
            ("RolloutCompleted", "Rollout completed update to revision 3 (6f8b): done"),
        ][i % 5]
        event = rollout_event(
            reason, message, involved=involved, uid=f"{name}-{i % 4}", count=1 + i % 3
        )
        record = RawRecord(
            cluster="prod-eu",
            watch_type=WatchType.MODIFIED,
            collected_at="2026-08-20T09:17:00Z",
            object=event,
        )
        records.append((record.key.encode(), encode_raw_record(record)))
    return records


def _bad(k: int) -> bytes | None:
    """The k-th kind of bad record (each distinct, to find it again)."""
    refused = rollout_event(
        "RolloutResumed", "Rollout is resumed", involved={**ROLLOUT, "name": f"a/{k}"}
    )
    kinds: list[bytes | None] = [
        b"\xff\xfe garbage " + str(k).encode(),
        None,  # a tombstone
        json.dumps([k, "an array"]).encode(),
        json.dumps(
            {"cluster": "c", "watch_type": "ADDED", "collected_at": f"day {k}", "object": {}}
        ).encode(),
        encode_raw_record(
            RawRecord(
                cluster="prod-eu",
                watch_type=WatchType.ADDED,
                collected_at="2026-08-20T09:17:00Z",
                object=refused,
            )
        ),
        b'{"cluster":"c","watch_type":"ADDED","collected_at":"2026-08-20T09:17:00Z","object":'
        b'{"metadata":{"uid":"s' + str(k).encode() + b'"},"involvedObject":{"kind":"Rollout",'
        b'"apiVersion":"argoproj.io/v1","name":"x"},"reason":"RolloutPaused",'
        b'"message":"Rollout is paused (\\ud800)","source":{"component":"rollouts-controller"}}}',
        b'{"cluster": ' + b"1" * 5000 + str(k).encode() + b"}",
        b"[" * 5000 + str(k).encode(),
        json.dumps({"cluster": "c", "watch_type": f"BOOKMARK{k}"}).encode(),
    ]
    return kinds[k % len(kinds)]


@pytest.mark.timeout(240)
def test_bad_records_are_dead_lettered_once_and_the_rest_of_the_stream_is_untouched(
    kafka: str, topics: Topics, services: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    good = _good()
    state = Keeper({}, {}, retention_s=86_400)
    expected = {
        e.id
        for offset, (_, value) in enumerate(good)
        for e in process(
            value, state=state, partition=0, offset=offset, at=1e9, committed=None
        ).events
    }
    bad = [(good[(7 * k) % len(good)][0], _bad(k)) for k in range(18)]
    mixed: list[tuple[bytes | None, bytes | None]] = []
    for i, record in enumerate(good):
        mixed.append(record)
        if i % 3 == 0 and bad:
            mixed.append(bad.pop())
    mixed += bad
    produce(kafka, topics.raw, mixed)
    bad_at = {
        (r.partition, r.offset)
        for r in consume(kafka, topics.raw, count=len(mixed), timeout_s=30)
        if (r.key, r.value) not in set(good)
    }
    assert len(bad_at) == 18

    port = infra.free_port()
    worker = services(
        "processors",
        {
            **topics.env(),
            "HERALD_PROCESSOR_APP_ID": f"bad-records-{uuid.uuid4().hex[:8]}",
            "HERALD_PROCESSOR_DATA_DIR": str(tmp_path / "data"),
            "HERALD_METRICS_PORT": str(port),
        },
    )
    reader = TopicReader(kafka, topics.domain)
    try:
        assert reader.read_until(lambda v: {e["id"] for e in v} >= expected, timeout_s=90)
        reader.read_until(lambda v: False, timeout_s=3)  # anything more is an extra
    finally:
        reader.close()
    assert sorted(e["id"] for e in reader.values) == sorted(expected)

    # Every bad record handled (counted) first; then a 19th dead letter would be an extra.
    counted = 'herald_processor_records_total{outcome="dead_lettered"} 18.0'
    assert wait_until(lambda: counted in http_get(port, "/metrics")[1], timeout_s=30)
    dead = consume(kafka, topics.dead_letters, count=18, timeout_s=15, linger_s=3)
    where = [
        (
            int(d.headers[DeadLetterHeader.SOURCE_PARTITION]),
            int(d.headers[DeadLetterHeader.SOURCE_OFFSET]),
        )
        for d in dead
    ]
    assert sorted(where) == sorted(bad_at)  # each once, none of the good ones
    assert all(d.headers[DeadLetterHeader.ERROR] for d in dead)
    assert worker.alive
    assert "Traceback" not in worker.log_tail(2000)


@pytest.mark.timeout(240)
def test_a_dead_letter_topic_that_cannot_be_written_holds_the_record_until_it_can(
    kafka: str, topics: Topics, services: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """Kafka failing is not the record's fault: the bad record is not skipped, nothing is committed
    past it, and once the dead-letter topic exists it is set aside and the records behind it flow."""
    missing = f"{topics.dead_letters}.later"
    good = _good()[:5]
    key = good[0][0]
    produce(kafka, topics.raw, [(key, b"not json"), *[(key, value) for _, value in good]])
    group = f"bad-records-{uuid.uuid4().hex[:8]}"
    services(
        "processors",
        {
            **topics.env(),
            "HERALD_DEAD_LETTER_TOPIC": missing,
            "HERALD_PROCESSOR_APP_ID": group,
            "HERALD_PROCESSOR_DATA_DIR": str(tmp_path / "data"),
            "HERALD_PROCESSOR_COMMIT_STALL_S": "8",
        },
    )
    assert consume(kafka, topics.domain, count=1, timeout_s=15) == []  # held behind the bad one
    infra.create_topics(kafka, {"HERALD_DEAD_LETTER_TOPIC": missing}, partitions=1)
    [dead] = consume(kafka, missing, count=1, timeout_s=150)
    assert dead.value == b"not json"
    state = Keeper({}, {}, retention_s=86_400)
    expected = {
        e.id
        for offset, (_, value) in enumerate(good, start=1)
        for e in process(
            value, state=state, partition=0, offset=offset, at=1e9, committed=None
        ).events
    }
    reader = TopicReader(kafka, topics.domain)
    try:
        assert reader.read_until(lambda v: {e["id"] for e in v} >= expected, timeout_s=60)
    finally:
        reader.close()
