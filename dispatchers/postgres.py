"""The dispatcher's store in PostgreSQL (psycopg 3 with a connection pool).

Holds subscriptions, each event once (so redelivery works after Kafka's retention), one delivery
per (event, subscription) (the uniqueness that absorbs redelivered Kafka records), and every
attempt. Claims are leases (`claimed_until`), taken with `FOR UPDATE SKIP LOCKED`, so several
dispatcher replicas share the work and the rows of a replica that died are claimed again once the
lease runs out.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from dispatchers.matching import SubscriptionFilter, matches
from dispatchers.outcomes import Outcome, Verdict
from dispatchers.sealing import PREFIX as SEALED
from dispatchers.sealing import Keyring, Opened, Unopened
from dispatchers.storable import storable_json, storable_text
from dispatchers.throttling import Bucket
from herald_contracts import CloudEvent, ContractError, DomainEvent, decode_cloudevent

log = logging.getLogger(__name__)

_MIGRATION_LOCK = 0x4845524C  # "HERL": serialises concurrent `migrate` runs
_CLEANUP_LOCK = 0x48455243  # "HERC": one clean-up at a time across dispatchers
_STATUS = {
    Verdict.DELIVERED: "delivered",
    Verdict.RETRY: "retrying",
    Verdict.FAILED: "failed",
    Verdict.GONE: "failed",
    Verdict.REFUSED: "failed",
}
_OPEN = ("pending", "retrying")


# Which deliveries are due: open, not parked (their subscription disabled), not waiting (an ordered
# subscription's later event about an object while an earlier one is open), their time come, not
# leased. Read through the partial indexes of migration 0009, which hold only what a claim could
# take, so a claim costs the same whatever backlog of parked or waiting deliveries there is.
_DUE = """
    d.status IN ('pending', 'retrying') AND NOT d.parked AND NOT d.waiting
    AND d.next_attempt_at <= %(now)s
    AND (d.claimed_until IS NULL OR d.claimed_until < %(now)s)
"""
# What a claim opens to sign: the secrets (the retired ones too, in their grace period) and headers.
_SIGNING = """
    s.headers, s.secrets || CASE WHEN s.retired_until > %(now)s
                                 THEN s.retired_secrets ELSE '{}' END AS secrets
"""
# Due deliveries of subscriptions without a rate limit, oldest due first.
# Read in `deliveries_claimable`'s order, the subscription looked up per candidate (joined, the
# planner may instead read a subscription's every delivery, waiting ones included, and sort them).
_DUE_UNTHROTTLED = f"""
    SELECT c.id, c.subscription_id, {_SIGNING} FROM (
        SELECT d.id, d.subscription_id, d.next_attempt_at, d.seq FROM deliveries d
        WHERE {_DUE}
          AND NOT (d.subscription_id = ANY(%(held)s))
          AND (SELECT s.enabled AND s.rate_limit_per_s IS NULL FROM subscriptions s
               WHERE s.id = d.subscription_id)
        ORDER BY d.next_attempt_at, d.seq
        LIMIT %(limit)s
        FOR UPDATE OF d SKIP LOCKED
    ) c
    JOIN subscriptions s ON s.id = c.subscription_id
    ORDER BY c.next_attempt_at, c.seq
"""  # noqa: S608 - built from constants only
# Due deliveries of rate-limited subscriptions: at most `n` of each (its whole tokens), read from
# `deliveries_claimable_by_subscription` (the subscription as a range: see `_DUE_BUCKETS`).
_DUE_THROTTLED = f"""
    SELECT c.id, c.subscription_id, c.headers, c.secrets
    FROM unnest(%(subs)s::uuid[], %(n)s::int[]) AS a(sub, n)
    CROSS JOIN LATERAL (
        SELECT d.id, d.subscription_id, d.next_attempt_at, d.seq, {_SIGNING} FROM deliveries d
        JOIN subscriptions s ON s.id = d.subscription_id
        WHERE d.subscription_id >= a.sub AND d.subscription_id <= a.sub AND {_DUE}
        ORDER BY d.subscription_id, d.next_attempt_at, d.seq
        LIMIT a.n
        FOR UPDATE OF d SKIP LOCKED
    ) c
    ORDER BY c.next_attempt_at, c.seq
    LIMIT %(limit)s
"""  # noqa: S608 - built from constants only
# The rate-limited subscriptions with a delivery due now (locked, in id order): an idle one's row
# is neither locked nor written by a claim.
_DUE_BUCKETS = f"""
    SELECT s.id, s.rate_limit_per_s, s.rate_tokens, s.rate_refilled_at FROM subscriptions s
    WHERE s.rate_limit_per_s IS NOT NULL AND s.enabled AND NOT (s.id = ANY(%(held)s))
      -- A probe of `deliveries_claimable_by_subscription` per limited subscription: a scalar
      -- subquery (EXISTS would become a semi-join reading every due delivery), in that index's
      -- order, the subscription as a range (as an equality the planner drops it from the order,
      -- and may then walk the oldest due deliveries of every subscription instead).
      AND COALESCE((SELECT true FROM deliveries d
                    WHERE d.subscription_id >= s.id AND d.subscription_id <= s.id AND {_DUE}
                    ORDER BY d.subscription_id, d.next_attempt_at, d.seq LIMIT 1), false)
    ORDER BY s.id
    FOR NO KEY UPDATE OF s
"""  # noqa: S608 - built from constants only
# Each (subscription, object)'s head: its first open delivery stops waiting. Read through
# `deliveries_waiting` (an object with nothing waiting costs one probe of it), then, only for an
# object with one waiting, `deliveries_heads` (is an earlier one open and not waiting?): never the
# finished deliveries' dead index entries, nor the deliveries behind the first waiting one.
_DUE_PROMOTE = """
    UPDATE deliveries d SET waiting = false
    FROM unnest(%(subs)s::uuid[], %(keys)s::text[]) AS p(sub, key)
    CROSS JOIN LATERAL (
        SELECT e.id, e.seq FROM deliveries e
        WHERE e.subscription_id = p.sub AND e.object_key = p.key
          AND e.status IN ('pending', 'retrying') AND e.waiting
        ORDER BY e.seq LIMIT 1
    ) h
    WHERE d.id = h.id AND d.waiting
      AND (SELECT true FROM deliveries f
           WHERE f.subscription_id = p.sub AND f.object_key = p.key
             AND f.status IN ('pending', 'retrying') AND NOT f.waiting AND f.seq < h.seq
           LIMIT 1) IS NULL
