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


@dataclass(frozen=True)
class Wake:
    """Why a worker waiting for the doorbell woke: a ring. `share`: how many deliveries it should
    claim first (None: a whole batch)."""

    share: int | None = None


class _Sleeper:
    """One worker waiting for the doorbell, until a ring wakes it (and tells it its share)."""

    def __init__(self) -> None:
        self.woken = threading.Event()
        self.share: int | None = None


class Doorbell:
    """Wakes idle sending workers when deliveries are stored (by this process's consuming loop):
    a worker that found nothing due waits until the doorbell rings or `idle_poll_s` passes (the
    poll still finds what other replicas stored, and retries falling due). A ring for n
    deliveries that wakes k idle workers tells each its share, n/k rounded up (`Wake.share`): a
    worker that claimed the whole batch would send it one delivery after another while the others
    found nothing, and the last would wait for all before it. Each worker hears the share of the
    ring that woke it, and a worker a ring woke is not woken, or counted, again. Thread-safe."""

    def __init__(self) -> None:
        self._rung = 0
        self._sleepers: list[_Sleeper] = []
        """The workers waiting and not woken yet, the longest waiting first."""
        self._lock = threading.Lock()

    @property
    def rung(self) -> int:
        """How many times it has rung: a worker reads it before it claims."""
        with self._lock:
            return self._rung

    @property
    def waiting(self) -> int:
        """How many workers wait for it now (not woken yet)."""
        with self._lock:
            return len(self._sleepers)

    def ring(self, waking: int | None = None) -> None:
        """Wake up to `waking` idle workers (all of them if None), e.g. one per delivery stored,
        each told its share of the `waking` deliveries."""
        with self._lock:
            self._rung += 1
            count = len(self._sleepers) if waking is None else min(waking, len(self._sleepers))
            woken, self._sleepers = self._sleepers[:count], self._sleepers[count:]
            share = -(-waking // count) if waking is not None and count else None
            for sleeper in woken:
                sleeper.share = share
                sleeper.woken.set()

    def wait(self, since: int, timeout_s: float) -> Wake | None:
        """Wait until it rings after `since` (at once, for a whole batch, if it has) or
        `timeout_s` passes (None)."""
        with self._lock:
            if self._rung != since:
                return Wake()
            sleeper = _Sleeper()
            self._sleepers.append(sleeper)
        sleeper.woken.wait(timeout_s)
        with self._lock:  # a ring may have come since the wait timed out
            if not sleeper.woken.is_set():
                self._sleepers.remove(sleeper)
                return None
        return Wake(sleeper.share)


class GroupedAttempts:
    """The store, with the attempts several workers record at about the same time written in one
    transaction (group commit): a worker records each attempt before it starts the next, and
    returns once the transaction holding it has committed, so the guarantee is the same as one
    transaction per attempt at a fraction of the transactions under load. The worker that finds
    no transaction running writes its own and whatever others queued meanwhile; those wait for
    it. Shared by the process's workers; claims and releases go straight to the store."""

    def __init__(self, store: ClaimStore) -> None:
        self._store = store
        self._condition = threading.Condition(threading.Lock())
        self._queued: list[_Ticket] = []
        self._writing = False

    def claim(
        self, *, now: datetime, limit: int, lease_s: float, held: Sequence[uuid.UUID] = ()
    ) -> Claimed:
        return self._store.claim(now=now, limit=limit, lease_s=lease_s, held=held)

    def release(self, claimed: Sequence[DueDelivery]) -> None:
        self._store.release(claimed)

    def record_attempts(
        self,
        attempts: Sequence[tuple[AttemptRecord, Outcome]],
        *,
        now: datetime,
        disable_after: timedelta = timedelta(days=5),
    ) -> Recorded:
        """As the store's; `late` counts the group's once (told to one of its workers),
        `disabled` names every subscription the group's transaction disabled."""
        ticket = _Ticket(list(attempts), now, disable_after)
        with self._condition:
            self._queued.append(ticket)
            while self._writing and ticket.result is None:
                self._condition.wait()
            group: list[_Ticket] = []
            if ticket.result is None:
                group, self._queued, self._writing = self._queued, [], True
        if group:
            self._write(group)
        if isinstance(ticket.result, Recorded):
            return ticket.result
        raise ticket.result or StoreError("the attempts' transaction was interrupted")

    def _write(self, group: list[_Ticket]) -> None:
        results: Sequence[Recorded | Exception] = [
            StoreError("the attempts' transaction was interrupted")
        ] * len(group)
        try:
            results = self._results(group)
        finally:
            with self._condition:
                for ticket, result in zip(group, results, strict=True):
                    ticket.result = result
                self._writing = False
                self._condition.notify_all()

    def _results(self, group: list[_Ticket]) -> Sequence[Recorded | Exception]:
        """Each ticket's result: the group's transaction's (`late` counted once, told to the
        first), or its own when the database refused the group's values."""
        try:
            result = self._store.record_attempts(
                [attempt for ticket in group for attempt in ticket.attempts],
                now=max(ticket.now for ticket in group),
                disable_after=group[0].disable_after,
            )
        except ValuesRefusedError as e:
            if len(group) == 1:
                return [e]
            # One worker's refused values (a bug in the data: the same values can never be
            # stored) would fail every worker's attempts in the group, and each would be sent
            # again: each worker's attempts are recorded again alone (the group's transaction
            # rolled back whole), so only those with the refused values fail.
            return [self._alone(ticket) for ticket in group]
        except Exception as e:  # noqa: BLE001 - raised to every worker of the group, this one too
            return [e] * len(group)
        return [result] + [Recorded(result.disabled, late=0)] * (len(group) - 1)

    def _alone(self, ticket: _Ticket) -> Recorded | Exception:
        try:
            return self._store.record_attempts(
                ticket.attempts, now=ticket.now, disable_after=ticket.disable_after
            )
        except Exception as e:  # noqa: BLE001 - raised to that ticket's worker
            return e


@dataclass
class _Ticket:
    attempts: list[tuple[AttemptRecord, Outcome]]
    now: datetime
    disable_after: timedelta
    result: Recorded | Exception | None = None
    """Set once the transaction holding these attempts has ended: what it returned or raised."""


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
    doorbell: Doorbell = field(default_factory=Doorbell)
    """Rung when deliveries are stored (shared by the process's workers and its consuming loop):
    an idle worker looks again at once instead of after `idle_poll_s`."""

    def run(self) -> None:
        refused: str | None = None
        share: int | None = None  # the first claim after a ring takes this worker's share
        while not self.stop.is_set():
            self.beat()
            try:
                rung = self.doorbell.rung  # before the claim: a ring during it is not missed
                made, share = self.run_once(limit=share), None
                if not made and not self.stop.is_set():
                    woke = self.doorbell.wait(rung, self.idle_poll_s)
                    share = woke.share if woke else None
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

    def run_once(self, limit: int | None = None) -> int:
        """Send one leased batch (of at most `limit` deliveries, or `claim_batch`), recording each
        attempt as soon as it is made; return how many attempts were made."""
        held = [key for key in self.breakers.held(self.clock()) if isinstance(key, uuid.UUID)]
        held += self.unopened.held()
        claimed_at = self.clock()
        claimed = self.store.claim(
            now=self.now(),
            limit=min(limit or self.claim_batch, self.claim_batch),
            lease_s=self.lease_s,
            held=held,
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
        given_back: list[DueDelivery] = []
        disabled: set[uuid.UUID] = set()
        made = 0
        try:
            for i, delivery in enumerate(due):
                if self.clock() > send_until:  # the lease could run out during the attempt
                    given_back.extend(due[i:])
                    break
                if (
                    self.stop.is_set()
                    or delivery.subscription_id in disabled  # by an attempt of this batch
                    or not self.breakers.begin(delivery.subscription_id, self.clock())
                ):
                    given_back.append(delivery)
                    continue
                last = False
                if self.breakers.risk(delivery.subscription_id):
                    self.store.release([*given_back, *due[i + 1 :]])
                    given_back, last = [], True
                started = self.clock()
                # Recorded before the next attempt starts (one transaction each): a crash loses
                # no record of an attempt a receiver saw, except the one it interrupts, which is
                # sent again after the lease with the same webhook-id.
                sent = self._send(delivery)
                took = self.clock() - started
                disabled |= self._record([sent]).disabled.keys()
                made += 1
                if last:
                    break
                if took > self.slow_attempt_s:
                    given_back.extend(due[i + 1 :])
                    break
        finally:
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
                refused=result.permanent,
            )
            success = outcome.verdict is Verdict.DELIVERED
        finally:
            self.breakers.end(delivery.subscription_id, success=success, now=self.clock())
        return Sent(delivery, result, outcome, started)

    def _record(self, sent: list[Sent]) -> Recorded:
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
        mine = {delivery.subscription_id for delivery, _, _, _ in sent}
        for subscription, reason in recorded.disabled.items():
            if subscription in mine:  # (a grouped record names those of other workers' too)
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
        return recorded


def _header(result: HttpResult, name: str) -> str | None:
    for key, value in (result.headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None
