"""The sending loop of one worker thread: lease due deliveries, sign, POST, record the attempt.

Several workers (and several replicas) run it side by side; the leases in Postgres keep them from
sending the same delivery at once. The breakers (`dispatchers.breaker`), shared by the workers of a
process, keep an unhealthy endpoint's deliveries from being claimed and cap the attempts one
subscription may have in flight; a claim the breaker refuses is given back without spending a try.
A subscription whose secrets this dispatcher cannot open (`dispatchers.unopened`) is held the same
way, from the claim that finds it on, and logged once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from dispatchers.breaker import BreakerPolicy, Breakers
from dispatchers.http import HttpResult
from dispatchers.model import (
    AttemptRecord,
    Claimed,
    DueDelivery,
    Recorded,
    StoreError,
    ValuesRefusedError,
)
from dispatchers.outcomes import Outcome, RetryAfterBounds, Verdict, decide
from dispatchers.signing import sign
from dispatchers.unopened import UnopenedSubscriptions

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/cloudevents+json"


class Sender(Protocol):
    def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> HttpResult: ...


class ClaimStore(Protocol):
    def claim(
        self, *, now: datetime, limit: int, lease_s: float, held: Sequence[uuid.UUID] = ()
    ) -> Claimed: ...

    def release(self, claimed: Sequence[DueDelivery]) -> None: ...

    def record_attempts(
        self,
        attempts: Sequence[tuple[AttemptRecord, Outcome]],
        *,
        now: datetime,
        disable_after: timedelta = ...,
    ) -> Recorded: ...


def webhook_headers(delivery: DueDelivery, *, timestamp: int) -> dict[str, str]:
    return {
        **dict(delivery.headers),  # the subscription's own; never one of those below
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


AttemptObserver = Callable[[DueDelivery, HttpResult, Outcome], None]
"""Told of every attempt recorded: the delivery, what the receiver said, what it means."""


def _ignore(delivery: DueDelivery, result: HttpResult, outcome: Outcome) -> None:
    pass


class Sent(NamedTuple):
    delivery: DueDelivery
    result: HttpResult
    outcome: Outcome
    started: datetime
    """The wall clock when the request started."""


@dataclass
class SendingLoop:
    store: ClaimStore
    sender: Sender
    now: Callable[[], datetime]
    retry_schedule_s: tuple[float, ...]
    retry_jitter: float
    claim_batch: int = 10
    lease_s: float = 60.0
    attempt_budget_s: float = 30.0
    """The longest an attempt can take (the sender's total timeout): no attempt starts unless it
    ends, at the latest, well inside its claim's lease (a tenth of the lease to spare), so no other
    worker claims a delivery while it is being sent."""
    idle_poll_s: float = 0.2
    slow_attempt_s: float = 1.0
    """An attempt slower than this gives the rest of its worker's claimed batch back."""
    retry_after: RetryAfterBounds = field(default_factory=RetryAfterBounds)
    disable_after: timedelta = timedelta(days=5)
    breakers: Breakers = field(default_factory=lambda: Breakers(BreakerPolicy()))
    clock: Callable[[], float] = time.monotonic
    """The breakers' clock (monotonic seconds); `now` is the wall clock stored in Postgres."""
    rand: Callable[[], float] = random.random
    stop: threading.Event = field(default_factory=threading.Event)
    on_attempt: AttemptObserver = _ignore
    beat: Callable[[], None] = lambda: None
    """Called once per turn (the liveness check: the worker is not stuck)."""
    on_late: Callable[[int], None] = lambda n: None
    """Told how many attempts were recorded after their claim had passed to another worker."""
    unopened: UnopenedSubscriptions = field(default_factory=UnopenedSubscriptions)
    """The subscriptions whose secrets do not open, held (shared by the process's workers)."""

    def run(self) -> None:
        refused: str | None = None
        while not self.stop.is_set():
            self.beat()
            try:
                if not self.run_once():
                    self.stop.wait(self.idle_poll_s)
                refused = None
            except StoreError as e:
                # Postgres restarting or unreachable: a claim whose attempt was not recorded is
                # claimed again when its lease runs out (the receiver may see it twice, with the
                # same webhook-id).
                log.warning("the store failed (%s); trying again shortly", e)
                self.stop.wait(max(1.0, self.idle_poll_s))
            except ValuesRefusedError as e:
                # Rows the database stored but refuses to read back or to update (values that
                # entered before a check existed): a bug to fix in the data, not a reason to stop
                # every subscription. Logged once while it lasts; the worker tries again slowly.
                if str(e) != refused:
                    log.error("the database refused a claim or its attempts: %s", e)  # noqa: TRY400 - no traceback: the statement is named
                    refused = str(e)
                self.stop.wait(max(5.0, self.idle_poll_s))

    def run_once(self) -> int:
        """Send one leased batch and record its attempts; return how many attempts were made."""
        held = [key for key in self.breakers.held(self.clock()) if isinstance(key, uuid.UUID)]
        held += self.unopened.held()
        claimed_at = self.clock()
        claimed = self.store.claim(
            now=self.now(), limit=self.claim_batch, lease_s=self.lease_s, held=held
        )
        for subscription, why in self.unopened.found(claimed.unopened).items():
            log.warning(
                "deliveries to subscription %s wait, untried, for a dispatcher that can open it: %s",
                subscription,
                why.reason,
            )
        due = claimed.deliveries
        send_until = claimed_at + 0.9 * self.lease_s - self.attempt_budget_s
        # Healthy endpoints first. Nothing waits behind an endpoint that may hang (not tried yet
        # by this process, or failing): the rest of the batch goes back before it is tried, and
        # after any attempt that took long.
        due.sort(key=lambda d: self.breakers.risk(d.subscription_id))
        sent: list[Sent] = []
        given_back: list[DueDelivery] = []
        made = 0
        try:
            for i, delivery in enumerate(due):
                if self.clock() > send_until:  # the lease could run out during the attempt
                    given_back.extend(due[i:])
                    break
                if self.stop.is_set() or not self.breakers.begin(
                    delivery.subscription_id, self.clock()
                ):
                    given_back.append(delivery)
                    continue
                last = False
                if self.breakers.risk(delivery.subscription_id):
                    done, sent = sent, []
                    self._record(done)
                    self.store.release([*given_back, *due[i + 1 :]])
                    given_back, last = [], True
                started = self.clock()
                sent.append(self._send(delivery))
                made += 1
                if last:
                    break
                if self.clock() - started > self.slow_attempt_s:
                    given_back.extend(due[i + 1 :])
                    break
        finally:
            # Recorded together (one transaction); a crash before this re-sends them after the
            # lease, with the same webhook-id.
            self._record(sent)
            if given_back:
                self.store.release(given_back)
        return made

    def _send(self, delivery: DueDelivery) -> Sent:
        started = self.now()
        success = False
        try:
            headers = webhook_headers(delivery, timestamp=int(started.timestamp()))
            result = self.sender.post(delivery.url, body=delivery.body, headers=headers)
            outcome = decide(
                status_code=result.status_code,
                attempt_number=delivery.round_attempt,
                now=self.now(),
                schedule_s=self.retry_schedule_s,
                jitter=self.retry_jitter,
                jitter_draw=self.rand(),
                retry_after=_header(result, "Retry-After"),
                retry_after_bounds=self.retry_after,
                refused=result.refused is not None,
            )
            success = outcome.verdict is Verdict.DELIVERED
        finally:
            self.breakers.end(delivery.subscription_id, success=success, now=self.clock())
        return Sent(delivery, result, outcome, started)

    def _record(self, sent: list[Sent]) -> None:
        if not sent:
            return
        attempts = [
            (
                AttemptRecord(
                    delivery_id=delivery.id,
                    claim=delivery.claim,
                    started_at=started,
                    duration_ms=result.duration_ms,
                    status_code=result.status_code,
                    response_headers=result.headers,
                    response_body=result.body,
                    error=result.error,
                ),
                outcome,
            )
            for delivery, result, outcome, started in sent
        ]
        recorded = self.store.record_attempts(
            attempts, now=self.now(), disable_after=self.disable_after
        )
        if recorded.late:
            self.on_late(recorded.late)
        for subscription, reason in recorded.disabled.items():
            log.warning("subscription %s disabled: %s", subscription, reason)
        for delivery, result, outcome, _ in sent:
            self.on_attempt(delivery, result, outcome)
            log.debug(
                "delivery %s attempt %d to %s: %s -> %s",
                delivery.id,
                delivery.attempt_number,
                delivery.url,
                result.status_code or result.error,
                outcome.verdict,
            )


def _header(result: HttpResult, name: str) -> str | None:
    for key, value in (result.headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None
