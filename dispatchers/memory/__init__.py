"""The dispatcher's store in memory: the twin of `dispatchers.postgres`, with the same ports
(`dispatchers.model`) and the same semantics, checked by one contract suite
(`tests/dispatchers/test_store_contract.py`), so the sending and consuming logic is tested in
milliseconds. One module per aggregate, over the shared `tables`.

One lock stands for the database's transactions: each call is atomic, as each Postgres call is one
transaction. Claims are leases with tokens; an ordered subscription's later events about an object
wait while an earlier one is open; rate limits spend `dispatchers.throttling` buckets; endpoint
health is `dispatchers.health`'s. What Postgres refuses for its own reasons (a NUL in text, a value
too large for an index) is not refused here: those tests stay on Postgres.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from dispatchers.memory.deliveries import MemoryDeliveryLog
from dispatchers.memory.events import MemoryEvents
from dispatchers.memory.housekeeping import MemoryHousekeeping
from dispatchers.memory.queue import MemoryQueue
from dispatchers.memory.subscriptions import MemorySubscriptions
from dispatchers.memory.tables import Tables, utc_now
from dispatchers.model import (
    DeliveryLog,
    DeliveryQueue,
    EventStore,
    Housekeeping,
    Intake,
    SubscriptionStore,
)
from dispatchers.sealing import Keyring


class MemoryStore:
    """The aggregates over one set of tables (`dispatchers.postgres.Store`'s twin)."""

    def __init__(
        self, *, keyring: Keyring | None = None, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.tables = Tables(keyring=keyring, clock=clock)
        self.subscriptions: SubscriptionStore = MemorySubscriptions(self.tables)
        self.events: EventStore = MemoryEvents(self.tables)
        self.queue: DeliveryQueue = MemoryQueue(self.tables)
        self.log: DeliveryLog = MemoryDeliveryLog(self.tables)
        self.housekeeping: Housekeeping = MemoryHousekeeping(self.tables)
        self.intake = Intake(self.subscriptions, self.events)
        self.last_error: str | None = None

    def migrate(self) -> list[str]:
        return []

    def close(self) -> None:
        pass
