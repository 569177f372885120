"""An in-memory `Broker` for unit tests of `ensuring`: topics as plain data, the calls recorded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from herald_runtime.topics.drift import Observed
from herald_runtime.topics.plan import TopicSpec

BROKER_DEFAULTS = {"cleanup.policy": "delete", "retention.ms": "604800000"}
"""What a topic created without a config reports (a broker's defaults, abridged)."""


@dataclass
class MemoryBroker:
    topics: dict[str, Observed] = field(default_factory=dict)
    default_replication_factor: int = 1
    created: list[str] = field(default_factory=list)
    altered: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def observe(self, names: Sequence[str]) -> dict[str, Observed]:
        return {name: self.topics[name] for name in names if name in self.topics}

    def create(self, spec: TopicSpec) -> bool:
        if spec.name in self.topics:
            return False
        self.topics[spec.name] = Observed(
            partitions=spec.partitions,
            replication_factor=spec.replication_factor or self.default_replication_factor,
            config={**BROKER_DEFAULTS, **{k: w.value for k, w in spec.config.items()}},
        )
        self.created.append(spec.name)
        return True

    def alter(self, name: str, config: Mapping[str, str]) -> None:
        topic = self.topics[name]
        self.topics[name] = replace(topic, config={**topic.config, **config})
        self.altered.append((name, dict(config)))
