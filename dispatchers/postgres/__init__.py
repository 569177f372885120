"""The dispatcher's store in PostgreSQL (psycopg 3 with a connection pool), one module per aggregate.

Holds subscriptions (`subscriptions`), each event once, so redelivery works after Kafka's retention
(`events`), one delivery per (event, subscription), the uniqueness that absorbs redelivered Kafka
records, leased to workers (`queue`), every attempt (`queue` records, `deliveries` shows), and the
clean-up by age (`housekeeping`). `Store` builds them over one pool (`database`); the ports they
implement, and the in-memory twin, are `dispatchers.model` and `dispatchers.memory`.
"""

from __future__ import annotations

from dispatchers.model import (
    DeliveryLog,
    DeliveryQueue,
    EventStore,
    Housekeeping,
    Intake,
    SubscriptionStore,
)
from dispatchers.postgres.database import Database
from dispatchers.postgres.deliveries import PgDeliveryLog
from dispatchers.postgres.events import PgEvents
from dispatchers.postgres.housekeeping import PgHousekeeping
from dispatchers.postgres.queue import PgQueue
from dispatchers.postgres.subscriptions import PgSubscriptions
from dispatchers.sealing import Keyring


class Store:
    """The aggregates over one connection pool."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.subscriptions: SubscriptionStore = PgSubscriptions(db)
        self.events: EventStore = PgEvents(db)
        self.queue: DeliveryQueue = PgQueue(db)
        self.log: DeliveryLog = PgDeliveryLog(db)
        self.housekeeping: Housekeeping = PgHousekeeping(db)
        self.intake = Intake(self.subscriptions, self.events)

    @classmethod
    def open(
        cls, url: str, *, max_size: int = 4, keyring: Keyring | None = None, wait: bool = True
    ) -> Store:
        """A store on a pool of connections to `url` (`Database.open`)."""
        return cls(Database.open(url, max_size=max_size, keyring=keyring, wait=wait))

    @property
    def last_error(self) -> str | None:
        """Why the last statement failed to reach the database; None once one succeeds again."""
        return self.db.last_error

    @last_error.setter
    def last_error(self, value: str | None) -> None:
        self.db.last_error = value

    def migrate(self) -> list[str]:
        return self.db.migrate()

    def close(self) -> None:
        self.db.close()
