"""The event store in memory (`dispatchers.postgres.events`' twin): each event once, in arrival order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dispatchers.memory.tables import Event, Tables
from dispatchers.model import (
    EventStore,
    Row,
    StoredBatch,
    Subscription,
    ValuesRefusedError,
    cloudevent,
    replays_to,
)
from dispatchers.storable import storable_json, storable_text
from herald_contracts import parse_time


class MemoryEvents(EventStore):
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    def record_batch(self, batch: Sequence[Row], *, now: datetime) -> StoredBatch:
        rows = [(cloudevent(event, body), body, subs) for event, body, subs in batch]
        try:
            texts = [body.decode() for _, body, _ in rows]
        except UnicodeError as e:  # as Postgres text refuses it: nothing stored
            raise ValuesRefusedError(str(e)) from e
        with self._t.lock:
            taken: dict[int, str] = {}
            created = 0
            for i, ((event, _, subs), text) in enumerate(zip(rows, texts, strict=True)):
                source = storable_text(event.source)
                stored = self._t.events.get(event.id)
                if stored is None:
                    stored = self._t.events[event.id] = Event(
                        id=event.id,
                        type=event.type,
                        source=source,
                        object_key=event.key,
                        time=parse_time(event.time, field="time") if event.time else now,
                        payload=storable_json(dict(event.attributes)),
                        body=text,
                        received_at=self._t.clock(),
                        seq=self._t.next_seq(),
                    )
                elif stored.source != source:
                    taken[i] = stored.source
                    continue
                created += sum(self._t.add_delivery(stored, sub, now=now) for sub in subs)
            return StoredBatch(created, taken)

    def replay(
        self,
        subscription: Subscription,
        *,
        since: datetime,
        until: datetime | None,
        now: datetime,
        page: int = 500,
    ) -> int:
        with self._t.lock:
            events = sorted(self._t.events.values(), key=lambda e: e.seq)
            return sum(
                self._t.add_delivery(e, subscription.id, now=now, replayed=True)
                for e in events
                if e.time >= since
                and (until is None or e.time < until)
                and replays_to(subscription, event_id=e.id, body=e.body, object_key=e.object_key)
            )
