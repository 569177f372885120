"""A processor killed mid-stream, and workers leaving their group, lose no domain event and invent no
new id: every expected event id reaches the domain topic (duplicates of the same id are allowed,
they are absorbed downstream)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from herald_contracts import (
    EVENT_TYPE_PREFIX,
    RawRecord,
    WatchType,
    decode_raw_record,
    encode_raw_record,
)
from herald_dev import infra
from herald_dev.processes import ServiceProcess
from processors.interpreting import interpret
from tests.conftest import Topics
from tests.support import ROLLOUT, TopicReader, produce, rollout_event

COUNT = 3000


def _records() -> tuple[list[tuple[bytes, bytes]], set[str]]:
    records, ids = [], set()
    for i in range(COUNT):
        name = f"svc-{i % 60}"
        involved = {
            "kind": "Rollout",
            "namespace": "billing",
            "name": name,
            "uid": name,
            "apiVersion": "argoproj.io/v1alpha1",
        }
        event = rollout_event(
            "RolloutStepCompleted",
            f"Rollout step {i % 9 + 1}/9 completed (pause)",
            involved=involved,
        )
        record = RawRecord(
            cluster="prod-eu",
            watch_type=WatchType.ADDED,
            collected_at="2026-08-20T09:17:00Z",
            object=event,
        )
        records.append((record.key.encode(), encode_raw_record(record)))
        ids.update(e.id for e in interpret(record, last_n=None).events)
    return records, ids


NOTICED_SOONER = {"HERALD_PROCESSOR_SESSION_TIMEOUT_S": "6"}
"""For the tests that kill a worker: the group moves its partitions after 6 s, not 10 s."""


@pytest.fixture
def processor_env(topics: Topics, tmp_path: Path) -> dict[str, str]:
    return {
        **topics.env(),
        "HERALD_PROCESSOR_APP_ID": f"faults-{uuid.uuid4().hex[:8]}",
        "HERALD_PROCESSOR_DATA_DIR": str(tmp_path / "data"),
        "HERALD_PROCESSOR_COMMIT_STALL_S": "8",
        "HERALD_PROCESSOR_RECOVERY_STALL_S": "30",
    }


def _progress(kafka: str, topic: str, group: str) -> str:
    """The group's committed offsets against the ends of the raw topic, for failure messages."""
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": group})
    try:
        parts = [TopicPartition(topic, p) for p in range(3)]
        return ", ".join(
            f"p{tp.partition}: committed {tp.offset} of {consumer.get_watermark_offsets(tp, timeout=10)[1]}"
            for tp in consumer.committed(parts, timeout=10)
        )
    finally:
        consumer.close()


def _ids(values: list[dict[str, object]]) -> set[str]:
    return {str(v["id"]) for v in values}


@pytest.mark.timeout(240)
def test_kill_9_mid_stream_loses_nothing_and_invents_no_id(
    kafka: str,
    topics: Topics,
    processor_env: dict[str, str],
    services: Callable[..., ServiceProcess],
) -> None:
    records, expected = _records()
    produce(kafka, topics.raw, records)
    first = services("processors", {**processor_env, **NOTICED_SOONER})
    reader = TopicReader(kafka, topics.domain)
    try:
        assert reader.read_until(lambda v: len(v) >= 300, timeout_s=60)
        first.kill()
        services(
            "processors",
            {
                **processor_env,
                **NOTICED_SOONER,
                "HERALD_PROCESSOR_DATA_DIR": processor_env["HERALD_PROCESSOR_DATA_DIR"] + "-2",
            },
        )
        assert reader.read_until(lambda v: _ids(v) >= expected, timeout_s=120), (
            len(_ids(reader.values)),
            _progress(kafka, topics.raw, processor_env["HERALD_PROCESSOR_APP_ID"]),
        )
    finally:
        reader.close()
    assert _ids(reader.values) == expected
    print(
        f"kill -9: {len(expected)} events, {len(reader.values) - len(expected)} re-sent with the same id"
    )


