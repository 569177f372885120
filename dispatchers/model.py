"""The dispatcher's domain types, the store's errors and its ports. Pure: no database here.

The store is split by aggregate, one small Protocol each: `SubscriptionStore` (subscriptions and
their sealed secrets), `EventStore` (each event once, and replay), `DeliveryQueue` (claims, leases,
rate limits, attempts and what they decide), `DeliveryLog` (the log as shown) and `Housekeeping`
(clean-up by age, gauges). Two implementations keep the same semantics, checked by one contract
suite (`tests/dispatchers/test_store_contract.py`): `dispatchers.postgres` (the service's) and
`dispatchers.memory` (the logic tests'). The loops see narrower ports still: `consuming.DeliveryStore`
(`Intake` here) and `sending.ClaimStore` (a `DeliveryQueue`).

Errors: `StoreError` (the database is away: wait, never set a record aside) and
`ValuesRefusedError` (it refused these values: the same values cannot succeed); each says whether
it is `permanent`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from dispatchers.matching import SubscriptionFilter, matches
from dispatchers.outcomes import Outcome, Verdict
from dispatchers.sealing import Unopened
from herald_contracts import CloudEvent, ContractError, DomainEvent, decode_cloudevent

log = logging.getLogger(__name__)

OPEN = ("pending", "retrying")
"""The statuses of a delivery still to be sent."""
STATUS = {
    Verdict.DELIVERED: "delivered",
    Verdict.RETRY: "retrying",
    Verdict.FAILED: "failed",
    Verdict.GONE: "failed",
    Verdict.REFUSED: "failed",
}
"""A delivery's status after an attempt with this verdict."""
DISABLE_AFTER = timedelta(days=5)


class StoreError(Exception):
    """The database could not be reached (or has no Herald tables): waited for, never a reason to
    set a record aside."""

    permanent: ClassVar[bool] = False


class ValuesRefusedError(Exception):
    """The database answered, and refused the values of a statement (a data exception, SQLSTATE
    class 22, or a limit, class 54: an index row too large): sending the same values again cannot
    succeed. Not an outage: the database is reachable."""

    permanent: ClassVar[bool] = True


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


Row = tuple[CloudEvent | DomainEvent, bytes, Sequence[uuid.UUID]]
"""An event, the exact bytes read, and the subscriptions it goes to."""


def cloudevent(event: CloudEvent | DomainEvent, body: bytes) -> CloudEvent:
    return CloudEvent.of(event, body=body) if isinstance(event, DomainEvent) else event


def replays_to(subscription: Subscription, *, event_id: str, body: str, object_key: str) -> bool:
    """Whether `replay` sends a stored event to `subscription`: its filters match the event (one
    stored before a contract change, which cannot be read any more, is not replayed)."""
    try:
        event = decode_cloudevent(body.encode(), key=object_key.encode())
    except ContractError:
        log.warning("stored event %s cannot be read any more; not replayed", event_id)
        return False
    return matches(subscription.filter, event)


class SubscriptionStore(Protocol):
    """Subscriptions, their sealed secrets and headers (opened with the store's keyring)."""

    @property
    def sealing_key(self) -> str | None: ...

    def create(
        self,
        *,
        url: str,
        secrets: Sequence[str],
        filter: SubscriptionFilter,
        ordered: bool,
        rate_limit_per_s: float | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> uuid.UUID: ...

    def all(self, *, enabled_only: bool = False) -> list[Subscription]: ...

    def get(self, subscription_id: uuid.UUID) -> Subscription | None: ...

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
    ) -> bool: ...

    def set_enabled(
        self, subscription_id: uuid.UUID, *, enabled: bool, reason: str | None, now: datetime
    ) -> bool: ...

    def rotate_secret(
        self, subscription_id: uuid.UUID, secret: str, *, now: datetime, grace: timedelta
    ) -> bool: ...

    def check_secrets(self) -> int: ...

    def unopened(self, *, now: datetime) -> dict[uuid.UUID, Unopened]: ...

    def reseal(self, *, only: uuid.UUID | None = None) -> int: ...


