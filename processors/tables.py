"""The processor's state in Faust tables, bounded: what `processors.state` decides, applied to them.

Faust (faust-streaming 0.15) expires a windowed table's keys only if this process wrote them: the
keys a worker recovers from the changelog at start or after a rebalance are never expired, and a
plain table never deletes. A worker restarted after a week held a week of keys (issue 9). So both
tables are plain tables of `processors.state.Kept` values, and:
- `ExpiringTable.apply_changelog_batch` drops, while recovering, every value already past its
  retention (or of an older version's shape), so a recovery holds only what is still needed;
- a Faust timer sweeps every `HERALD_PROCESSOR_SWEEP_INTERVAL_S`: it deletes what
  `Keeper.expired` names from the partitions this worker owns, and writes a tombstone for each
  (and for what recovery dropped) to the changelog, so the next recovery reads less once Kafka has
  compacted it. Changelog topics Faust creates roll a segment every hour (`segment.ms`), or the
  compaction of a quiet topic would wait for its week-long default segment to close.

Faust's own deletion needs the record being processed (it writes the tombstone to that record's
partition); a sweep has none, so it removes the key from the table's store and sends the tombstone
to the partition kept in the value.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import faust
from prometheus_client import Counter, Gauge

from processors.settings import ProcessorSettings
from processors.state import Keeper, dead_on_arrival

log = logging.getLogger(__name__)

ENTRIES = Gauge(
    "herald_processor_state_entries",
    "Entries held in each table (after the last sweep).",
    ["table"],
)
FORGOTTEN = Counter(
    "herald_processor_state_forgotten_total",
    "Table entries deleted by the sweep or dropped while recovering, past their retention.",
    ["table"],
)

CHANGELOG_SEGMENT_MS = 3_600_000
SWEEP_BATCH = 2_000
"""Entries deleted between two flushes of the producer (and turns of the event loop)."""


class ExpiringTable(faust.Table[Any, Any]):
    """A table that drops, while recovering, the values `dead_on_arrival` names; their keys wait in
    `dropped` (key: partition) for the sweep to write their tombstones."""

    def __init__(
        self, *args: Any, dead_on_arrival: Callable[[object], bool], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.dead_on_arrival = dead_on_arrival
        self.dropped: dict[Any, int] = {}

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        events = list(batch)
        super().apply_changelog_batch(events)
        last = {self._to_key(event.key): event for event in events}
        for key, event in last.items():
            if event.message.value is not None and self.dead_on_arrival(event.value):
                forget(self, key)
                self.dropped[key] = event.message.partition
                FORGOTTEN.labels(self.name).inc()
            else:
                self.dropped.pop(key, None)


def forget(table: ExpiringTable, key: Any) -> None:
    """Remove a key from the table's store only (no changelog write)."""
    table.data.pop(key, None)
    # The in-memory store keeps the partition of every key it recovered, in private state; a key
    # gone from the table must go from there too, or that map would keep every key ever recovered.
    partitions = getattr(table.data, "_key_partition", None)
    if isinstance(partitions, dict):
        partitions.pop(key, None)


def build_tables(
    app: faust.App, settings: ProcessorSettings, partitions: int
) -> tuple[Keeper, dict[str, ExpiringTable]]:
    retention_s = 2.0 * settings.occurrence_window_s

    def dead(value: object) -> bool:
        return dead_on_arrival(value, now=time.time(), retention_s=retention_s)

    def table(name: str) -> ExpiringTable:
        created = ExpiringTable(
            app,
            name=name,
            default=None,
            beacon=app.tables.beacon,
            partitions=partitions,
            extra_topic_configs={"segment.ms": str(CHANGELOG_SEGMENT_MS)},
            dead_on_arrival=dead,
        )
        app.tables.add(created)
        return created

    tables = {name: table(name) for name in ("occurrences", "rollouts")}
    return Keeper(tables["occurrences"], tables["rollouts"], retention_s=retention_s), tables


def sweep_tables(
    app: faust.App,
    settings: ProcessorSettings,
    keeper: Keeper,
    tables: dict[str, ExpiringTable],
) -> None:
    """Register the sweep timer (see the module docstring)."""

    @app.timer(interval=settings.sweep_interval_s)  # type: ignore[untyped-decorator]
    async def sweep() -> None:
        recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
        if app.rebalancing or not recovered:
            return  # what this worker owns is about to change
        consumer: Any = app.consumer
        owned = {tp.partition for tp in consumer.assignment() if tp.topic == settings.raw_topic}
        # Faust keeps the offsets it committed in private state.
        committed = {
            tp.partition: offset
            for tp, offset in getattr(consumer, "_committed_offset", {}).items()
            if tp.topic == settings.raw_topic and isinstance(offset, int)
        }
        deleted = 0

        async def deleted_one() -> None:
            nonlocal deleted
            deleted += 1
            if deleted % SWEEP_BATCH == 0:
                # Let the stream run, and bound the tombstones waiting in the producer's buffer
                # (after a week away, a recovery can leave hundreds of thousands to write).
                await app.producer.flush()

        for table in tables.values():
            dropped, table.dropped = table.dropped, {}
            for key, partition in dropped.items():
                if partition not in owned:
                    continue  # another worker's now: its own recovery drops it
                if key not in table.data:  # not written again since
                    tombstone(table, key, partition)
                await deleted_one()
        for doomed in keeper.expired(now=time.time(), committed=committed, owned=owned):
            table = tables[doomed.table]
            if table.data.get(doomed.key) is not doomed.value:
                continue  # changed while the sweep let the stream run
            forget(table, doomed.key)
            if doomed.partition is not None:
                tombstone(table, doomed.key, doomed.partition)
            FORGOTTEN.labels(doomed.table).inc()
            await deleted_one()
        for name, table in tables.items():
            ENTRIES.labels(name).set(len(table.data))
        if deleted:
            log.info("swept the tables: %d entries forgotten", deleted)


def tombstone(table: ExpiringTable, key: Any, partition: int) -> None:
    table.send_changelog(partition, key, None, value_serializer="raw")
