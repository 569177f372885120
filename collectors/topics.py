"""The collector's topics, checked once Kafka answers at start: the raw topic exists and takes
records as large as the producer sends; the checkpoint topic exists (created if missing) and is
compacted.

What it solves: telling a Kafka that is not there from a setting that is wrong. A broker that does not
answer (down, restarting, its name not resolvable yet) raises `KafkaUnavailableError`: the collector
waits for it with backoff, reports it on /readyz, and starts once it answers, instead of exiting with
"bad setting" and crash-looping through every Kafka outage. Only what a changed setting must fix
raises `SettingsError` and stops the collector naming the setting: a topic name Kafka refuses, a
checkpoint topic that is not compacted (old checkpoints would be deleted, and a restarted collector
would relist everything), a raw topic whose `max.message.bytes` is below the producer's
(`HERALD_KAFKA_MESSAGE_MAX_BYTES`: the broker would refuse whole batches of good records), or a
broker that refuses the collector's access. A raw topic that does not exist yet is waited for: topics
are often created by a job or an operator at the same time as the collector is deployed; the wait
(logged, and on /readyz) names the command that creates them (`herald_runtime.topics`, whose plan
also creates the checkpoint topic as this module would).
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from collectors.errors import KafkaUnavailableError, SettingsError
from herald_runtime.topics.plan import missing_message

log = logging.getLogger(__name__)

_REFUSALS = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_EXCEPTION,  # an invalid topic name
        KafkaError.POLICY_VIOLATION,
        KafkaError.INVALID_CONFIG,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError._AUTHENTICATION,
    }
)
"""Answers only a changed setting (or a changed grant) can change; anything else may pass."""


def check_topics(
    bootstrap: str,
    *,
    raw_topic: str,
    checkpoint_topic: str,
    message_max_bytes: int,
    timeout_s: float = 5,
) -> None:
    """Check both topics (creating the checkpoint topic if it is missing); raise
    KafkaUnavailableError to wait and retry, SettingsError to stop. Takes at most about three
    times `timeout_s`."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": log})  # type: ignore[dict-item]
    try:
        topics = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as e:
        raise _translated(e, f"Kafka at {bootstrap} does not answer") from e
    if raw_topic not in topics:
        raise KafkaUnavailableError(
            f"HERALD_RAW_TOPIC: {missing_message([raw_topic], bootstrap=bootstrap)}"
        )
    if checkpoint_topic not in topics:
        _create_checkpoint_topic(admin, checkpoint_topic, timeout_s=timeout_s)
    configs = _configs(admin, (raw_topic, checkpoint_topic), timeout_s=timeout_s)
    largest = configs.get(raw_topic, {}).get("max.message.bytes")
    if largest is not None and largest.isdecimal() and int(largest) < message_max_bytes:
        raise SettingsError(
            f"HERALD_KAFKA_MESSAGE_MAX_BYTES ({message_max_bytes}) is above what the raw topic "
            f"{raw_topic!r} takes (max.message.bytes {largest}): the broker would refuse whole "
            f"batches; set it to at most {largest}"
        )
    policy = configs.get(checkpoint_topic, {}).get("cleanup.policy")
    if policy is not None and "compact" not in policy.split(","):
        raise SettingsError(
            f"HERALD_CHECKPOINT_TOPIC {checkpoint_topic!r} has cleanup.policy={policy}: it must "
            f"be compacted, or old checkpoints are deleted (give another topic, or make it compact)"
        )


def _create_checkpoint_topic(admin: AdminClient, topic: str, *, timeout_s: float) -> None:
    new = NewTopic(topic, num_partitions=1, config={"cleanup.policy": "compact"})
    try:
        admin.create_topics([new], operation_timeout=timeout_s)[topic].result(timeout=timeout_s)
    except KafkaException as e:
        error = e.args[0] if e.args else None
        if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return
        raise _translated(
            e, f"HERALD_CHECKPOINT_TOPIC {topic!r} is missing and cannot be created"
        ) from e
    log.info("created the checkpoint topic %s (compacted)", topic)


def _configs(
    admin: AdminClient, topics: tuple[str, ...], *, timeout_s: float
) -> dict[str, dict[str, str]]:
    """Each topic's configuration; a topic whose configuration may not be read (no DescribeConfigs
    grant) is left out, unchecked, with a warning."""
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, t) for t in topics])
    configs: dict[str, dict[str, str]] = {}
    for resource, future in futures.items():
        try:
            entries: dict[str, Any] = future.result(timeout=timeout_s)
        except KafkaException as e:
            translated = _translated(e, f"cannot read the configuration of {resource.name!r}")
            if isinstance(translated, KafkaUnavailableError):
                raise translated from e
            log.warning("%s; not checking it", translated)
            continue
        configs[resource.name] = {name: entry.value for name, entry in entries.items()}
    return configs


def _translated(e: KafkaException, what: str) -> KafkaUnavailableError | SettingsError:
    error = e.args[0] if e.args else None
    if isinstance(error, KafkaError) and error.code() in _REFUSALS:
        return SettingsError(f"{what}: {error.str()}")
    return KafkaUnavailableError(f"{what}: {error.str() if isinstance(error, KafkaError) else e}")
