"""What every Postgres aggregate shares: the connection pool, the keyring that opens sealed secrets,
the translation of psycopg's errors into the store's (`_cursor`), and the migrations.

One `Database` is built per store (`dispatchers.postgres.Store`) and handed to each aggregate, so
they share one pool and one `last_error`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from dispatchers.matching import SubscriptionFilter
from dispatchers.model import StoreError, Subscription, ValuesRefusedError
from dispatchers.sealing import Keyring, Opened, Unopened

_MIGRATION_LOCK = 0x4845524C  # "HERL": serialises concurrent `migrate` runs


class Database:
    def __init__(self, pool: ConnectionPool, *, keyring: Keyring | None = None) -> None:
        self.pool = pool
        self.keyring = keyring or Keyring()
        self.last_error: str | None = None
        """Why the last statement failed to reach the database; None once one succeeds again."""

    @classmethod
    def open(
        cls, url: str, *, max_size: int = 4, keyring: Keyring | None = None, wait: bool = True
    ) -> Database:
        """A pool of connections to `url`; with `wait`, StoreError unless the database answers
        within 10 s (a command), else the pool keeps connecting in the background and each
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
        self.pool.close()

    @contextmanager
    def cursor(self, *, pipelined: bool = False) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        """A cursor in a transaction of its own; psycopg's errors translated into the store's.

        `pipelined`: in psycopg's pipeline mode, so statements whose results are not read are
        sent together (BEGIN with the first statement, COMMIT with the last ones): a round trip
        only where a result is fetched, and one at the end."""
        try:
            with (
                self.pool.connection() as conn,
                conn.pipeline() if pipelined else nullcontext(),
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
        with self.cursor() as cur:
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

    # -- sealed values -------------------------------------------------------------------------

    def sealed_headers(
        self, headers: Sequence[tuple[str, str]], subscription: uuid.UUID
    ) -> dict[str, str]:
        return {n: self.keyring.seal(v, subscription=subscription) for n, v in headers}

    def opened(self, subscription: uuid.UUID, row: dict[str, Any]) -> Opened | Unopened:
        """The secrets and headers of a row that has them (`secrets` those that sign now)."""
        return self.keyring.open_subscription(
            subscription, secrets=row["secrets"], headers=row["headers"]
        )

    def subscription(self, row: dict[str, Any]) -> Subscription:
        """A subscriptions row, read without opening what does not open: matching events and
        showing a subscription need no secret, and a dispatcher running without the key of a
        reseal must go on matching."""
        opened = self.opened(row["id"], row)
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
