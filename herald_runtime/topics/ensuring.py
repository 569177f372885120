"""`check` and `ensure`: Herald's topics against what a broker holds.

`check` changes nothing and judges every topic (`plan.judge`). `ensure` creates what is missing
(with the planned partitions, replicas and configs), sets the managed configs that drift
(incrementally: configs Herald does not manage are left as they are), and leaves partition and
replica counts below the wanted ones as they are, reported: it is idempotent, and a second run
changes nothing. Both talk to a `Broker`: `herald_runtime.topics.kafka.KafkaBroker` for a real one,
`herald_runtime.topics.memory.MemoryBroker` in unit tests.

Errors (raised by a Broker, translated from the client's there):

    TopicsError
    ├── BrokerUnavailableError   Kafka does not answer (yet): try again later
    └── BrokerRefusedError       Kafka answered no (authorization, policy, a config it refuses)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from herald_runtime.topics.drift import Judgement, Observed, judge
from herald_runtime.topics.plan import TopicSpec


class TopicsError(Exception):
    """Kafka did not do what the topics command asked; the message says what and why."""


class BrokerUnavailableError(TopicsError):
    """No broker answers (down, starting, not resolvable yet)."""


class BrokerRefusedError(TopicsError):
    """A broker answered and refused: a grant, a policy, or a config it does not take."""


class Broker(Protocol):
    def observe(self, names: Sequence[str]) -> dict[str, Observed]:
        """The named topics that exist, as the broker reports them (absent: missing)."""
        ...

    def create(self, spec: TopicSpec) -> bool:
        """Create the topic as planned; False if it exists already (created meanwhile)."""
        ...

    def alter(self, name: str, config: Mapping[str, str]) -> None:
        """Set these configs of the topic, leaving its other configs as they are."""
        ...


@dataclass(frozen=True)
class Outcome:
    """What `ensure` found for one topic and did."""

    found: Judgement
    created: bool = False
    altered: Mapping[str, str] = field(default_factory=dict)
    """Configs set: name to the value set."""

    @property
    def name(self) -> str:
        return self.found.spec.name

    @property
    def left(self) -> tuple[str, ...]:
        """What stays as it should not be (fixed by hand, or by a later run)."""
        if self.created:
            return ()
        if self.found.missing:  # created by someone else, not in the metadata yet
            return ("created meanwhile by someone else, and not reported yet: run again",)
        return tuple(d.describe() for d in self.found.unfixable)

    @property
    def ok(self) -> bool:
        return not self.left

    def describe(self) -> str:
        if self.created:
            return "created"
        done = [f"set {key}={value}" for key, value in self.altered.items()]
        if self.left:
            return "; ".join([*done, *(f"drift not fixed: {d}" for d in self.left)])
        return "; ".join(done) if done else self.found.describe()


def check(broker: Broker, specs: Sequence[TopicSpec]) -> list[Judgement]:
    """Each topic judged against the broker; nothing changed."""
    observed = broker.observe([spec.name for spec in specs])
    return [judge(spec, observed.get(spec.name)) for spec in specs]


def ensure(broker: Broker, specs: Sequence[TopicSpec]) -> list[Outcome]:
    """Create the missing topics, set the drifting configs; see the module docstring."""
    outcomes = []
    for judged in check(broker, specs):
        if judged.missing and broker.create(judged.spec):
            outcomes.append(Outcome(judged, created=True))
            continue
        # Created by someone else meanwhile: judged as it is now.
        found = check(broker, [judged.spec])[0] if judged.missing else judged
        fixes = found.fixes
        if fixes:
            broker.alter(found.spec.name, fixes)
        outcomes.append(Outcome(found, altered=fixes))
    return outcomes
