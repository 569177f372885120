"""Housekeeping in memory (`dispatchers.postgres.housekeeping`' twin): clean-up by age, gauges."""

from __future__ import annotations

from datetime import datetime, timedelta

from dispatchers.memory.tables import Tables
from dispatchers.model import OPEN


class MemoryHousekeeping:
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    def clean_up(
        self, *, now: datetime, delivered_for: timedelta, failed_for: timedelta, batch: int
    ) -> int | None:
        if not self._t.cleaning.acquire(blocking=False):
            return None
        try:
            with self._t.lock:
                before = {"delivered": now - delivered_for, "failed": now - failed_for}
                old = [
                    d
                    for d in self._t.deliveries.values()
                    if d.status in before and d.updated_at < before[d.status]
                ]
                for d in old:
                    del self._t.deliveries[d.id]
                    del self._t.by_pair[(d.event_id, d.subscription_id)]
                referred = {d.event_id for d in self._t.deliveries.values()}
                gone = {d.event_id for d in old} - referred
                gone |= {
                    e.id
                    for e in self._t.events.values()
                    if e.received_at < now - delivered_for and e.id not in referred
                }
                for event_id in gone:
                    del self._t.events[event_id]
                return len(old)
        finally:
            self._t.cleaning.release()

    def stats(self, *, now: datetime) -> dict[str, float]:
        with self._t.lock:
            open_ = [d for d in self._t.deliveries.values() if d.status in OPEN]
            due = [
                d.next_attempt_at for d in open_ if d.next_attempt_at and d.next_attempt_at <= now
            ]
            disabled = sum(not s.enabled for s in self._t.subscriptions.values())
        return {
            "pending": float(sum(d.status == "pending" for d in open_)),
            "retrying": float(sum(d.status == "retrying" for d in open_)),
            "oldest_due_age_s": (now - min(due)).total_seconds() if due else 0.0,
            "disabled_subscriptions": float(disabled),
        }
