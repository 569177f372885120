"""The delivery log in memory (`dispatchers.postgres.deliveries`' twin): shown, and sent again."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dispatchers.memory.tables import Delivery, Tables
from dispatchers.model import view


class MemoryDeliveryLog:
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    def deliveries(
        self,
        *,
        subscription_id: uuid.UUID | None = None,
        status: str | None = None,
        event_id: str | None = None,
        object_key: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        with self._t.lock:
            found = [
                d
                for d in sorted(self._t.deliveries.values(), key=lambda d: -d.seq)
                if subscription_id in (None, d.subscription_id)
                and status in (None, d.status)
                and event_id in (None, d.event_id)
                and object_key in (None, d.object_key)
            ]
            return [view(_columns(d, _LISTED)) for d in found[:limit]]

    def delivery(self, delivery_id: uuid.UUID) -> dict[str, Any] | None:
        with self._t.lock:
            d = self._t.deliveries.get(delivery_id)
            if d is None:
                return None
            event = self._t.events[d.event_id]
            shown = view(
                {
                    **_columns(d, _SHOWN),
                    "event_type": event.type,
                    "event_time": event.time,
                    "event": event.payload,
                }
            )
            shown["attempts"] = [view(a) for a in d.attempts]
            return shown

    def redeliver(self, delivery_id: uuid.UUID, *, now: datetime) -> bool:
        with self._t.lock:
            d = self._t.deliveries.get(delivery_id)
            if d is not None:
                d.requeue(now)
            return d is not None

    def recover(
        self, subscription_id: uuid.UUID, *, since: datetime, until: datetime | None, now: datetime
    ) -> int:
        with self._t.lock:
            failed = [
                d
                for d in self._t.deliveries.values()
                if d.subscription_id == subscription_id
                and d.status == "failed"
                and d.created_at >= since
                and (until is None or d.created_at < until)
            ]
            for d in failed:
                d.requeue(now)
            return len(failed)


_LISTED = (
    "id",
    "event_id",
    "subscription_id",
    "object_key",
    "status",
    "attempt_count",
    "next_attempt_at",
    "created_at",
    "updated_at",
)
_SHOWN = (
    *_LISTED[:6],
    "next_attempt_at",
    "last_status_code",
    "last_error",
    "delivered_at",
    "created_at",
    "updated_at",
)


def _columns(d: Delivery, names: Sequence[str]) -> dict[str, Any]:
    return {n: getattr(d, n) for n in names}
