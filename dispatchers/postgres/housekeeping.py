"""Housekeeping in Postgres: deleting what is past its retention (one dispatcher at a time), and
the gauges the metrics show."""

from __future__ import annotations

from datetime import datetime, timedelta

from dispatchers.postgres.database import Database

_CLEANUP_LOCK = 0x48455243  # "HERC": one clean-up at a time across dispatchers


class PgHousekeeping:
    def __init__(self, db: Database) -> None:
        self._db = db

    def clean_up(
        self,
        *,
        now: datetime,
        delivered_for: timedelta,
        failed_for: timedelta,
        batch: int,
    ) -> int | None:
        """Delete delivered deliveries older than `delivered_for` and failed ones older than
        `failed_for` (with their attempts, and events no delivery refers to any more), `batch` at a
        time, each batch its own short transaction. Only one dispatcher cleans at a time (an
        advisory lock); returns how many deliveries were deleted, or None if another one is at it."""
        deleted = 0
        with self._db.pool.connection() as conn:
            conn.autocommit = True
            locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (_CLEANUP_LOCK,)).fetchone()
            if not locked or not locked[0]:
                return None
            try:
                while True:
                    with conn.transaction():
                        rows = conn.execute(
                            """
                            WITH old AS (
                                SELECT id, event_id FROM deliveries
                                WHERE (status = 'delivered' AND updated_at < %(delivered)s)
                                   OR (status = 'failed' AND updated_at < %(failed)s)
                                LIMIT %(batch)s
                                FOR UPDATE SKIP LOCKED
                            ), gone_attempts AS (
                                DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM old)
                            )
                            DELETE FROM deliveries d USING old WHERE d.id = old.id
                            RETURNING d.event_id
                            """,
                            {
                                "delivered": now - delivered_for,
                                "failed": now - failed_for,
                                "batch": batch,
                            },
                        ).fetchall()
                        if rows:
                            conn.execute(
                                "DELETE FROM events e WHERE e.id = ANY(%s) AND NOT EXISTS"
                                " (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)",
                                (list({r[0] for r in rows}),),
                            )
                    deleted += len(rows)
                    if len(rows) < batch:
                        break
                # Events no subscription wanted (kept for `replay`), after the same retention.
                while True:
                    with conn.transaction():
                        cur = conn.execute(
                            "DELETE FROM events WHERE id IN (SELECT e.id FROM events e"
                            " WHERE e.received_at < %s AND NOT EXISTS"
                            " (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) LIMIT %s)",
                            (now - delivered_for, batch),
                        )
                    if cur.rowcount < batch:
                        return deleted
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_CLEANUP_LOCK,))

    def stats(self, *, now: datetime) -> dict[str, float]:
        """Gauges for the metrics: open deliveries by status, the oldest due one's age, and the
        disabled subscriptions."""
        with self._db.cursor() as cur:
            cur.execute(
                "SELECT"
                " count(*) FILTER (WHERE status = 'pending') AS pending,"
                " count(*) FILTER (WHERE status = 'retrying') AS retrying,"
                " min(next_attempt_at) FILTER (WHERE next_attempt_at <= %(now)s) AS oldest_due"
                " FROM deliveries WHERE status IN ('pending', 'retrying')",
                {"now": now},
            )
            row = cur.fetchone() or {}
            cur.execute("SELECT count(*) AS n FROM subscriptions WHERE NOT enabled")
            disabled = (cur.fetchone() or {"n": 0})["n"]
        oldest = row.get("oldest_due")
        return {
            "pending": float(row.get("pending") or 0),
            "retrying": float(row.get("retrying") or 0),
            "oldest_due_age_s": (now - oldest).total_seconds() if oldest else 0.0,
            "disabled_subscriptions": float(disabled),
        }