class EventStore(Protocol):
    """Each event once, in the order it arrived, with one delivery per wanted subscription. (The
    stores subclass it for `record_events`.)"""

    def record_batch(self, batch: Sequence[Row], *, now: datetime) -> StoredBatch: ...

    def record_events(self, batch: Sequence[Row], *, now: datetime) -> int:
        """`record_batch`, returning how many deliveries are new."""
        return self.record_batch(batch, now=now).created

    def replay(
        self,
        subscription: Subscription,
        *,
        since: datetime,
        until: datetime | None,
        now: datetime,
        page: int = 500,
    ) -> int: ...


class DeliveryQueue(Protocol):
    """Due deliveries leased to workers, and the attempts they made. (The stores subclass it for
    `claim_due` and `record_attempt`.)"""

    def claim(
        self, *, now: datetime, limit: int, lease_s: float, held: Sequence[uuid.UUID] = ()
    ) -> Claimed: ...

    def claim_due(
        self, *, now: datetime, limit: int, lease_s: float, held: Sequence[uuid.UUID] = ()
    ) -> list[DueDelivery]:
        """The deliveries `claim` leases."""
        return self.claim(now=now, limit=limit, lease_s=lease_s, held=held).deliveries

    def release(self, claimed: Sequence[DueDelivery]) -> None: ...

    def record_attempts(
        self,
        attempts: Sequence[tuple[AttemptRecord, Outcome]],
        *,
        now: datetime,
        disable_after: timedelta = DISABLE_AFTER,
    ) -> Recorded: ...

    def record_attempt(
        self,
        attempt: AttemptRecord,
        outcome: Outcome,
        *,
        now: datetime,
        disable_after: timedelta = DISABLE_AFTER,
    ) -> str | None:
        """`record_attempts` for one attempt; returns why its subscription was disabled, if so."""
        recorded = self.record_attempts([(attempt, outcome)], now=now, disable_after=disable_after)
        return next(iter(recorded.disabled.values()), None)


class DeliveryLog(Protocol):
    """The deliveries and their attempts as the operator sees them (plain values for display), and
    sending some again with a new round of tries."""

    def deliveries(
        self,
        *,
        subscription_id: uuid.UUID | None = None,
        status: str | None = None,
        event_id: str | None = None,
        object_key: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]: ...

    def delivery(self, delivery_id: uuid.UUID) -> dict[str, Any] | None: ...

    def redeliver(self, delivery_id: uuid.UUID, *, now: datetime) -> bool: ...

    def recover(
        self, subscription_id: uuid.UUID, *, since: datetime, until: datetime | None, now: datetime
    ) -> int: ...


class Housekeeping(Protocol):
    def clean_up(
        self, *, now: datetime, delivered_for: timedelta, failed_for: timedelta, batch: int
    ) -> int | None: ...

    def stats(self, *, now: datetime) -> dict[str, float]: ...


class Stores(Protocol):
    """Every aggregate of one store, as the composition root and the commands use it."""

    @property
    def subscriptions(self) -> SubscriptionStore: ...
    @property
    def events(self) -> EventStore: ...
    @property
    def queue(self) -> DeliveryQueue: ...
    @property
    def log(self) -> DeliveryLog: ...
    @property
    def housekeeping(self) -> Housekeeping: ...
    @property
    def intake(self) -> Intake: ...
    @property
    def last_error(self) -> str | None: ...

    def migrate(self) -> list[str]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Intake:
    """What the consuming loop needs (`consuming.DeliveryStore`): the enabled subscriptions to match
    against, and the event store to record a batch in."""

    subscription_store: SubscriptionStore
    event_store: EventStore

    def subscriptions(self, *, enabled_only: bool = False) -> list[Subscription]:
        return self.subscription_store.all(enabled_only=enabled_only)

    def record_batch(self, batch: Sequence[Row], *, now: datetime) -> StoredBatch:
        return self.event_store.record_batch(batch, now=now)


def view(row: dict[str, Any]) -> dict[str, Any]:
    """A row as plain values for display (times in ISO 8601, ids as text)."""
    return {
        k: (v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, uuid.UUID) else v)
        for k, v in row.items()
    }
