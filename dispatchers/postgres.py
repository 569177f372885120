"""The dispatcher's store in PostgreSQL (psycopg 3 with a connection pool).

Holds subscriptions, each event once (so redelivery works after Kafka's retention), one delivery
per (event, subscription) (the uniqueness that absorbs redelivered Kafka records), and every
attempt. Claims are leases (`claimed_until`), taken with `FOR UPDATE SKIP LOCKED`, so several
dispatcher replicas share the work and the rows of a replica that died are claimed again once the
lease runs out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from dispatchers.matching import SubscriptionFilter
from dispatchers.outcomes import Outcome, Verdict
from herald_contracts import DomainEvent

_MIGRATION_LOCK = 0x4845524C  # "HERL": serialises concurrent `migrate` runs


class StoreError(Exception):
    """The database refused or could not be reached."""


@dataclass(frozen=True)
class Subscription:
    id: uuid.UUID
    url: str
    secrets: tuple[str, ...]
    filter: SubscriptionFilter
    ordered: bool
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class DueDelivery:
    id: uuid.UUID
    event_id: str
    subscription_id: uuid.UUID
    url: str
    secrets: tuple[str, ...]
    body: bytes
    attempt_number: int
    """The number the attempt about to be made will have (1 for the first)."""


@dataclass(frozen=True)
class AttemptRecord:
    delivery_id: uuid.UUID
    attempt_number: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    response_headers: dict[str, str] | None
    response_body: str | None
    error: str | None


class Store:
    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    @classmethod
    def open(cls, url: str, *, max_size: int = 4) -> Store:
        pool = ConnectionPool(url, min_size=1, max_size=max_size, open=False)
        try:
            pool.open(wait=True, timeout=10)
        except psycopg.Error as e:
            raise StoreError(f"cannot connect to the database: {e}") from e
        return cls(pool)

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        try:
            with (
                self._pool.connection() as conn,
                conn.transaction(),
                conn.cursor(row_factory=dict_row) as cur,
            ):
                yield cur
        except psycopg.OperationalError as e:
            raise StoreError(str(e)) from e

    # -- schema --------------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply the migrations not applied yet, in order; return their names."""
        files = sorted(
            (
                f
                for f in resources.files("dispatchers.migrations").iterdir()
                if f.name.endswith(".sql")
            ),
            key=lambda f: f.name,
        )
        applied: list[str] = []
        with self._cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur.execute("SELECT version FROM schema_migrations")
            done = {row["version"] for row in cur.fetchall()}
            for migration in files:
                version = migration.name.removesuffix(".sql")
                if version in done:
                    continue
                cur.execute(migration.read_text().encode())  # our own files, not user input
                cur.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                applied.append(version)
        return applied

    # -- subscriptions -------------------------------------------------------------------------

    def create_subscription(
        self, *, url: str, secrets: Sequence[str], filter: SubscriptionFilter, ordered: bool
    ) -> uuid.UUID:
        subscription_id = uuid.uuid4()
        with self._cursor() as cur:
            cur.execute(
                "INSERT INTO subscriptions (id, url, secrets, event_types, clusters, namespaces, names, ordered)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    subscription_id,
                    url,
                    list(secrets),
                    list(filter.event_types),
                    list(filter.clusters),
                    list(filter.namespaces),
                    list(filter.names),
                    ordered,
                ),
            )
        return subscription_id

    def subscriptions(self, *, enabled_only: bool = False) -> list[Subscription]:
        with self._cursor() as cur:
            cur.execute(
                "SELECT * FROM subscriptions WHERE enabled OR NOT %s ORDER BY created_at, id",
                (enabled_only,),
            )
            return [_subscription(row) for row in cur.fetchall()]

    # -- events and deliveries -----------------------------------------------------------------

    def record_events(
        self, batch: Sequence[tuple[DomainEvent, bytes, Sequence[uuid.UUID]]], *, now: datetime
    ) -> int:
        """Store each event once (with the exact bytes read, which are what is sent) and one
        pending delivery per subscription, in one transaction.

        Returns how many deliveries are new; repeats (the same event id and subscription) are absorbed.
        """
        created = 0
        with self._cursor() as cur:
            for event, body, subscription_ids in batch:
                if not subscription_ids:
                    continue
                cur.execute(
                    "INSERT INTO events (id, type, source, object_key, time, payload, body)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                    (
                        event.id,
                        event.type,
                        event.source,
                        event.key,
                        event.time,
                        Jsonb(event.to_cloudevent()),
                        body.decode(),
                    ),
                )
                for subscription_id in subscription_ids:
                    cur.execute(
                        "INSERT INTO deliveries (id, event_id, subscription_id, object_key, status, next_attempt_at)"
                        " VALUES (%s, %s, %s, %s, 'pending', %s)"
                        " ON CONFLICT (event_id, subscription_id) DO NOTHING",
                        (uuid.uuid4(), event.id, subscription_id, event.key, now),
                    )
                    created += cur.rowcount
        return created

    def claim_due(self, *, now: datetime, limit: int, lease_s: float) -> list[DueDelivery]:
        """Lease up to `limit` due deliveries; an ordered subscription's later events about an
        object wait while an earlier one about the same object is still open."""
        with self._cursor() as cur:
            cur.execute(
                """
                WITH due AS (
                    SELECT d.id FROM deliveries d
                    JOIN subscriptions s ON s.id = d.subscription_id
                    WHERE d.status IN ('pending', 'retrying')
                      AND d.next_attempt_at <= %(now)s
                      AND (d.claimed_until IS NULL OR d.claimed_until < %(now)s)
                      AND s.enabled
                      AND (NOT s.ordered OR NOT EXISTS (
                            SELECT 1 FROM deliveries e
                            WHERE e.subscription_id = d.subscription_id
                              AND e.object_key = d.object_key
                              AND e.seq < d.seq
                              AND e.status IN ('pending', 'retrying')))
                    ORDER BY d.next_attempt_at, d.seq
                    LIMIT %(limit)s
                    FOR UPDATE OF d SKIP LOCKED
                )
                UPDATE deliveries d SET claimed_until = %(until)s, updated_at = %(now)s
                FROM due, subscriptions s, events ev
                WHERE d.id = due.id AND s.id = d.subscription_id AND ev.id = d.event_id
                RETURNING d.id, d.event_id, d.subscription_id, d.attempt_count, s.url, s.secrets,
                          ev.body
                """,
                {"now": now, "limit": limit, "until": now + timedelta(seconds=lease_s)},
            )
            return [
                DueDelivery(
                    id=row["id"],
                    event_id=row["event_id"],
                    subscription_id=row["subscription_id"],
                    url=row["url"],
                    secrets=tuple(row["secrets"]),
                    body=row["body"].encode(),
                    attempt_number=row["attempt_count"] + 1,
                )
                for row in cur.fetchall()
            ]

    def record_attempt(self, attempt: AttemptRecord, outcome: Outcome, *, now: datetime) -> None:
        """Log the attempt and move the delivery on, in one transaction."""
        status = {
            Verdict.DELIVERED: "delivered",
            Verdict.RETRY: "retrying",
            Verdict.FAILED: "failed",
            Verdict.GONE: "failed",
        }[outcome.verdict]
        with self._cursor() as cur:
            cur.execute(
                "INSERT INTO attempts (delivery_id, attempt_number, started_at, duration_ms,"
                " status_code, response_headers, response_body, error)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    attempt.delivery_id,
                    attempt.attempt_number,
                    attempt.started_at,
                    attempt.duration_ms,
                    attempt.status_code,
                    Jsonb(attempt.response_headers)
                    if attempt.response_headers is not None
                    else None,
                    attempt.response_body,
                    attempt.error,
                ),
            )
            cur.execute(
                "UPDATE deliveries SET status = %s, attempt_count = %s, next_attempt_at = %s,"
                " claimed_until = NULL, updated_at = %s WHERE id = %s RETURNING subscription_id",
                (status, attempt.attempt_number, outcome.retry_at, now, attempt.delivery_id),
            )
            row = cur.fetchone()
            if outcome.verdict is Verdict.GONE and row is not None:
                cur.execute(
                    "UPDATE subscriptions SET enabled = false, updated_at = %s,"
                    " disabled_reason = 'the endpoint answered 410 Gone' WHERE id = %s",
                    (now, row["subscription_id"]),
                )

    def deliveries(
        self,
        *,
        subscription_id: uuid.UUID | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The delivery log, newest first, as plain rows for display."""
        with self._cursor() as cur:
            cur.execute(
                "SELECT id, event_id, subscription_id, object_key, status, attempt_count,"
                " next_attempt_at, created_at, updated_at FROM deliveries"
                " WHERE (%(sub)s::uuid IS NULL OR subscription_id = %(sub)s)"
                " AND (%(status)s::text IS NULL OR status = %(status)s)"
                " ORDER BY seq DESC LIMIT %(limit)s",
                {"sub": subscription_id, "status": status, "limit": limit},
            )
            return [_delivery_view(row) for row in cur.fetchall()]


def _subscription(row: dict[str, Any]) -> Subscription:
    return Subscription(
        id=row["id"],
        url=row["url"],
        secrets=tuple(row["secrets"]),
        filter=SubscriptionFilter(
            event_types=tuple(row["event_types"]),
            clusters=tuple(row["clusters"]),
            namespaces=tuple(row["namespaces"]),
            names=tuple(row["names"]),
        ),
        ordered=row["ordered"],
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _delivery_view(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, uuid.UUID | datetime) else v) for k, v in row.items()}
