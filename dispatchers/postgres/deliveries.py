"""The delivery log in Postgres, as the operator sees it: deliveries and their attempts for display,
and sending some again (`redeliver`, `recover`: a new round of tries). The worker's side of the
same rows is the queue's (`dispatchers.postgres.queue`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from dispatchers.model import view
from dispatchers.postgres import ordering
from dispatchers.postgres.database import Database


class PgDeliveryLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    def deliveries(
        self,
        *,
        subscription_id: uuid.UUID | None = None,
        status: str | None = None,
        event_id: str | None = None,
        object_key: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The delivery log, newest first, as plain rows for display."""
        with self._db.cursor() as cur:
            cur.execute(
                "SELECT id, event_id, subscription_id, object_key, status, attempt_count,"
                " next_attempt_at, created_at, updated_at FROM deliveries"
                " WHERE (%(sub)s::uuid IS NULL OR subscription_id = %(sub)s)"
                " AND (%(status)s::text IS NULL OR status = %(status)s)"
                " AND (%(event)s::text IS NULL OR event_id = %(event)s)"
                " AND (%(object)s::text IS NULL OR object_key = %(object)s)"
                " ORDER BY seq DESC LIMIT %(limit)s",
                {
                    "sub": subscription_id,
                    "status": status,
                    "event": event_id,
                    "object": object_key,
                    "limit": limit,
                },
            )
            return [view(row) for row in cur.fetchall()]

    def delivery(self, delivery_id: uuid.UUID) -> dict[str, Any] | None:
        """One delivery with its event and every attempt, as plain values for display."""
        with self._db.cursor() as cur:
            cur.execute(
                "SELECT d.id, d.event_id, d.subscription_id, d.object_key, d.status,"
                " d.attempt_count, d.next_attempt_at, d.last_status_code, d.last_error,"
                " d.delivered_at, d.created_at, d.updated_at, e.type AS event_type,"
                " e.time AS event_time, e.payload AS event"
                " FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = %s",
                (delivery_id,),
            )
            row = cur.fetchone()
            if row is None:
                return None
            cur.execute(
                "SELECT attempt_number, started_at, duration_ms, status_code, response_headers,"
                " response_body, error FROM attempts WHERE delivery_id = %s"
                " ORDER BY attempt_number",
                (delivery_id,),
            )
            shown = view(row)
            shown["attempts"] = [view(a) for a in cur.fetchall()]
            return shown

    def redeliver(self, delivery_id: uuid.UUID, *, now: datetime) -> bool:
        """Send a delivery again now, whatever its status, with a new round of tries (for an
        ordered subscription, once no earlier delivery about its object is open; the later ones
        wait for it)."""
        with self._db.cursor() as cur:
            cur.execute(
                "SELECT subscription_id, object_key FROM deliveries WHERE id = %s", (delivery_id,)
            )
            row = cur.fetchone()
            if row is None:
                return False
            ordering.reopen(cur, row["subscription_id"], [row["object_key"]])
            cur.execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = %s,"
                " round_start = attempt_count, claimed_until = NULL, claim_token = NULL, updated_at = %s,"
                " waiting = true, parked = NOT (SELECT enabled FROM subscriptions s"
                " WHERE s.id = subscription_id)"
                " WHERE id = %s",
                (now, now, delivery_id),
            )
            updated = cur.rowcount == 1
            ordering.reopened(cur, row["subscription_id"], [row["object_key"]])
            return updated

    def recover(
        self,
        subscription_id: uuid.UUID,
        *,
        since: datetime,
        until: datetime | None,
        now: datetime,
    ) -> int:
        """Requeue every failed delivery of the subscription created in [since, until) (queued
        behind its object's head like any other, for an ordered subscription)."""
        which = {"now": now, "sub": subscription_id, "since": since, "until": until}
        with self._db.cursor() as cur:
            cur.execute(
                "SELECT DISTINCT object_key FROM deliveries"
                " WHERE subscription_id = %(sub)s AND status = 'failed'"
                " AND created_at >= %(since)s AND (%(until)s::timestamptz IS NULL"
                " OR created_at < %(until)s)",
                which,
            )
            objects = [row["object_key"] for row in cur.fetchall()]
        recovered = 0
        # A transaction per 500 objects (their heads locked), like a consumed batch at most.
        for start in range(0, len(objects), 500):
            recovered += self._recover(objects[start : start + 500], which)
        return recovered

    def _recover(self, keys: list[str], which: dict[str, Any]) -> int:
        subscription_id = which["sub"]
        with self._db.cursor() as cur:
            ordering.reopen(cur, subscription_id, keys)
            cur.execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = %(now)s,"
                " round_start = attempt_count, claimed_until = NULL, claim_token = NULL, updated_at = %(now)s,"
                " waiting = true, parked = NOT (SELECT enabled FROM subscriptions s"
                " WHERE s.id = subscription_id)"
                " WHERE subscription_id = %(sub)s AND status = 'failed'"
                " AND created_at >= %(since)s AND (%(until)s::timestamptz IS NULL"
                " OR created_at < %(until)s) AND object_key = ANY(%(keys)s)",
                {**which, "keys": keys},
            )
            recovered = cur.rowcount
            ordering.reopened(cur, subscription_id, keys)
            return recovered