"""
# After an earlier delivery was opened again (redeliver, recover): the open deliveries behind each
# head that are not waiting wait again (read through `deliveries_heads`: at most a few).
_DUE_DEMOTE = """
    UPDATE deliveries d SET waiting = true
    FROM unnest(%(subs)s::uuid[], %(keys)s::text[]) AS p(sub, key)
    CROSS JOIN LATERAL (
        SELECT e.seq FROM deliveries e
        WHERE e.subscription_id = p.sub AND e.object_key = p.key
          AND e.status IN ('pending', 'retrying')
        ORDER BY e.seq LIMIT 1
    ) h
    WHERE d.subscription_id = p.sub AND d.object_key = p.key
      AND d.status IN ('pending', 'retrying') AND NOT d.waiting AND d.seq > h.seq
"""
# Before queueing deliveries behind an object's head (or reopening an earlier one), the heads are
# row-locked, in id order (as `record_attempts` locks the deliveries it records): a head cannot
# finish unseen by a delivery queued behind it meanwhile (whichever commits second sees the other's
# rows and moves the head on). Rows, not advisory locks: a batch may name thousands of objects.
_DUE_LOCK_HEADS = """
    SELECT id FROM deliveries WHERE id IN (
        SELECT h.id FROM unnest(%(subs)s::uuid[], %(keys)s::text[]) AS p(sub, key)
        CROSS JOIN LATERAL (
            SELECT e.id FROM deliveries e
            WHERE e.subscription_id = p.sub AND e.object_key = p.key
              AND e.status IN ('pending', 'retrying')
            ORDER BY e.seq LIMIT 1
        ) h)
    ORDER BY id FOR UPDATE
