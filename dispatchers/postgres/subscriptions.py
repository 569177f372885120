"""Subscriptions in Postgres: their filters, ordering and rate limit, and their signing secrets and
header values sealed with the keyring (`dispatchers.sealing`). Endpoint health (`failing_since`,
disabling) is kept by the attempts' recorder (`dispatchers.postgres.queue`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from dispatchers.matching import SubscriptionFilter
from dispatchers.model import Subscription
from dispatchers.postgres import ordering
from dispatchers.postgres.database import Database
from dispatchers.sealing import PREFIX as SEALED
from dispatchers.sealing import Unopened


class PgSubscriptions:
    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def sealing_key(self) -> str | None:
        """The id of the key new secrets are sealed with; None: stored as given."""
        return self._db.keyring.sealing_key

    def create(
        self,
        *,
        url: str,
        secrets: Sequence[str],
        filter: SubscriptionFilter,
        ordered: bool,
        rate_limit_per_s: float | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> uuid.UUID:
        subscription_id = uuid.uuid4()
        with self._db.cursor() as cur:
            cur.execute(
                "INSERT INTO subscriptions (id, url, secrets, event_types, clusters, namespaces,"
                " names, sources, subjects, ordered, rate_limit_per_s, headers)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    subscription_id,
                    url,
                    [self._db.keyring.seal(s, subscription=subscription_id) for s in secrets],
                    list(filter.event_types),
                    list(filter.clusters),
                    list(filter.namespaces),
                    list(filter.names),
                    list(filter.sources),
                    list(filter.subjects),
                    ordered,
                    rate_limit_per_s,
                    Jsonb(self._db.sealed_headers(headers, subscription_id)),
                ),
            )
        return subscription_id

    def _opened_headers(
        self, stored: dict[str, str], subscription: uuid.UUID
    ) -> tuple[tuple[str, str], ...]:
        return tuple(
            (n, self._db.keyring.open(v, subscription=subscription)) for n, v in stored.items()
        )

    def all(self, *, enabled_only: bool = False) -> list[Subscription]:
        with self._db.cursor() as cur:
            cur.execute(
                "SELECT * FROM subscriptions WHERE enabled OR NOT %s ORDER BY created_at, id",
                (enabled_only,),
            )
            return [self._db.subscription(row) for row in cur.fetchall()]

    def get(self, subscription_id: uuid.UUID) -> Subscription | None:
        with self._db.cursor() as cur:
            cur.execute("SELECT * FROM subscriptions WHERE id = %s", (subscription_id,))
            row = cur.fetchone()
            return self._db.subscription(row) if row is not None else None

    def set_enabled(
        self, subscription_id: uuid.UUID, *, enabled: bool, reason: str | None, now: datetime
    ) -> bool:
        """Enable (clearing the reason and the failure streak) or disable (with the reason). Its
        open deliveries are unparked (claimable again) or parked (out of the claims' way)."""
        with self._db.cursor() as cur:
            # Exclusive: nothing queues a delivery of it meanwhile (parked by a stale reading).
            ordering.lock_enabling(cur, subscription_id)
            # Its deliveries before its row, each in id order, as `record_attempts` locks them.
            cur.execute(
                "UPDATE deliveries SET parked = NOT %(enabled)s WHERE id IN ("
                " SELECT id FROM deliveries WHERE subscription_id = %(id)s"
                " AND status IN ('pending', 'retrying') AND parked = %(enabled)s"
                " ORDER BY id FOR UPDATE)",
                {"enabled": enabled, "id": subscription_id},
            )
            cur.execute(
                "UPDATE subscriptions SET enabled = %(enabled)s, updated_at = %(now)s,"
                " disabled_reason = CASE WHEN %(enabled)s THEN NULL ELSE %(reason)s END,"
                " disabled_at = CASE WHEN %(enabled)s THEN NULL ELSE %(now)s END,"
                " failing_since = CASE WHEN %(enabled)s THEN NULL ELSE failing_since END"
                " WHERE id = %(id)s",
                {"enabled": enabled, "reason": reason, "now": now, "id": subscription_id},
            )
            return cur.rowcount == 1

    def check_secrets(self) -> int:
        """Open every stored secret (current and retired); raise SealError naming the first that
        the keyring cannot open. Returns how many secrets are stored as given (not sealed)."""
        with self._db.cursor() as cur:
            cur.execute("SELECT id, secrets, retired_secrets, headers FROM subscriptions")
            unsealed = 0
            for row in cur.fetchall():
                for stored in (*row["secrets"], *row["retired_secrets"], *row["headers"].values()):
                    self._db.keyring.open(stored, subscription=row["id"])
                    unsealed += not stored.startswith(SEALED)
            return unsealed

    def unopened(self, *, now: datetime) -> dict[uuid.UUID, Unopened]:
        """The subscriptions whose secrets (those that sign at `now`) or header values do not
        open with the keyring, with why."""
        with self._db.cursor() as cur:
            cur.execute(
                "SELECT id, headers, secrets || CASE WHEN retired_until > %s"
                " THEN retired_secrets ELSE '{}' END AS secrets FROM subscriptions",
                (now,),
            )
            opened = {row["id"]: self._db.opened(row["id"], row) for row in cur.fetchall()}
        return {sub: o for sub, o in opened.items() if isinstance(o, Unopened)}

    def reseal(self, *, only: uuid.UUID | None = None) -> int:
        """Seal every stored secret (or `only` that subscription's) with the keyring's sealing key
        (those stored as given, or sealed with an older key); return how many subscriptions
        changed. SealError, and nothing changed, if one does not open."""
        changed = 0
        with self._db.cursor() as cur:
            cur.execute(
                "SELECT id, secrets, retired_secrets, headers FROM subscriptions"
                " WHERE %(only)s::uuid IS NULL OR id = %(only)s ORDER BY id FOR UPDATE",
                {"only": only},
            )
            for row in cur.fetchall():
                columns: dict[str, Any] = {}
                if not all(self._db.keyring.is_current(v) for v in row["headers"].values()):
                    columns["headers"] = Jsonb(
                        self._db.sealed_headers(
                            self._opened_headers(row["headers"], row["id"]), row["id"]
                        )
                    )
                for column in ("secrets", "retired_secrets"):
                    stored = row[column]
                    if all(self._db.keyring.is_current(s) for s in stored):
                        continue
                    columns[column] = [
                        self._db.keyring.seal(
                            self._db.keyring.open(s, subscription=row["id"]), subscription=row["id"]
                        )
                        for s in stored
                    ]
                if columns:
                    cur.execute(
                        "UPDATE subscriptions SET"
                        " secrets = COALESCE(%(secrets)s::text[], secrets),"
                        " retired_secrets = COALESCE(%(retired)s::text[], retired_secrets),"
                        " headers = COALESCE(%(headers)s::jsonb, headers)"
                        " WHERE id = %(id)s",
                        {
                            "secrets": columns.get("secrets"),
                            "retired": columns.get("retired_secrets"),
                            "headers": columns.get("headers"),
                            "id": row["id"],
                        },
                    )
                    changed += 1
        return changed

    def update(
        self,
        subscription_id: uuid.UUID,
        *,
        now: datetime,
        url: str | None = None,
        event_types: Sequence[str] | None = None,
        clusters: Sequence[str] | None = None,
        namespaces: Sequence[str] | None = None,
        names: Sequence[str] | None = None,
        sources: Sequence[str] | None = None,
        subjects: Sequence[str] | None = None,
        ordered: bool | None = None,
        rate_limit_per_s: float | None = None,
        unlimited: bool = False,
        headers: Sequence[tuple[str, str]] | None = None,
    ) -> bool:
        """Change what is given (None: keep; `unlimited` lifts the rate limit). A new URL is a
        new endpoint: its failure streak starts afresh. Deliveries not yet sent go to the new URL
        and follow the new ordering and rate limit; the filters apply to the events read from now
        on."""

        def listed(values: Sequence[str] | None) -> list[str] | None:
            return None if values is None else list(values)

        with self._db.cursor() as cur:
            if ordered is not None:
                # Nothing queues a delivery of it meanwhile by a stale reading of `ordered`, and
                # its open deliveries are locked in id order (as `record_attempts` locks them).
                ordering.lock_enabling(cur, subscription_id)
                cur.execute(
                    "SELECT id FROM deliveries WHERE subscription_id = %s"
                    " AND status IN ('pending', 'retrying') ORDER BY id FOR UPDATE",
                    (subscription_id,),
                )
            if ordered is False:  # nothing waits behind an object's head any more
                cur.execute(
                    "UPDATE deliveries SET waiting = false WHERE subscription_id = %s"
                    " AND status IN ('pending', 'retrying') AND waiting",
                    (subscription_id,),
                )
            elif ordered:  # each object's open deliveries after its first wait behind it
                cur.execute(
                    "UPDATE deliveries d SET waiting = true FROM ("
                    " SELECT id, row_number() OVER (PARTITION BY object_key ORDER BY seq) AS n"
                    " FROM deliveries WHERE subscription_id = %s"
                    " AND status IN ('pending', 'retrying')) w"
                    " WHERE d.id = w.id AND w.n > 1 AND NOT d.waiting",
                    (subscription_id,),
                )
            cur.execute(
                "UPDATE subscriptions SET"
                " failing_since = CASE WHEN %(url)s::text IS DISTINCT FROM NULL"
                "   AND %(url)s::text <> url THEN NULL ELSE failing_since END,"
                " url = COALESCE(%(url)s::text, url),"
                " event_types = COALESCE(%(event_types)s::text[], event_types),"
                " clusters = COALESCE(%(clusters)s::text[], clusters),"
                " namespaces = COALESCE(%(namespaces)s::text[], namespaces),"
                " names = COALESCE(%(names)s::text[], names),"
                " sources = COALESCE(%(sources)s::text[], sources),"
                " subjects = COALESCE(%(subjects)s::text[], subjects),"
                " ordered = COALESCE(%(ordered)s::boolean, ordered),"
                " rate_limit_per_s = CASE WHEN %(unlimited)s THEN NULL"
                "   ELSE COALESCE(%(rate)s::float8, rate_limit_per_s) END,"
                " rate_tokens = CASE WHEN %(unlimited)s OR %(rate)s::float8 IS NOT NULL"
                "   THEN NULL ELSE rate_tokens END,"
                " headers = COALESCE(%(headers)s::jsonb, headers),"
                " updated_at = %(now)s"
                " WHERE id = %(id)s",
                {
                    "url": url,
                    "event_types": listed(event_types),
                    "clusters": listed(clusters),
                    "namespaces": listed(namespaces),
                    "names": listed(names),
                    "sources": listed(sources),
                    "subjects": listed(subjects),
                    "ordered": ordered,
                    "rate": rate_limit_per_s,
                    "unlimited": unlimited,
                    "headers": (
                        None
                        if headers is None
                        else Jsonb(self._db.sealed_headers(headers, subscription_id))
                    ),
                    "now": now,
                    "id": subscription_id,
                },
            )
            return cur.rowcount == 1

    def rotate_secret(
        self, subscription_id: uuid.UUID, secret: str, *, now: datetime, grace: timedelta
    ) -> bool:
        """Sign with `secret` from now on; the current secrets keep signing alongside until the
        grace period is over (then they are dropped)."""
        with self._db.cursor() as cur:
            cur.execute(
                "UPDATE subscriptions SET retired_secrets = secrets, secrets = ARRAY[%s],"
                " retired_until = %s, updated_at = %s WHERE id = %s",
                (
                    self._db.keyring.seal(secret, subscription=subscription_id),
                    now + grace,
                    now,
                    subscription_id,
                ),
            )
            return cur.rowcount == 1