@pytest.mark.timeout(240)
@pytest.mark.parametrize("how", ["sigterm", "kill-9"])
def test_a_worker_leaving_its_group_loses_nothing(
    how: str,
    kafka: str,
    topics: Topics,
    processor_env: dict[str, str],
    services: Callable[..., ServiceProcess],
) -> None:
    """Two workers share the partitions; one leaves (stopped, or killed and noticed after the
    session timeout) and the other takes its partitions over, tables included."""
    records, expected = _records()
    services("processors", {**processor_env, **NOTICED_SOONER})
    leaving = services(
        "processors",
        {
            **processor_env,
            **NOTICED_SOONER,
            "HERALD_PROCESSOR_DATA_DIR": processor_env["HERALD_PROCESSOR_DATA_DIR"] + "-2",
        },
    )
    # Records keep arriving while the worker leaves: 100 every 50 ms.
    feeding = threading.Thread(
        target=lambda: [
            (produce(kafka, topics.raw, records[k : k + 100]), time.sleep(0.05))
            for k in range(0, len(records), 100)
        ]
    )
    feeding.start()
    reader = TopicReader(kafka, topics.domain)
    try:
        assert reader.read_until(lambda v: len(v) >= 300, timeout_s=90)
        if how == "sigterm":
            assert leaving.stop() == 0  # leaves the group; its partitions move to the other
        else:
            leaving.kill()
        assert reader.read_until(lambda v: _ids(v) >= expected, timeout_s=120), (
            len(_ids(reader.values)),
            _progress(kafka, topics.raw, processor_env["HERALD_PROCESSOR_APP_ID"]),
        )
    finally:
        feeding.join()
        reader.close()
    assert _ids(reader.values) == expected
    assert all(json.loads(json.dumps(v))["specversion"] == "1.0" for v in reader.values)


def _rewind(kafka: str, group: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": kafka})
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, 0) for p in range(3)])
    for future in admin.alter_consumer_group_offsets([request]).values():
        future.result(timeout=30)


def _state_then_crash_records() -> tuple[list[tuple[bytes, bytes]], list[tuple[str, str, int]]]:
    """Duplicates, a stale lower count, count increments and progress-deadline aborts, with the
    domain events they must produce (type, rollout, n)."""

    def raw(name: str, reason: str, message: str, uid: str, count: int) -> tuple[bytes, bytes]:
        involved = {**ROLLOUT, "name": name, "uid": f"uid-{name}"}
        event = rollout_event(reason, message, uid=uid, count=count, involved=involved)
        record = RawRecord(
            cluster="prod-eu",
            watch_type=WatchType.MODIFIED,
            collected_at="2026-08-20T09:17:00Z",
            object=event,
        )
        return record.key.encode(), encode_raw_record(record)

    records, expected = [], []
    for i in range(20):
        name = f"svc-{i}"
        step, aborted, timeout, updated = (f"{name}-{e}" for e in ("step", "ab", "to", "up"))
        deadline = f'Rollout "{name}" has timed out progressing.'
        records += [
            raw(name, "RolloutStepCompleted", "Rollout step 1/3 completed (pause)", step, 1),
            raw(name, "RolloutStepCompleted", "Rollout step 1/3 completed (pause)", step, 1),
            raw(name, "RolloutStepCompleted", "Rollout step 1/3 completed (pause)", step, 2),
            raw(name, "RolloutStepCompleted", "Rollout step 1/3 completed (pause)", step, 1),
            raw(name, "RolloutAborted", "Rollout aborted update to revision 2", aborted, 1),
            raw(name, "RolloutAborted", deadline, timeout, 1),
            raw(name, "RolloutAborted", deadline, timeout, 2),
            raw(name, "RolloutUpdated", "Rollout updated to revision 3", updated, 1),
            raw(name, "RolloutAborted", deadline, timeout, 3),
            raw(name, "RolloutAborted", deadline, timeout, 3),
        ]
        expected += [
            ("rollout.step_advanced", name, 1),
            ("rollout.step_advanced", name, 2),
            ("rollout.aborted", name, 1),
            ("rollout.update_started", name, 1),
            ("rollout.aborted", name, 3),
        ]
    return records, expected


