"""How a topic as a broker reports it differs from its spec (`plan.TopicSpec`). Pure.

Fewer partitions or replicas than wanted is drift the command reports and does not fix (more
partitions move keys; more replicas is a reassignment); more than wanted is fine. A managed config
that differs is drift `ensure` sets: `cleanup.policy` compared as a set of policies, a config with a
`minimum` satisfied by any number at least that, others by value (numbers as numbers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from herald_runtime.topics.plan import TopicSpec, Wanted


@dataclass(frozen=True)
class Observed:
    """A topic as the broker reports it."""

    partitions: int
    replication_factor: int
    """The fewest replicas of any partition."""
    config: Mapping[str, str]
    """Its configuration (every key the broker reports, default values included)."""


@dataclass(frozen=True)
class Drift:
    key: str
    """`partitions`, `replication.factor`, or a config name."""
    actual: str | None
    wanted: str
    fixable: bool
    """Whether `ensure` sets it (a config); partitions and replicas are changed by hand."""

    def describe(self) -> str:
        if self.key == "partitions":
            return (
                f"{self.actual} partitions, wanted {self.wanted} (not changed: more partitions"
                " move keys to other partitions; add them by hand, knowing that)"
            )
        if self.key == "replication.factor":
            return (
                f"{self.actual} replicas, wanted {self.wanted} (not changed: a partition"
                " reassignment, by hand)"
            )
        return f"{self.key}={self.actual}, wanted {self.wanted}"


@dataclass(frozen=True)
class Judgement:
    spec: TopicSpec
    observed: Observed | None
    drifts: tuple[Drift, ...] = ()

    @property
    def missing(self) -> bool:
        return self.observed is None

    @property
    def ok(self) -> bool:
        return not self.missing and not self.drifts

    @property
    def fixes(self) -> dict[str, str]:
        """The configs `ensure` sets: name to value."""
        return {d.key: d.wanted for d in self.drifts if d.fixable}

    @property
    def unfixable(self) -> tuple[Drift, ...]:
        return tuple(d for d in self.drifts if not d.fixable)

    def describe(self) -> str:
        if self.observed is None:
            return f"missing (wanted {describe_spec(self.spec)})"
        if not self.drifts:
            return f"ok ({partitions_text(self.observed.partitions)})"
        return "drift: " + "; ".join(d.describe() for d in self.drifts)


def describe_spec(spec: TopicSpec) -> str:
    replicas = spec.replication_factor or "the broker's default"
    configs = ", ".join(f"{key}={wanted.value}" for key, wanted in spec.config.items())
    return f"{partitions_text(spec.partitions)}, replication factor {replicas}" + (
        f", {configs}" if configs else ""
    )


def partitions_text(count: int) -> str:
    return f"{count} partition{'' if count == 1 else 's'}"


def judge(spec: TopicSpec, observed: Observed | None) -> Judgement:
    """How `observed` (None: the topic does not exist) differs from `spec`. Fewer partitions or
    replicas than wanted is drift `ensure` cannot fix; more is fine."""
    if observed is None:
        return Judgement(spec, None)
    drifts = []
    if observed.partitions < spec.partitions:
        drifts.append(Drift("partitions", str(observed.partitions), str(spec.partitions), False))
    wanted_rf = spec.replication_factor
    if wanted_rf is not None and observed.replication_factor < wanted_rf:
        drifts.append(
            Drift("replication.factor", str(observed.replication_factor), str(wanted_rf), False)
        )
    for key, wanted in spec.config.items():
        actual = observed.config.get(key)
        if not _satisfies(key, actual, wanted):
            drifts.append(Drift(key, actual, wanted.value, True))
    return Judgement(spec, observed, tuple(drifts))


def _satisfies(key: str, actual: str | None, wanted: Wanted) -> bool:
    if actual is None:
        return False
    if key == "cleanup.policy":  # a list: "compact,delete" is not "compact"
        return _policies(actual) == _policies(wanted.value)
    if wanted.minimum is not None:
        return _integer(actual) is not None and (_integer(actual) or 0) >= wanted.minimum
    number = _integer(actual)
    return actual == wanted.value or (number is not None and number == _integer(wanted.value))


def _policies(value: str) -> frozenset[str]:
    return frozenset(p.strip() for p in value.split(",") if p.strip())


def _integer(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None
