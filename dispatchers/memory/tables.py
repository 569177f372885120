"""The rows every in-memory aggregate shares, and the lock that makes each call one transaction."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dispatchers.matching import SubscriptionFilter
from dispatchers.model import Subscription
from dispatchers.sealing import Keyring, Opened, Unopened
from dispatchers.throttling import Bucket


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Sub:
    id: uuid.UUID
    url: str
    secrets: list[str]
    filter: SubscriptionFilter
    ordered: bool
    created_at: datetime
    updated_at: datetime
    rate_limit_per_s: float | None
    headers: dict[str, str]
    enabled: bool = True
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    failing_since: datetime | None = None
    retired_secrets: list[str] = field(default_factory=list)
    retired_until: datetime | None = None
    bucket: Bucket | None = None

    def signing(self, now: datetime) -> list[str]:
        """The secrets that sign at `now` (the retired ones too, in their grace period)."""
        retiring = self.retired_until is not None and self.retired_until > now
        return self.secrets + (self.retired_secrets if retiring else [])


@dataclass
class Event:
    id: str
    type: str
    source: str
    object_key: str
    time: datetime
    payload: dict[str, Any]
    body: str
    received_at: datetime
    seq: int


@dataclass
class Delivery:
    id: uuid.UUID
    seq: int
    event_id: str
    subscription_id: uuid.UUID
    object_key: str
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    status: str = "pending"
    attempt_count: int = 0
    round_start: int = 0
    claimed_until: datetime | None = None
    claim_token: uuid.UUID | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    replayed: bool = False
    """Queued by `replay`, not from consumption: never a first delivery."""
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def requeue(self, now: datetime) -> None:
        """Pending now, with a new round of tries."""
        self.status, self.next_attempt_at, self.round_start = "pending", now, self.attempt_count
        self.claimed_until = self.claim_token = None
        self.updated_at = now


class Tables:
    """The rows every aggregate shares, and the lock that makes each call one transaction."""

    def __init__(self, *, keyring: Keyring | None, clock: Callable[[], datetime]) -> None:
        self.keyring = keyring or Keyring()
        self.clock = clock
        self.lock = threading.RLock()
        self.cleaning = threading.Lock()
        self.subscriptions: dict[uuid.UUID, Sub] = {}
        self.events: dict[str, Event] = {}
        self.deliveries: dict[uuid.UUID, Delivery] = {}
        self.by_pair: dict[tuple[str, uuid.UUID], uuid.UUID] = {}
        self._seq = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add_delivery(
        self, event: Event, subscription: uuid.UUID, *, now: datetime, replayed: bool = False
    ) -> bool:
        """A pending delivery of `event` to `subscription`, unless it has one already."""
        if (event.id, subscription) in self.by_pair:
            return False
        at = self.clock()
        d = Delivery(
            uuid.uuid4(), self.next_seq(), event.id, subscription, event.object_key, now, at, at
        )
        d.replayed = replayed
        self.deliveries[d.id] = d
        self.by_pair[(event.id, subscription)] = d.id
        return True

    def opened(self, sub: Sub, secrets: Sequence[str]) -> Opened | Unopened:
        return self.keyring.open_subscription(sub.id, secrets=secrets, headers=sub.headers)

    def subscription(self, sub: Sub) -> Subscription:
        opened = self.opened(sub, sub.secrets)
        return Subscription(
            id=sub.id,
            url=sub.url,
            secrets=opened.secrets if isinstance(opened, Opened) else (),
            filter=sub.filter,
            ordered=sub.ordered,
            enabled=sub.enabled,
            disabled_reason=sub.disabled_reason,
            created_at=sub.created_at,
            updated_at=sub.updated_at,
            rate_limit_per_s=sub.rate_limit_per_s,
            headers=opened.headers if isinstance(opened, Opened) else (),
            unopened=opened if isinstance(opened, Unopened) else None,
        )

    def sealed_headers(self, headers: Sequence[tuple[str, str]], sub: uuid.UUID) -> dict[str, str]:
        return {n: self.keyring.seal(v, subscription=sub) for n, v in headers}
