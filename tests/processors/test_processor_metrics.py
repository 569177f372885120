"""The processor's metrics: the consumer lag counts the raw partitions assigned to this worker now
(after a rebalance the partitions that moved away are no longer reported here, so the sum over
workers, the dashboard's and the lag alert's, counts each partition once); the messages not
understood are counted from 0 for every reason the enabled packs may not understand."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from prometheus_client import REGISTRY

from processors.app import _guard_commits, build_app
from processors.settings import ProcessorSettings

SETTINGS = ProcessorSettings(kafka_bootstrap="127.0.0.1:1")  # never connected to


@dataclass
class FakeConsumer:
    """What the commit guard reads of Faust's consumer: the assignment, the partitions' end
    offsets and the offsets Faust committed."""

    assigned: set[TP] = field(default_factory=set)
    ends: dict[TP, int] = field(default_factory=dict)
    _committed_offset: dict[TP, int] = field(default_factory=dict)

    def assignment(self) -> set[TP]:
        return self.assigned

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.ends[tp] for tp in tps}


@dataclass
class FakeApp:
    """A Faust app as far as the guard uses it: its timers are run by the test."""

    consumer: FakeConsumer
    rebalancing: bool = False
    timers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    tables: Any = field(
        default_factory=lambda: SimpleNamespace(
            recovery=SimpleNamespace(completed=SimpleNamespace(is_set=lambda: True))
        )
    )

    def timer(self, *, interval: float) -> Callable[[Any], Any]:
        def register(function: Callable[[], Awaitable[None]]) -> Any:
            self.timers.append(function)
            return function

        return register

    def tick(self) -> None:
        for timer in self.timers:
            asyncio.run(timer())


def _lags() -> dict[str, float]:
    return {
        sample.labels["partition"]: sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == "herald_processor_consumer_lag"
    }


def _tps(*partitions: int) -> set[TP]:
    return {TP(SETTINGS.raw_topic, p) for p in partitions}


def test_partitions_moved_away_by_a_rebalance_are_no_longer_reported() -> None:
    consumer = FakeConsumer(_tps(0, 1, 2, 3, 4, 5))
    consumer.ends = {tp: 100 + tp.partition for tp in consumer.assigned}
    consumer._committed_offset = dict.fromkeys(consumer.assigned, 100)
    app = FakeApp(consumer)
    _guard_commits(app, SETTINGS, restart=lambda: None)  # type: ignore[arg-type]
    app.tick()
    assert _lags() == {str(p): float(p) for p in range(6)}

    consumer.assigned = _tps(1, 4)  # a second worker joined and took the other four
    app.tick()
    assert _lags() == {"1": 1.0, "4": 4.0}

    consumer.assigned = set()  # and then all of them
    app.tick()
    assert _lags() == {}


def test_reasons_the_packs_may_not_understand_are_counted_from_zero(tmp_path: Path) -> None:
    """The first message in a new wording after a start must reach `increase()`: its counter
    has a 0 sample before it (issue 13)."""
    settings = ProcessorSettings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path)
    build_app(settings, raw_partitions=6, restart=lambda: None)
    counted = {
        sample.labels["reason"]: sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == "herald_processor_messages_not_understood_total"
    }
    assert {"RolloutAborted", "RolloutStepCompleted", "OperationCompleted"} <= set(counted)