def _summary(values: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return sorted(
        (
            str(v["type"]).removeprefix(EVENT_TYPE_PREFIX),
            str(v["data"]["name"]),
            int(v["data"]["source_event_count"]),
        )
        for v in values
    )


@pytest.mark.timeout(240)
def test_records_read_again_after_their_state_was_saved_produce_the_same_events(
    kafka: str,
    topics: Topics,
    processor_env: dict[str, str],
    services: Callable[..., ServiceProcess],
) -> None:
    """What a worker that died between writing its tables and writing the domain topic leaves:
    table updates for records whose offsets were not committed. Rewinding the group's offsets over
    saved tables, and reading again into a second domain topic, must give the same events, each
    once, none suppressed as a duplicate of itself and none invented."""
    records, expected = _state_then_crash_records()
    produce(kafka, topics.raw, records)
    first = services("processors", processor_env)
    reader = TopicReader(kafka, topics.domain)
    try:
        assert reader.read_until(lambda v: len(v) >= len(expected), timeout_s=90)
        assert first.stop() == 0
        reader.read_until(lambda v: False, timeout_s=1)
        assert _summary(reader.values) == sorted(expected)
        first_ids = sorted(str(v["id"]) for v in reader.values)
    finally:
        reader.close()

    group = processor_env["HERALD_PROCESSOR_APP_ID"]
    _rewind(kafka, group, topics.raw)
    again = f"{topics.domain}.again"
    infra.create_topics(kafka, {"HERALD_DOMAIN_TOPIC": again}, partitions=3)
    services(
        "processors",
        {
            **processor_env,
            "HERALD_DOMAIN_TOPIC": again,
            "HERALD_PROCESSOR_DATA_DIR": processor_env["HERALD_PROCESSOR_DATA_DIR"] + "-2",
        },
    )
    reader = TopicReader(kafka, again)

    def distinct(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One per id: a worker restarted meanwhile (the skip guard, faust issue #596) writes
        again what it wrote before its commit, with the same ids (at least once)."""
        return list({str(v["id"]): v for v in values}.values())

    try:
        assert reader.read_until(lambda v: len(distinct(v)) >= len(expected), timeout_s=90), (
            _summary(distinct(reader.values))
        )
        reader.read_until(lambda v: False, timeout_s=3)
    finally:
        reader.close()
    assert sorted(str(v["id"]) for v in distinct(reader.values)) == first_ids
    assert _summary(distinct(reader.values)) == sorted(expected)


@pytest.mark.timeout(240)
def test_a_domain_topic_that_cannot_be_written_holds_commits_until_it_can(
    kafka: str,
    topics: Topics,
    processor_env: dict[str, str],
    services: Callable[..., ServiceProcess],
) -> None:
    """The domain topic is missing (the broker creates no topics): the send waits, the worker must
    not commit past the record whose event it could not write (the stall guard restarts it meanwhile);
    once the topic exists, the events arrive."""
    missing = f"{topics.domain}.later"
    records, expected = _records()
    produce(kafka, topics.raw, records[:30])
    group = processor_env["HERALD_PROCESSOR_APP_ID"]
    services("processors", {**processor_env, "HERALD_DOMAIN_TOPIC": missing})
    time.sleep(15)  # the worker commits every few seconds: it would have, had it wrongly done so
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": group})
    try:
        committed = consumer.committed(
            [TopicPartition(topics.raw, p) for p in range(3)], timeout=10
        )
    finally:
        consumer.close()
    assert all(tp.offset < 0 for tp in committed), committed  # nothing committed at all

    infra.create_topics(kafka, {"HERALD_DOMAIN_TOPIC": missing}, partitions=3)
    wanted = {e for e in expected if e in _first_ids(records[:30])}
    reader = TopicReader(kafka, missing)
    try:
        assert reader.read_until(lambda v: _ids(v) >= wanted, timeout_s=150), len(reader.values)
    finally:
        reader.close()


def _first_ids(records: list[tuple[bytes, bytes]]) -> set[str]:
    ids = set()
    for _, value in records:
        ids.update(e.id for e in interpret(decode_raw_record(value), last_n=None).events)
    return ids


def _produce_in_transactions(
    kafka: str, topic: str, records: list[tuple[bytes, bytes]], per: int
) -> None:
    producer = Producer(
        {
            "bootstrap.servers": kafka,
            "partitioner": "murmur2_random",
            "transactional.id": f"mirror-{uuid.uuid4().hex[:8]}",
        }
    )
    producer.init_transactions(30)
    for i in range(0, len(records), per):
        producer.begin_transaction()
        for key, value in records[i : i + per]:
            producer.produce(topic, key=key, value=value)
        producer.commit_transaction(30)


@pytest.mark.timeout(200)
def test_records_written_in_transactions_are_all_processed_past_the_markers(
    kafka: str,
    topics: Topics,
    processor_env: dict[str, str],
    services: Callable[..., ServiceProcess],
) -> None:
    """A transactional producer (MirrorMaker 2 or Kafka Connect exactly-once feeding the raw
    topic) leaves an offset with no record after each transaction, its commit marker: no hole
    Faust dropped, so nothing to seek back to. Found in review: the worker sought back to the
    first marker forever, 100 of 3,000 events out. And the last marker of a partition is never
    committed past (nothing after it is handed over): the stall guard restarted the worker every
    few seconds, idle."""
    records, expected = _records()
    _produce_in_transactions(kafka, topics.raw, records, per=100)
    processor = services("processors", processor_env)
    reader = TopicReader(kafka, topics.domain)
    try:
        assert reader.read_until(lambda v: _ids(v) >= expected, timeout_s=120), (
            len(_ids(reader.values)),
            len(expected),
            _progress(kafka, topics.raw, processor_env["HERALD_PROCESSOR_APP_ID"]),
        )
    finally:
        reader.close()
    # Each partition ends with a marker no commit can pass: no stall to restart for.
    stall_s = float(processor_env["HERALD_PROCESSOR_COMMIT_STALL_S"])
    quiet_until = time.monotonic() + 2 * stall_s
    while time.monotonic() < quiet_until:
        assert "committed nothing" not in processor.log_tail(200)
        time.sleep(0.5)  # the time a condition must hold (no restart), not waiting for an effect