"""
# Per subscription, shared by what queues deliveries, exclusive for `set_enabled`: no delivery is
# queued parked after its subscription was enabled (or the other way round).
_DUE_LOCK_SUBSCRIPTIONS = (
    "SELECT count(pg_advisory_xact_lock_shared(%s::int, k)) FROM unnest(%s::int[]) AS k"
)
_ENABLING_LOCK = 0x48455245  # "HERE": the class of the per-subscription locks above


def _subscription_keys(subscriptions: Iterable[uuid.UUID]) -> list[int]:
    return sorted({int.from_bytes(sub.bytes[:4], signed=True) for sub in subscriptions})


class StoreError(Exception):
    """The database could not be reached (or has no Herald tables): waited for, never a reason to
    set a record aside."""


class ValuesRefusedError(Exception):
    """The database answered, and refused the values of a statement (a data exception, SQLSTATE
    class 22, or a limit, class 54: an index row too large): sending the same values again cannot
    succeed. Not an outage: the database is reachable."""


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
    rate_limit_per_s: float | None = None
    """Messages per second at most (across every replica); None: unlimited."""
    headers: tuple[tuple[str, str], ...] = ()
    """Added to every webhook (opened)."""
    unopened: Unopened | None = None
    """Why its secrets or header values do not open with this keyring (then `secrets` and
    `headers` are empty: nothing is half-opened); its deliveries wait meanwhile."""


@dataclass(frozen=True)
class StoredBatch:
    created: int
    """Deliveries new in this batch."""
    taken: dict[int, str]
    """The batch's rows (by index) whose id is stored already as another source's event, with
    that source: nothing was stored for them."""


@dataclass(frozen=True)
class DueDelivery:
    id: uuid.UUID
    event_id: str
    subscription_id: uuid.UUID
    url: str
    secrets: tuple[str, ...]
    body: bytes
    attempt_number: int
    """The number the attempt about to be made will have (1 for the first), unless another worker
    records one first (after this claim's lease ran out)."""
    round_attempt: int
    """Its number within the current round of tries (a redelivery starts a new round): the index
    into the retry schedule."""
    claim: uuid.UUID
    """The token of the claim this delivery was leased with."""
    headers: tuple[tuple[str, str], ...] = ()
    """The subscription's own headers (opened)."""
    event_time: datetime | None = None
    """When the event was observed in the cluster (for the end-to-end latency)."""
    first_delivery: bool = False
    """Whether a success now is the event's first delivery to this subscription from consumption
    (its first round of tries, retries included): not a replay, redelivery or recovery. Only
    those count in the end-to-end latency."""


@dataclass(frozen=True)
class Claimed:
    deliveries: list[DueDelivery]
    unopened: dict[uuid.UUID, Unopened]
    """Subscriptions whose due deliveries were left unclaimed, as their secrets do not open."""


@dataclass(frozen=True)
class Recorded:
    disabled: dict[uuid.UUID, str]
    """The subscriptions these attempts disabled, with the reasons."""
    late: int
    """Attempts whose claim had passed to another worker (their lease ran out before)."""


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt made under a claim. Its number is given when it is recorded (the next one for
    its delivery), so attempts recorded late, after the claim passed to another worker, are kept
    too."""

    delivery_id: uuid.UUID
    claim: uuid.UUID
    started_at: datetime
    duration_ms: int
    status_code: int | None
    response_headers: dict[str, str] | None
    response_body: str | None
    error: str | None


class Store:
    def __init__(self, pool: ConnectionPool, *, keyring: Keyring | None = None) -> None:
        self._pool = pool
        self._keyring = keyring or Keyring()
        self.last_error: str | None = None
        """Why the last statement failed to reach the database; None once one succeeds again."""

    @classmethod
    def open(
        cls, url: str, *, max_size: int = 4, keyring: Keyring | None = None, wait: bool = True
    ) -> Store:
        """A store on a pool of connections to `url`; with `wait`, StoreError unless the database
        answers within 10 s (a command), else the pool keeps connecting in the background and each
        statement waits for it (the service, which waits for its database with backoff)."""
        # A statement waits at most 10 s for a connection: longer only while the database is away,
        # and then the caller's backoff (and the readiness check) should know soon.
        pool = ConnectionPool(url, min_size=1, max_size=max_size, open=False, timeout=10)
        try:
            pool.open(wait=wait, timeout=10)
        except psycopg.Error as e:
            raise StoreError(f"cannot connect to the database: {e}") from e
        return cls(pool, keyring=keyring)

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
            self.last_error = None
        except psycopg.errors.UndefinedTable as e:
            self.last_error = None  # it answered: not unreachable
            raise StoreError(
                f"{e}; the database has no Herald tables yet: run `python -m dispatchers migrate`"
            ) from e
        except (psycopg.DataError, psycopg.errors.ProgramLimitExceeded, UnicodeError) as e:
            # Checked before OperationalError, which ProgramLimitExceeded is a kind of: a value too
            # large for an index would otherwise pass for an outage and be retried for ever.
            # (psycopg raises DataError and UnicodeEncodeError itself, before sending, for a NUL
            # or an unpaired surrogate in a text parameter.)
            self.last_error = None
            raise ValuesRefusedError(str(e).split("\n", 1)[0]) from e  # no DETAIL, HINT lines
        except psycopg.OperationalError as e:
            self.last_error = str(e)
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
        with self._cursor() as cur:
            cur.execute(
                "INSERT INTO subscriptions (id, url, secrets, event_types, clusters, namespaces,"
                " names, sources, subjects, ordered, rate_limit_per_s, headers)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    subscription_id,
                    url,
                    [self._keyring.seal(s, subscription=subscription_id) for s in secrets],
                    list(filter.event_types),
                    list(filter.clusters),
                    list(filter.namespaces),
                    list(filter.names),
                    list(filter.sources),
                    list(filter.subjects),
                    ordered,
                    rate_limit_per_s,
                    Jsonb(self._sealed_headers(headers, subscription_id)),
                ),
            )
        return subscription_id

    def _sealed_headers(
        self, headers: Sequence[tuple[str, str]], subscription: uuid.UUID
    ) -> dict[str, str]:
        return {n: self._keyring.seal(v, subscription=subscription) for n, v in headers}

    def _opened_headers(
        self, stored: dict[str, str], subscription: uuid.UUID
    ) -> tuple[tuple[str, str], ...]:
        return tuple(
            (n, self._keyring.open(v, subscription=subscription)) for n, v in stored.items()
        )

    def subscriptions(self, *, enabled_only: bool = False) -> list[Subscription]:
        with self._cursor() as cur:
            cur.execute(
                "SELECT * FROM subscriptions WHERE enabled OR NOT %s ORDER BY created_at, id",
                (enabled_only,),
            )
            return [self._subscription(row) for row in cur.fetchall()]

    def subscription(self, subscription_id: uuid.UUID) -> Subscription | None:
        with self._cursor() as cur:
            cur.execute("SELECT * FROM subscriptions WHERE id = %s", (subscription_id,))
            row = cur.fetchone()
            return self._subscription(row) if row is not None else None

    def set_enabled(
        self, subscription_id: uuid.UUID, *, enabled: bool, reason: str | None, now: datetime
    ) -> bool:
        """Enable (clearing the reason and the failure streak) or disable (with the reason). Its
        open deliveries are unparked (claimable again) or parked (out of the claims' way)."""
        with self._cursor() as cur:
            # Exclusive: nothing queues a delivery of it meanwhile (parked by a stale reading).
            cur.execute(
                "SELECT pg_advisory_xact_lock(%s::int, %s::int)",
                (_ENABLING_LOCK, _subscription_keys([subscription_id])[0]),
            )
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

    @property
    def sealing_key(self) -> str | None:
        """The id of the key new secrets are sealed with; None: stored as given."""
        return self._keyring.sealing_key

    def _subscription(self, row: dict[str, Any]) -> Subscription:
        return _subscription(row, self._keyring)

    def check_secrets(self) -> int:
        """Open every stored secret (current and retired); raise SealError naming the first that
        the keyring cannot open. Returns how many secrets are stored as given (not sealed)."""
        with self._cursor() as cur:
            cur.execute("SELECT id, secrets, retired_secrets, headers FROM subscriptions")
            unsealed = 0
            for row in cur.fetchall():
                for stored in (*row["secrets"], *row["retired_secrets"], *row["headers"].values()):
                    self._keyring.open(stored, subscription=row["id"])
                    unsealed += not stored.startswith(SEALED)
            return unsealed

    def unopened_subscriptions(self, *, now: datetime) -> dict[uuid.UUID, Unopened]:
        """The subscriptions whose secrets (those that sign at `now`) or header values do not
        open with the keyring, with why."""
        with self._cursor() as cur:
            cur.execute(
                "SELECT id, headers, secrets || CASE WHEN retired_until > %s"
                " THEN retired_secrets ELSE '{}' END AS secrets FROM subscriptions",
                (now,),
            )
            opened = {row["id"]: self._opened(row["id"], row) for row in cur.fetchall()}
        return {sub: o for sub, o in opened.items() if isinstance(o, Unopened)}

    def _opened(self, subscription: uuid.UUID, row: dict[str, Any]) -> Opened | Unopened:
        """The secrets and headers of a row that has them (`secrets` those that sign now)."""
        return self._keyring.open_subscription(
            subscription, secrets=row["secrets"], headers=row["headers"]
        )

    def reseal(self, *, only: uuid.UUID | None = None) -> int:
        """Seal every stored secret (or `only` that subscription's) with the keyring's sealing key
        (those stored as given, or sealed with an older key); return how many subscriptions
        changed. SealError, and nothing changed, if one does not open."""
        changed = 0
        with self._cursor() as cur:
            cur.execute(
                "SELECT id, secrets, retired_secrets, headers FROM subscriptions"
                " WHERE %(only)s::uuid IS NULL OR id = %(only)s ORDER BY id FOR UPDATE",
                {"only": only},
            )
            for row in cur.fetchall():
                columns: dict[str, Any] = {}
                if not all(self._keyring.is_current(v) for v in row["headers"].values()):
                    columns["headers"] = Jsonb(
                        self._sealed_headers(
                            self._opened_headers(row["headers"], row["id"]), row["id"]
                        )
                    )
                for column in ("secrets", "retired_secrets"):
                    stored = row[column]
                    if all(self._keyring.is_current(s) for s in stored):
                        continue
                    columns[column] = [
                        self._keyring.seal(
                            self._keyring.open(s, subscription=row["id"]), subscription=row["id"]
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

    def update_subscription(
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

        with self._cursor() as cur:
            if ordered is False:  # nothing waits behind an object's head any more
                cur.execute(
                    "UPDATE deliveries SET waiting = false WHERE id IN ("
                    " SELECT id FROM deliveries WHERE subscription_id = %s"
                    " AND status IN ('pending', 'retrying') AND waiting ORDER BY id FOR UPDATE)",
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
                        else Jsonb(self._sealed_headers(headers, subscription_id))
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
        with self._cursor() as cur:
            cur.execute(
                "UPDATE subscriptions SET retired_secrets = secrets, secrets = ARRAY[%s],"
                " retired_until = %s, updated_at = %s WHERE id = %s",
                (
                    self._keyring.seal(secret, subscription=subscription_id),
                    now + grace,
                    now,
                    subscription_id,
                ),
            )
            return cur.rowcount == 1

    # -- events and deliveries -----------------------------------------------------------------

    def record_events(
        self,
        batch: Sequence[tuple[CloudEvent | DomainEvent, bytes, Sequence[uuid.UUID]]],
        *,
        now: datetime,
    ) -> int:
        """`record_batch`, returning how many deliveries are new."""
        return self.record_batch(batch, now=now).created

    def record_batch(
        self,
        batch: Sequence[tuple[CloudEvent | DomainEvent, bytes, Sequence[uuid.UUID]]],
        *,
        now: datetime,
    ) -> StoredBatch:
        """Store each event once (the exact UTF-8 bytes read, as text: what is sent; also events no
        subscription wants now, for `replay`) and one pending delivery per subscription, in one
        transaction.

        Repeats (the same event id and subscription) are absorbed. An event is known by its id
        alone, so an event whose id is stored already as another source's (two producers using
        the same ids) gets nothing stored and is returned in `taken`: its deliveries would send
        the other event's body. Raises ValuesRefusedError if the database refuses a value of the
        batch (nothing is stored).
        """
        rows = [(_cloudevent(event, body), body, subs) for event, body, subs in batch]
        if not rows:
            return StoredBatch(0, {})
        with self._cursor() as cur:
            cur.executemany(
                "INSERT INTO events (id, type, source, object_key, time, payload, body)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                [
                    (
                        event.id,
                        event.type,
                        storable_text(event.source),
                        event.key,
                        event.time or now,  # a producer may leave `time` out: then, when read
                        Jsonb(storable_json(dict(event.attributes))),
                        body.decode(),
                    )
                    for event, body, _ in rows
                ],
            )
            # Read after the insert, in the same transaction: a concurrent insert of the same id
            # has committed by now (the insert waited for it), so this sees whose id it is.
            cur.execute(
                "SELECT id, source FROM events WHERE id = ANY(%s)", ([e.id for e, _, _ in rows],)
            )
            sources = {row["id"]: row["source"] for row in cur.fetchall()}
            taken = {
                i: sources[event.id]
                for i, (event, _, _) in enumerate(rows)
                if sources.get(event.id, storable_text(event.source)) != storable_text(event.source)
            }
            deliveries = [
                (e, sub) for i, (e, _, subs) in enumerate(rows) if i not in taken for sub in subs
            ]
            if not deliveries:
                return StoredBatch(0, taken)
            ordered = self._queueing(cur, {sub for _, sub in deliveries})
            self._lock_heads(cur, {(sub, e.key) for e, sub in deliveries if sub in ordered})
            # One statement for the batch's deliveries, in topic order (their `seq` orders one
            # object's deliveries); RETURNING gives the new ones only. An ordered subscription's
            # wait behind its object's open delivery, or the batch's earlier one (if that was a
            # repeat of a finished one, the next becomes the head, below); a disabled
            # subscription's are parked.
            cur.execute(
                "INSERT INTO deliveries (id, event_id, subscription_id, object_key, status,"
                " next_attempt_at, parked, waiting)"
                " SELECT t.id, t.event_id, t.subscription_id, t.object_key, 'pending', %(now)s,"
                " NOT COALESCE(s.enabled, true), t.ordered AND ("
                "   row_number() OVER (PARTITION BY t.subscription_id, t.object_key"
                "                      ORDER BY t.ord) > 1"
                # A probe per row (a scalar subquery: an EXISTS could be run hashed, over every
                # open delivery).
                "   OR (SELECT true FROM deliveries e WHERE e.subscription_id = t.subscription_id"
                "       AND e.object_key = t.object_key"
                "       AND e.status IN ('pending', 'retrying') LIMIT 1) IS NOT NULL)"
                " FROM unnest(%(ids)s::uuid[], %(events)s::text[], %(subs)s::uuid[],"
                " %(keys)s::text[], %(waiting)s::bool[]) WITH ORDINALITY AS t(id, event_id,"
                " subscription_id, object_key, ordered, ord)"
                " LEFT JOIN subscriptions s ON s.id = t.subscription_id"
                " ORDER BY t.ord"
                " ON CONFLICT (event_id, subscription_id) DO NOTHING"
                " RETURNING id, subscription_id, object_key, waiting",
                {
                    "now": now,
                    "ids": [uuid.uuid4() for _ in deliveries],
                    "events": [e.id for e, _ in deliveries],
                    "subs": [sub for _, sub in deliveries],
                    "keys": [e.key for e, _ in deliveries],
                    "waiting": [sub in ordered for _, sub in deliveries],
                },
            )
            created = cur.fetchall()
            self._promote(
                cur, {(r["subscription_id"], r["object_key"]) for r in created if r["waiting"]}
            )
            return StoredBatch(len(created), taken)

    def _queueing(
        self, cur: psycopg.Cursor[dict[str, Any]], subscriptions: Iterable[uuid.UUID]
    ) -> set[uuid.UUID]:
        """Before queueing deliveries of these subscriptions: hold off their enabling and
        disabling (`set_enabled`) until the transaction ends; return the ordered ones."""
        subs = sorted(set(subscriptions))
        cur.execute(_DUE_LOCK_SUBSCRIPTIONS, (_ENABLING_LOCK, _subscription_keys(subs)))
        cur.execute("SELECT id FROM subscriptions WHERE id = ANY(%s) AND ordered", (subs,))
        return {row["id"] for row in cur.fetchall()}

    def _lock_heads(
        self, cur: psycopg.Cursor[dict[str, Any]], pairs: Iterable[tuple[uuid.UUID, str]]
    ) -> None:
        listed = sorted(pairs)
        if listed:
            cur.execute(
                _DUE_LOCK_HEADS,
                {"subs": [sub for sub, _ in listed], "keys": [key for _, key in listed]},
            )

    def _promote(
        self, cur: psycopg.Cursor[dict[str, Any]], pairs: Iterable[tuple[uuid.UUID, str]]
    ) -> None:
        """Make each (subscription, object)'s first open delivery its head (claimable). The
        caller holds the heads' locks (`_lock_heads`), or the finished heads'."""
        listed = sorted(pairs)
        if listed:
            # Its generic plan (per-pair index probes) always: with one object's deliveries a
            # large share of the table, the planner would otherwise plan it anew each time.
            cur.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            cur.execute(
                _DUE_PROMOTE,
                {"subs": [sub for sub, _ in listed], "keys": [key for _, key in listed]},
            )
            cur.execute("RESET plan_cache_mode")

    def replay(
        self,
        subscription: Subscription,
        *,
        since: datetime,
        until: datetime | None,
        now: datetime,
        page: int = 500,
    ) -> int:
        """Queue for `subscription` every stored event observed in [since, until) that its filters
        match and that it has no delivery of yet, oldest first; return how many. A page of events
        per transaction."""
        queued = 0
        after: tuple[datetime, str] = (since, "")
        while True:
            with self._cursor() as cur:
                cur.execute(
                    "SELECT id, object_key, time, body FROM events"
                    " WHERE (time, id) > (%(time)s, %(id)s)"
                    " AND (%(until)s::timestamptz IS NULL OR time < %(until)s)"
                    " ORDER BY time, id LIMIT %(page)s",
                    {"time": after[0], "id": after[1], "until": until, "page": page},
                )
                rows = cur.fetchall()
                if not rows:
                    return queued
                after = (rows[-1]["time"], rows[-1]["id"])
                wanted = [r for r in rows if _matches(subscription, r)]
                if wanted:
                    # Queued like consumed ones (parked, waiting behind their object's head), and
                    # marked replayed (not first deliveries, for the end-to-end latency).
                    ordered = bool(self._queueing(cur, [subscription.id]))
                    if ordered:
                        self._lock_heads(cur, {(subscription.id, r["object_key"]) for r in wanted})
                    cur.execute(
                        "INSERT INTO deliveries (id, event_id, subscription_id, object_key, status,"
                        " next_attempt_at, parked, waiting, replayed)"
                        " SELECT t.id, t.event_id, %(sub)s, t.object_key, 'pending', %(now)s,"
                        " NOT COALESCE(s.enabled, true), %(ordered)s, true"
                        " FROM unnest(%(ids)s::uuid[], %(events)s::text[], %(keys)s::text[])"
                        " WITH ORDINALITY AS t(id, event_id, object_key, ord)"
                        " LEFT JOIN subscriptions s ON s.id = %(sub)s ORDER BY t.ord"
                        " ON CONFLICT (event_id, subscription_id) DO NOTHING"
                        " RETURNING id, object_key",
                        {
                            "sub": subscription.id,
                            "now": now,
                            "ordered": ordered,
                            "ids": [uuid.uuid4() for _ in wanted],
                            "events": [r["id"] for r in wanted],
                            "keys": [r["object_key"] for r in wanted],
                        },
                    )
                    created = cur.fetchall()
                    if ordered:
                        self._promote(cur, {(subscription.id, r["object_key"]) for r in created})
                    queued += len(created)
            if len(rows) < page:
                return queued

    def claim_due(
        self,
        *,
        now: datetime,
        limit: int,
        lease_s: float,
        held: Sequence[uuid.UUID] = (),
    ) -> list[DueDelivery]:
        """The deliveries `claim` leases."""
        return self.claim(now=now, limit=limit, lease_s=lease_s, held=held).deliveries

    def claim(
        self,
        *,
        now: datetime,
        limit: int,
        lease_s: float,
        held: Sequence[uuid.UUID] = (),
    ) -> Claimed:
        """Lease up to `limit` due deliveries, none of the `held` subscriptions (their breaker is
        open, they are at their cap, or their secrets do not open), and no more of a rate-limited
        subscription's than its bucket allows; an ordered subscription's later events about an
        object wait while an earlier one about the same object is still open. A subscription
        whose secrets do not open (resealed with a key this keyring lacks) has none of its
        deliveries leased (so none is tried): it is named in `unopened`, for the caller to hold."""
        claim = uuid.uuid4()
        with self._cursor() as cur:
            buckets = self._buckets(cur, now=now, held=held)
            allowed = {sub: b.whole for sub, b in buckets.items() if b.whole > 0}
            params: dict[str, Any] = {"now": now, "held": list(held)}
            rows: list[dict[str, Any]] = []
            if allowed:
                cur.execute(
                    _DUE_THROTTLED,
                    {**params, "subs": list(allowed), "n": list(allowed.values()), "limit": limit},
                )
                rows += cur.fetchall()
            if len(rows) < limit:
                cur.execute(_DUE_UNTHROTTLED, {**params, "limit": limit - len(rows)})
                rows += cur.fetchall()
            # Opened once per subscription, before anything is leased.
            opened: dict[uuid.UUID, Opened | Unopened] = {}
            for row in rows:
                sub = row["subscription_id"]
                if sub not in opened:
                    opened[sub] = self._opened(sub, row)
            unopened = {sub: o for sub, o in opened.items() if isinstance(o, Unopened)}
            signing = {sub: o for sub, o in opened.items() if isinstance(o, Opened)}
            chosen = [
                (row["id"], row["subscription_id"])
                for row in rows
                if row["subscription_id"] in signing
            ]
            spent = Counter(sub for _, sub in chosen if sub in buckets)
            if spent:  # only the buckets spent from: a refill alone need not be written
                self._save_buckets(cur, {sub: buckets[sub].spend(n) for sub, n in spent.items()})
            if not chosen:
                return Claimed([], unopened)
            cur.execute(
                """
                UPDATE deliveries d SET claimed_until = %(until)s, claim_token = %(claim)s,
                                        updated_at = %(now)s
                FROM subscriptions s, events ev
                WHERE d.id = ANY(%(ids)s) AND s.id = d.subscription_id AND ev.id = d.event_id
                RETURNING d.id, d.event_id, d.subscription_id, d.attempt_count, d.round_start,
                          d.replayed, s.url, ev.body, ev.time
                """,
                {
                    "now": now,
                    "until": now + timedelta(seconds=lease_s),
                    "claim": claim,
                    "ids": [delivery for delivery, _ in chosen],
                },
            )
            leased = {row["id"]: row for row in cur.fetchall()}
            due: list[DueDelivery] = []
            for row in (leased[delivery] for delivery, _ in chosen):
                opened_for = signing[row["subscription_id"]]
                due.append(
                    DueDelivery(
                        id=row["id"],
                        event_id=row["event_id"],
                        subscription_id=row["subscription_id"],
                        url=row["url"],
                        secrets=opened_for.secrets,
                        body=row["body"].encode(),
                        attempt_number=row["attempt_count"] + 1,
                        round_attempt=row["attempt_count"] - row["round_start"] + 1,
                        claim=claim,
                        headers=opened_for.headers,
                        event_time=row["time"],
                        first_delivery=not row["replayed"] and row["round_start"] == 0,
                    )
                )
            return Claimed(due, unopened)

    def _buckets(
        self,
        cur: psycopg.Cursor[dict[str, Any]],
        *,
        now: datetime | None,
        held: Sequence[uuid.UUID] = (),
        only: Sequence[uuid.UUID] | None = None,
    ) -> dict[uuid.UUID, Bucket]:
        """The buckets of the rate-limited subscriptions (`only` those; else those, not `held`,
        with a delivery due at `now`), refilled up to `now`, if given, and locked in id order (like
        every statement that locks several subscriptions, so none can deadlock) until the
        transaction ends. An idle limited subscription's row is not locked by a claim."""
        if only is None:
            # NO KEY: new deliveries' foreign-key checks (KEY SHARE) need not wait for it.
            cur.execute(_DUE_BUCKETS, {"now": now, "held": list(held)})
        else:
            cur.execute(
                "SELECT id, rate_limit_per_s, rate_tokens, rate_refilled_at FROM subscriptions"
                " WHERE rate_limit_per_s IS NOT NULL AND enabled AND id = ANY(%s)"
                " ORDER BY id FOR NO KEY UPDATE",
                (list(only),),
            )
        buckets = {
            row["id"]: Bucket(row["rate_limit_per_s"], row["rate_tokens"], row["rate_refilled_at"])
            for row in cur.fetchall()
        }
        return buckets if now is None else {sub: b.at(now) for sub, b in buckets.items()}

    def _save_buckets(
        self, cur: psycopg.Cursor[dict[str, Any]], buckets: dict[uuid.UUID, Bucket]
    ) -> None:
        cur.execute(
            "UPDATE subscriptions s SET rate_tokens = b.tokens, rate_refilled_at = b.at"
            " FROM unnest(%s::uuid[], %s::float8[], %s::timestamptz[]) AS b(id, tokens, at)"
            " WHERE s.id = b.id",
            (
                list(buckets),
                [b.tokens for b in buckets.values()],
                [b.refilled_at for b in buckets.values()],
            ),
        )

    def release(self, claimed: Sequence[DueDelivery]) -> None:
        """Give claims back without an attempt (their rate-limit tokens with them); a claim that
        already passed to another worker (its lease ran out) is left to that worker."""
        if not claimed:
            return
        with self._cursor() as cur:
            cur.execute(
                "UPDATE deliveries d SET claimed_until = NULL, claim_token = NULL"
                " FROM unnest(%s::uuid[], %s::uuid[]) AS c(id, claim)"
                " WHERE d.id = c.id AND d.claim_token = c.claim"
                " RETURNING d.subscription_id",
                ([d.id for d in claimed], [d.claim for d in claimed]),
            )
            released = Counter(row["subscription_id"] for row in cur.fetchall())
            if not released:
                return
            buckets = self._buckets(cur, now=None, only=list(released))
            if buckets:
                self._save_buckets(
                    cur, {sub: b.refund(released[sub]) for sub, b in buckets.items()}
                )

    def record_attempt(
        self,
        attempt: AttemptRecord,
        outcome: Outcome,
        *,
        now: datetime,
        disable_after: timedelta = timedelta(days=5),
    ) -> str | None:
        """`record_attempts` for one attempt; returns why its subscription was disabled, if so."""
        recorded = self.record_attempts([(attempt, outcome)], now=now, disable_after=disable_after)
        return next(iter(recorded.disabled.values()), None)

    def record_attempts(
        self,
        attempts: Sequence[tuple[AttemptRecord, Outcome]],
        *,
        now: datetime,
        disable_after: timedelta = timedelta(days=5),
    ) -> Recorded:
        """Log the attempts and move their deliveries on, in one transaction and few round trips.

        Every attempt is logged, numbered after the attempts already logged for its delivery. Only
        an attempt made under the delivery's current claim moves it on (status, next try); one
        whose claim passed to another worker meanwhile (its lease ran out) is only logged: the new
        holder decides. Keeps each subscription's health: a success clears `failing_since`; a
        failure sets it if unset, and a subscription whose every attempt has failed for
        `disable_after` is disabled (so is one that answered 410 Gone)."""
        if not attempts:
            return Recorded(disabled={}, late=0)
        with self._cursor() as cur:
            # Locked in id order, so two workers recording overlapping batches cannot deadlock.
            cur.execute(
                "SELECT id, subscription_id, object_key, attempt_count, claim_token, status"
                " FROM deliveries WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                (list({a.delivery_id for a, _ in attempts}),),
            )
            rows = {r["id"]: r for r in cur.fetchall()}
            logged: list[tuple[AttemptRecord, Outcome, int]] = []
            moved: list[tuple[AttemptRecord, Outcome, int]] = []
            for attempt, outcome in attempts:
                row = rows.get(attempt.delivery_id)
                if row is None:  # cleaned up meanwhile
                    continue
                row["attempt_count"] += 1
                logged.append((attempt, outcome, row["attempt_count"]))
                if row["claim_token"] == attempt.claim and row["status"] in _OPEN:
                    row["claim_token"] = None
                    moved.append((attempt, outcome, row["attempt_count"]))
                else:
                    log.info(
                        "attempt %d of delivery %s recorded after its claim passed on",
                        row["attempt_count"],
                        attempt.delivery_id,
                    )
            cur.executemany(
                "INSERT INTO attempts (delivery_id, attempt_number, started_at, duration_ms,"
                " status_code, response_headers, response_body, error)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        a.delivery_id,
                        n,
                        a.started_at,
                        a.duration_ms,
                        a.status_code,
                        (
                            Jsonb(storable_json(a.response_headers))
                            if a.response_headers is not None
                            else None
                        ),
                        _storable(a.response_body),
                        _storable(a.error),
                    )
                    for a, _, n in logged
                ],
            )
            cur.executemany(
                "UPDATE deliveries SET status = %(status)s, attempt_count = %(n)s,"
                " next_attempt_at = %(retry_at)s, claimed_until = NULL, claim_token = NULL,"
                " updated_at = %(now)s, last_status_code = %(code)s, last_error = %(error)s,"
                " delivered_at = CASE WHEN %(status)s = 'delivered' THEN %(done)s"
                " ELSE delivered_at END WHERE id = %(id)s",
                [
                    {
                        "status": _STATUS[o.verdict],
                        "n": n,
                        "retry_at": o.retry_at,
                        "now": now,
                        "code": a.status_code,
                        "error": _storable(a.error),
                        "id": a.delivery_id,
                        "done": a.started_at + timedelta(milliseconds=a.duration_ms),
                    }
                    for a, o, n in moved
                ],
            )
            # A delivery that ended (delivered, failed for good) hands its object's head on.
            self._promote(
                cur,
                {
                    (rows[a.delivery_id]["subscription_id"], rows[a.delivery_id]["object_key"])
                    for a, o, _ in moved
                    if _STATUS[o.verdict] not in _OPEN
                },
            )
            counted = [(id_, row["attempt_count"]) for id_, row in rows.items()]
            cur.execute(
                "UPDATE deliveries d SET attempt_count = GREATEST(d.attempt_count, c.n)"
                " FROM unnest(%s::uuid[], %s::int[]) AS c(id, n) WHERE d.id = c.id",
                ([id_ for id_, _ in counted], [n for _, n in counted]),
            )
            disabled = self._keep_health(
                cur,
                [(a, o) for a, o, _ in logged],
                {id_: row["subscription_id"] for id_, row in rows.items()},
                now,
                disable_after,
            )
            return Recorded(disabled=disabled, late=len(logged) - len(moved))

    def _keep_health(
        self,
        cur: psycopg.Cursor[dict[str, Any]],
        attempts: Sequence[tuple[AttemptRecord, Outcome]],
        subscription_of: dict[uuid.UUID, uuid.UUID],
        now: datetime,
        disable_after: timedelta,
    ) -> dict[uuid.UUID, str]:
        # Per subscription, in attempt order: the first failure since the last success, whether
        # any attempt succeeded, and whether one answered 410 Gone.
        health: dict[uuid.UUID, tuple[datetime | None, bool, bool]] = {}
        for attempt, outcome in attempts:
            sub = subscription_of.get(attempt.delivery_id)
            if sub is None:
                continue
            failing, had_success, gone = health.get(sub, (None, False, False))
            if outcome.verdict is Verdict.DELIVERED:
                health[sub] = (None, True, gone)
            else:
                gone = gone or outcome.verdict is Verdict.GONE
                health[sub] = (failing or attempt.started_at, had_success, gone)
        disabled: dict[uuid.UUID, str] = {}
        recovered = [
            sub for sub, (failure, succeeded, gone) in health.items() if succeeded and not failure
        ]
        if recovered:  # the usual case, in one statement
            cur.execute(
                "UPDATE subscriptions SET failing_since = NULL"
                " WHERE id = ANY(%s) AND failing_since IS NOT NULL",
                (recovered,),
            )
        # In id order, as everywhere several subscriptions are locked: recorders cannot deadlock.
        for sub, (first_failure, succeeded, gone) in sorted(health.items()):
            reason = "the endpoint answered 410 Gone" if gone else None
            if first_failure is not None and reason is None:
                cur.execute(
                    "UPDATE subscriptions SET failing_since = CASE WHEN %s THEN %s"
                    " ELSE COALESCE(failing_since, %s) END WHERE id = %s RETURNING failing_since",
                    (succeeded, first_failure, first_failure, sub),
                )
                row = cur.fetchone()
                if row is not None and row["failing_since"] <= now - disable_after:
                    since = row["failing_since"].isoformat(timespec="seconds")
                    reason = f"every attempt has failed since {since}"
            if reason is not None:
                cur.execute(
                    "UPDATE subscriptions SET enabled = false, disabled_reason = %s,"
                    " disabled_at = %s, updated_at = %s WHERE id = %s AND enabled",
                    (reason, now, now, sub),
                )
                if cur.rowcount:
                    disabled[sub] = reason
                    # Its open deliveries out of the claims' way (`set_enabled` unparks them);
                    # one locked elsewhere meanwhile stays put: the claims skip it all the same.
                    cur.execute(
                        "UPDATE deliveries SET parked = true WHERE id IN ("
                        " SELECT id FROM deliveries WHERE subscription_id = %s"
                        " AND status IN ('pending', 'retrying') AND NOT parked"
                        " FOR UPDATE SKIP LOCKED)",
                        (sub,),
                    )
        return disabled

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
        with self._cursor() as cur:
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
            return [_delivery_view(row) for row in cur.fetchall()]

    def delivery(self, delivery_id: uuid.UUID) -> dict[str, Any] | None:
        """One delivery with its event and every attempt, as plain values for display."""
        with self._cursor() as cur:
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
            view = _delivery_view(row)
            view["attempts"] = [_delivery_view(a) for a in cur.fetchall()]
            return view

    def redeliver(self, delivery_id: uuid.UUID, *, now: datetime) -> bool:
        """Send a delivery again now, whatever its status, with a new round of tries (for an
        ordered subscription, once no earlier delivery about its object is open; the later ones
        wait for it)."""
        with self._cursor() as cur:
            cur.execute(
                "SELECT subscription_id, object_key FROM deliveries WHERE id = %s", (delivery_id,)
            )
            row = cur.fetchone()
            if row is None:
                return False
            self._reopen(cur, row["subscription_id"], [row["object_key"]])
            cur.execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = %s,"
                " round_start = attempt_count, claimed_until = NULL, claim_token = NULL, updated_at = %s,"
                " waiting = true, parked = NOT (SELECT enabled FROM subscriptions s"
                " WHERE s.id = subscription_id)"
                " WHERE id = %s",
                (now, now, delivery_id),
            )
            updated = cur.rowcount == 1
            self._reopened(cur, row["subscription_id"], [row["object_key"]])
            return updated

    def _reopen(
        self, cur: psycopg.Cursor[dict[str, Any]], subscription: uuid.UUID, keys: Sequence[str]
    ) -> None:
        """Before opening deliveries of `subscription` about these objects again: the locks."""
        self._queueing(cur, [subscription])
        self._lock_heads(cur, {(subscription, key) for key in keys})

    def _reopened(
        self, cur: psycopg.Cursor[dict[str, Any]], subscription: uuid.UUID, keys: Sequence[str]
    ) -> None:
        """After: each object's first open delivery is its head, and for an ordered subscription
        the open ones behind it wait (for an unordered one, none waits)."""
        params = {"subs": [subscription] * len(keys), "keys": list(keys)}
        cur.execute(_DUE_PROMOTE, params)
        cur.execute("SELECT ordered FROM subscriptions WHERE id = %s", (subscription,))
        row = cur.fetchone()
        if row is not None and row["ordered"]:
            cur.execute(_DUE_DEMOTE, params)
        else:
            cur.execute(
                "UPDATE deliveries SET waiting = false WHERE subscription_id = %s"
                " AND object_key = ANY(%s) AND status IN ('pending', 'retrying') AND waiting",
                (subscription, list(keys)),
            )

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
        with self._cursor() as cur:
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
        with self._cursor() as cur:
            self._reopen(cur, subscription_id, keys)
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
            self._reopened(cur, subscription_id, keys)
            return recovered

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
        with self._pool.connection() as conn:
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
        with self._cursor() as cur:
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


def _storable(text: str | None) -> str | None:
    """What a receiver said (or the error about it), as Postgres text can hold it."""
    return None if text is None else storable_text(text)


def _matches(subscription: Subscription, row: dict[str, Any]) -> bool:
    try:
        event = decode_cloudevent(row["body"].encode(), key=row["object_key"].encode())
    except ContractError:  # stored before a contract change: not replayable
        log.warning("stored event %s cannot be read any more; not replayed", row["id"])
        return False
    return matches(subscription.filter, event)


def _cloudevent(event: CloudEvent | DomainEvent, body: bytes) -> CloudEvent:
    return CloudEvent.of(event, body=body) if isinstance(event, DomainEvent) else event


def _subscription(row: dict[str, Any], keyring: Keyring) -> Subscription:
    # Read without opening what does not open: matching events and showing a subscription need
    # no secret, and a dispatcher running without the key of a reseal must go on matching.
    opened = keyring.open_subscription(row["id"], secrets=row["secrets"], headers=row["headers"])
    return Subscription(
        id=row["id"],
        url=row["url"],
        secrets=opened.secrets if isinstance(opened, Opened) else (),
        filter=SubscriptionFilter(
            event_types=tuple(row["event_types"]),
            clusters=tuple(row["clusters"]),
            namespaces=tuple(row["namespaces"]),
            names=tuple(row["names"]),
            sources=tuple(row["sources"]),
            subjects=tuple(row["subjects"]),
        ),
        ordered=row["ordered"],
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        rate_limit_per_s=row["rate_limit_per_s"],
        headers=opened.headers if isinstance(opened, Opened) else (),
        unopened=opened if isinstance(opened, Unopened) else None,
    )


def _delivery_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, uuid.UUID) else v)
        for k, v in row.items()
    }
