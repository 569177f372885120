"""Herald's topics as Strimzi `KafkaTopic` resources (`kafka.strimzi.io/v1beta2`), for clusters
whose topics are managed by Strimzi's topic operator. Pure: the plan in, YAML text out.

Each resource carries the `strimzi.io/cluster` label the topic operator selects on, and the topic's
Kafka name in `spec.topicName` (a Kafka name may hold `_` or capitals, which a resource name may
not; the resource name is the Kafka name made a valid one). `spec.replicas` is left out when no
replication factor is set: the operator then uses the broker's `default.replication.factor`.
Strimzi, not `ensure`, then owns the topics: it also refuses to lower partitions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

from herald_runtime.topics.plan import TopicSpec

API_VERSION = "kafka.strimzi.io/v1beta2"
KIND = "KafkaTopic"
CLUSTER_LABEL = "strimzi.io/cluster"


def resource_name(topic: str) -> str:
    """A Kubernetes resource name (DNS subdomain: lower case, digits, '-', '.') for a topic."""
    name = re.sub(r"[^a-z0-9.-]+", "-", topic.lower())
    name = re.sub(r"-{2,}", "-", name).strip("-.")
    return name[:253].rstrip("-.") or "topic"


def resource(spec: TopicSpec, *, cluster: str, namespace: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": resource_name(spec.name)}
    if namespace:
        metadata["namespace"] = namespace
    metadata["labels"] = {CLUSTER_LABEL: cluster, "app.kubernetes.io/part-of": "herald"}
    body: dict[str, Any] = {"topicName": spec.name, "partitions": spec.partitions}
    if spec.replication_factor is not None:
        body["replicas"] = spec.replication_factor
    if spec.config:
        body["config"] = {key: _value(wanted.value) for key, wanted in spec.config.items()}
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": body}


def render(specs: Sequence[TopicSpec], *, cluster: str, namespace: str | None = None) -> str:
    """One YAML document per topic, each opened with a comment saying what the topic is for."""
    documents = []
    for spec in specs:
        text = yaml.safe_dump(resource(spec, cluster=cluster, namespace=namespace), sort_keys=False)
        documents.append(f"# {spec.name} ({spec.setting}): {spec.why}\n{text}")
    return "---\n" + "---\n".join(documents)


def _value(value: str) -> int | str:
    """Numbers as numbers (Strimzi takes both; this is how its examples write them)."""
    try:
        return int(value)
    except ValueError:
        return value
