"""`python -m collectors` as a real process: simulated cluster in, raw records on the real broker out."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from herald_dev.fakekube import FakeKube
from herald_dev.processes import ServiceProcess
from tests.conftest import Topics
from tests.support import consume, rollout_event, validate, wait_until


def test_listed_and_watched_events_are_published_with_their_object_key(
    kafka: str,
    topics: Topics,
    fake_kube: FakeKube,
    kubeconfig: Path,
    services: Callable[..., ServiceProcess],
) -> None:
    for i in range(3):
        fake_kube.apply(
            "ADDED",
            rollout_event("RolloutStepCompleted", f"Rollout step {i + 1}/5 completed (pause)"),
        )
    collector = services(
        "collectors",
        {
            **topics.env(),
            "HERALD_CLUSTER_NAME": "prod-eu",
            "HERALD_KUBECONFIG": str(kubeconfig),
            "HERALD_LIST_PAGE_SIZE": "2",
        },
    )
    listed = consume(kafka, topics.raw, count=3, timeout_s=30)
    assert len(listed) == 3
    paused = fake_kube.apply(
        "ADDED", rollout_event("RolloutPaused", "Rollout is paused (CanaryPauseStep)")
    )
    fake_kube.apply("MODIFIED", {"metadata": paused["metadata"], "count": 2})
    records = consume(kafka, topics.raw, count=5, timeout_s=30)
    values = [json.loads(r.value or b"") for r in records]
    for value in values:
        validate("kube-event-record.v1.schema.json", value)
    assert {r.key for r in records} == {b"prod-eu/billing/Rollout/payments"}
    assert len({r.partition for r in records}) == 1  # one object, one partition, in order
    assert [v["watch_type"] for v in values] == ["ADDED"] * 4 + ["MODIFIED"]
    assert values[-1]["object"]["count"] == 2
    assert values[-1]["object"]["metadata"]["uid"] == paused["metadata"]["uid"]
    assert all(v["cluster"] == "prod-eu" for v in values)
    assert collector.stop() == 0


@pytest.mark.parametrize(
    ("topic_config", "setting"),
    [
        pytest.param(
            {"cleanup.policy": "delete"}, "HERALD_CHECKPOINT_TOPIC", id="checkpoint-not-compacted"
        ),
        pytest.param(
            {"max.message.bytes": "500000"},
            "HERALD_KAFKA_MESSAGE_MAX_BYTES",
            id="raw-topic-takes-smaller-records-than-the-producer-sends",
        ),
    ],
)
def test_a_topic_that_does_not_fit_the_settings_stops_the_collector_naming_the_setting(
    kafka: str,
    topics: Topics,
    kubeconfig: Path,
    services: Callable[..., ServiceProcess],
    topic_config: dict[str, str],
    setting: str,
) -> None:
    name = f"test.{uuid.uuid4().hex[:10]}.misfit"
    admin = AdminClient({"bootstrap.servers": kafka})
    admin.create_topics([NewTopic(name, num_partitions=1, config=topic_config)])[name].result(30)
    which = "HERALD_CHECKPOINT_TOPIC" if "cleanup.policy" in topic_config else "HERALD_RAW_TOPIC"
    collector = services(
        "collectors",
        {
            **topics.env(),
            which: name,
            "HERALD_CLUSTER_NAME": "prod-eu",
            "HERALD_KUBECONFIG": str(kubeconfig),
        },
    )
    assert wait_until(lambda: not collector.alive, timeout_s=30)
    assert collector.stop() == 1
    log = collector.log_path.read_text()
    assert f"collector: bad setting: {setting}" in log
    assert "Traceback" not in log
