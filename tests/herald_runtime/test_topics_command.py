"""`python -m herald_runtime.topics` against the real broker: ensure creates every topic as the
settings call for, a second run changes nothing, drift is fixed where a config drifts and reported
where partitions are fewer, check changes nothing and fails on a missing topic."""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Any

import pytest
import yaml
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from herald_runtime.topics.__main__ import run
from herald_runtime.topics.kafka import KafkaBroker

pytestmark = pytest.mark.integration


def _env(kafka: str, **extra: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return {
        "HERALD_KAFKA_BOOTSTRAP": kafka,
        "HERALD_RAW_TOPIC": f"test.{suffix}.raw",
        "HERALD_DOMAIN_TOPIC": f"test.{suffix}.domain",
        "HERALD_DEAD_LETTER_TOPIC": f"test.{suffix}.dead",
        "HERALD_CHECKPOINT_TOPIC": f"test.{suffix}.checkpoints",
        **extra,
    }


def _command(argv: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
    out: list[str] = []
    code = run(argv, env, broker=KafkaBroker, out=out.append, err=out.append)
    return code, out


def _described(kafka: str, topic: str) -> tuple[int, dict[str, str]]:
    """(partitions, config) as the broker tells it to a client of the test's own."""
    admin = AdminClient({"bootstrap.servers": kafka})
    partitions = len(admin.list_topics(timeout=10).topics[topic].partitions)
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries: dict[str, Any] = admin.describe_configs([resource])[resource].result(timeout=10)
    return partitions, {name: entry.value for name, entry in entries.items()}


def test_ensure_creates_every_topic_as_the_settings_call_for_and_a_second_run_changes_nothing(
    kafka: str,
) -> None:
    env = _env(
        kafka,
        HERALD_TOPIC_PARTITIONS="4",
        HERALD_DOMAIN_RETENTION_MS="172800000",
        HERALD_KAFKA_MESSAGE_MAX_BYTES="2000000",
    )
    code, out = _command(["ensure"], env)
    assert code == 0, out
    assert all(line.endswith(": created") for line in out), out

    raw_partitions, raw = _described(kafka, env["HERALD_RAW_TOPIC"])
    assert raw_partitions == 4
    assert (raw["cleanup.policy"], raw["retention.ms"]) == ("delete", "259200000")
    assert raw["max.message.bytes"] == "2000000"
    domain_partitions, domain = _described(kafka, env["HERALD_DOMAIN_TOPIC"])
    assert (domain_partitions, domain["retention.ms"]) == (4, "172800000")
    dead_partitions, dead = _described(kafka, env["HERALD_DEAD_LETTER_TOPIC"])
    assert (dead_partitions, dead["retention.ms"]) == (1, "2592000000")
    checkpoint_partitions, checkpoints = _described(kafka, env["HERALD_CHECKPOINT_TOPIC"])
    assert (checkpoint_partitions, checkpoints["cleanup.policy"]) == (1, "compact")

    code, again = _command(["ensure"], env)
    assert code == 0, again
    assert all(": ok (" in line for line in again), again
    assert _described(kafka, env["HERALD_DOMAIN_TOPIC"]) == (domain_partitions, domain)
    assert _command(["check"], env)[0] == 0


def test_ensure_compacts_a_checkpoint_topic_created_deleting_and_reports_fewer_partitions(
    kafka: str,
) -> None:
    env = _env(kafka)
    admin = AdminClient({"bootstrap.servers": kafka})
    made = [
        NewTopic(env["HERALD_CHECKPOINT_TOPIC"], 1, config={"cleanup.policy": "delete"}),
        NewTopic(env["HERALD_RAW_TOPIC"], 2),
    ]
    for future in admin.create_topics(made).values():
        future.result(timeout=30)

    code, out = _command(["check"], env)
    assert code == 1
    [checkpoint_line] = [line for line in out if "HERALD_CHECKPOINT_TOPIC" in line]
    assert "cleanup.policy=delete, wanted compact" in checkpoint_line

    code, out = _command(["ensure"], env)
    assert code == 1, out  # the raw topic's partitions: not fixed
    [raw_line] = [line for line in out if "HERALD_RAW_TOPIC" in line]
    assert "drift not fixed: 2 partitions, wanted 6" in raw_line
    assert _described(kafka, env["HERALD_CHECKPOINT_TOPIC"])[1]["cleanup.policy"] == "compact"
    raw_partitions, raw = _described(kafka, env["HERALD_RAW_TOPIC"])
    assert raw_partitions == 2  # more partitions would move keys: left to a person
    assert raw["retention.ms"] == "259200000"  # what could be fixed was

    code, out = _command(["check"], env)
    assert code == 1
    assert [line for line in out if "drift" in line] == [
        f"{env['HERALD_RAW_TOPIC']} (HERALD_RAW_TOPIC): drift: 2 partitions, wanted 6 (not"
        " changed: more partitions move keys to other partitions; add them by hand, knowing that)"
    ]


def test_check_exits_1_on_a_missing_topic_and_creates_nothing(kafka: str) -> None:
    env = _env(kafka)
    result = subprocess.run(
        [sys.executable, "-m", "herald_runtime.topics", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert f"{env['HERALD_RAW_TOPIC']} (HERALD_RAW_TOPIC): missing" in result.stdout
    assert (
        env["HERALD_RAW_TOPIC"]
        not in AdminClient({"bootstrap.servers": kafka}).list_topics(timeout=10).topics
    )


def test_the_strimzi_command_prints_kafka_topic_resources() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "herald_runtime.topics",
            "strimzi",
            "--cluster",
            "events",
            "--namespace",
            "kafka",
            "--processor-topics",
        ],
        env={"HERALD_TOPIC_REPLICATION_FACTOR": "3", "HERALD_TOPIC_MIN_INSYNC_REPLICAS": "2"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    assert [d["spec"]["topicName"] for d in documents] == [
        "herald.kube-events.v1",
        "herald.deploy-events.v1",
        "herald.dead-letters.v1",
        "herald.collector-checkpoints.v1",
        "herald-processors-occurrences-changelog",
        "herald-processors-rollouts-changelog",
        "herald-processors-__assignor-__leader",
    ]
    for document in documents:
        assert document["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert document["kind"] == "KafkaTopic"
        assert document["metadata"]["labels"]["strimzi.io/cluster"] == "events"
        assert document["metadata"]["namespace"] == "kafka"
    raw, checkpoints = documents[0]["spec"], documents[3]["spec"]
    assert (raw["partitions"], raw["replicas"]) == (6, 3)
    assert raw["config"]["min.insync.replicas"] == 2
    assert checkpoints["config"]["cleanup.policy"] == "compact"
    assert documents[6]["metadata"]["name"] == "herald-processors-assignor-leader"
