"""The sending loop of one worker thread: lease due deliveries, sign, POST, record the attempt.

Several workers (and several replicas) run it side by side; the leases in Postgres keep them from
sending the same delivery at once.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from dispatchers.http import HttpResult
from dispatchers.outcomes import Outcome, decide
from dispatchers.postgres import AttemptRecord, DueDelivery
from dispatchers.signing import sign

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/cloudevents+json"


class Sender(Protocol):
    def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> HttpResult: ...


class ClaimStore(Protocol):
    def claim_due(self, *, now: datetime, limit: int, lease_s: float) -> list[DueDelivery]: ...

    def record_attempt(
        self, attempt: AttemptRecord, outcome: Outcome, *, now: datetime
    ) -> None: ...


def webhook_headers(delivery: DueDelivery, *, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": CONTENT_TYPE,
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(
            secrets=delivery.secrets,
            message_id=delivery.event_id,
            timestamp=timestamp,
            body=delivery.body,
        ),
    }


@dataclass
class SendingLoop:
    store: ClaimStore
    sender: Sender
    now: Callable[[], datetime]
    retry_schedule_s: tuple[float, ...]
    retry_jitter: float
    claim_batch: int = 10
    lease_s: float = 60.0
    idle_poll_s: float = 0.2
    rand: Callable[[], float] = random.random
    stop: threading.Event = field(default_factory=threading.Event)
    on_attempt: Callable[[DueDelivery, HttpResult, Outcome], None] = lambda d, r, o: None

    def run(self) -> None:
        while not self.stop.is_set():
            if not self.run_once():
                self.stop.wait(self.idle_poll_s)

    def run_once(self) -> int:
        """Send one leased batch; return how many attempts were made."""
        due = self.store.claim_due(now=self.now(), limit=self.claim_batch, lease_s=self.lease_s)
        for delivery in due:
            self._attempt(delivery)
        return len(due)

    def _attempt(self, delivery: DueDelivery) -> None:
        started = self.now()
        headers = webhook_headers(delivery, timestamp=int(started.timestamp()))
        result = self.sender.post(delivery.url, body=delivery.body, headers=headers)
        outcome = decide(
            status_code=result.status_code,
            attempt_number=delivery.attempt_number,
            now=self.now(),
            schedule_s=self.retry_schedule_s,
            jitter=self.retry_jitter,
            jitter_draw=self.rand(),
        )
        attempt = AttemptRecord(
            delivery_id=delivery.id,
            attempt_number=delivery.attempt_number,
            started_at=started,
            duration_ms=result.duration_ms,
            status_code=result.status_code,
            response_headers=result.headers,
            response_body=result.body,
            error=result.error,
        )
        self.store.record_attempt(attempt, outcome, now=self.now())
        self.on_attempt(delivery, result, outcome)
        log.info(
            "delivery %s attempt %d to %s: %s -> %s",
            delivery.id,
            delivery.attempt_number,
            delivery.url,
            result.status_code or result.error,
            outcome.verdict,
        )
