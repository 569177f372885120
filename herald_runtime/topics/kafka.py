"""The `Broker` of `ensuring` on a real Kafka cluster, through confluent-kafka's AdminClient.

Topics are found in the metadata of every topic (never asked for by name: a broker with
`auto.create.topics.enable` would create a topic a metadata request names); configs are read with
DescribeConfigs and set with IncrementalAlterConfigs (Kafka 2.3 and later), so configs Herald does
not manage keep the values someone else gave them. The client's errors are translated here: an
answer only a changed setting or grant can change is `BrokerRefusedError`, anything else
`BrokerUnavailableError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from herald_runtime.topics.drift import Observed
from herald_runtime.topics.ensuring import BrokerRefusedError, BrokerUnavailableError
from herald_runtime.topics.plan import TopicSpec

_REFUSALS = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_EXCEPTION,  # an invalid topic name
        KafkaError.POLICY_VIOLATION,
        KafkaError.INVALID_CONFIG,
        KafkaError.INVALID_REPLICATION_FACTOR,  # more replicas than brokers
        KafkaError.INVALID_PARTITIONS,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError._AUTHENTICATION,
    }
)


def admin_client(bootstrap: str) -> AdminClient:
    # librdkafka would print every refused connection; callers say what failed, once.
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})


def translated(e: KafkaException, what: str) -> BrokerUnavailableError | BrokerRefusedError:
    error = e.args[0] if e.args else None
    if isinstance(error, KafkaError) and error.code() in _REFUSALS:
        return BrokerRefusedError(f"{what}: {error.str()}")
    reason = error.str() if isinstance(error, KafkaError) else str(e)
    return BrokerUnavailableError(f"{what}: {reason}")


def topic_partitions(
    admin: AdminClient, names: Sequence[str], *, bootstrap: str, timeout_s: float
) -> dict[str, tuple[int, int]]:
    """(partitions, fewest replicas of a partition) of each named topic that exists.
    BrokerUnavailableError if no broker answers within `timeout_s`."""
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as e:
        raise translated(e, f"Kafka at {bootstrap} does not answer") from e
    found = {}
    for name in names:
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None or not topic.partitions:
            continue  # unknown, or not yet fully created: missing for now
        replicas = min(len(p.replicas) for p in topic.partitions.values())
        found[name] = (len(topic.partitions), replicas)
    return found


class KafkaBroker:
    def __init__(self, bootstrap: str, *, timeout_s: float = 15.0) -> None:
        """`timeout_s`: the longest one request may take."""
        self._bootstrap = bootstrap
        self._timeout_s = timeout_s
        self._admin = admin_client(bootstrap)

    def observe(self, names: Sequence[str]) -> dict[str, Observed]:
        counts = topic_partitions(
            self._admin, names, bootstrap=self._bootstrap, timeout_s=self._timeout_s
        )
        configs = self._configs(list(counts))
        return {
            name: Observed(partitions=partitions, replication_factor=replicas, config=configs[name])
            for name, (partitions, replicas) in counts.items()
        }

    def create(self, spec: TopicSpec) -> bool:
        new = NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=spec.replication_factor or -1,  # -1: the broker's default
            config={key: wanted.value for key, wanted in spec.config.items()},
        )
        futures = self._admin.create_topics(
            [new], operation_timeout=self._timeout_s, request_timeout=self._timeout_s
        )
        try:
            futures[spec.name].result(timeout=self._timeout_s + 5)
        except KafkaException as e:
            error = e.args[0] if e.args else None
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return False
            raise translated(e, f"creating {spec.name!r}") from e
        return True

    def alter(self, name: str, config: Mapping[str, str]) -> None:
        entries = [
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
            for key, value in config.items()
        ]
        resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=entries)
        futures = self._admin.incremental_alter_configs([resource], request_timeout=self._timeout_s)
        try:
            for future in futures.values():
                future.result(timeout=self._timeout_s + 5)
        except KafkaException as e:
            raise translated(e, f"setting {', '.join(config)} of {name!r}") from e

    def _configs(self, names: list[str]) -> dict[str, dict[str, str]]:
        if not names:
            return {}
        resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
        futures = self._admin.describe_configs(resources, request_timeout=self._timeout_s)
        configs = {}
        for resource, future in futures.items():
            try:
                entries: dict[str, Any] = future.result(timeout=self._timeout_s + 5)
            except KafkaException as e:
                raise translated(e, f"reading the configuration of {resource.name!r}") from e
            configs[resource.name] = {
                key: entry.value for key, entry in entries.items() if entry.value is not None
            }
        return configs
