"""The delivery queue in memory (`dispatchers.postgres.queue`' twin): leases, rate limits, attempts."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

from dispatchers import health
from dispatchers.memory.tables import Delivery, Tables
from dispatchers.model import (
    DISABLE_AFTER,
    OPEN,
    STATUS,
    AttemptRecord,
    Claimed,
    DeliveryQueue,
    DueDelivery,
    Recorded,
)
from dispatchers.outcomes import Outcome
from dispatchers.sealing import Opened, Unopened
from dispatchers.storable import storable_json, storable_text
from dispatchers.throttling import Bucket

log = logging.getLogger(__name__)


class MemoryQueue(DeliveryQueue):
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    def _due(self, now: datetime) -> list[Delivery]:
        """Open, their time come, not leased, and no earlier open one about the same object for an
        ordered subscription (its head: the Postgres queue keeps the others `waiting`); oldest due
        first. A disabled subscription's (parked there) are left out by `claim`."""
        open_ = sorted(
            (d for d in self._t.deliveries.values() if d.status in OPEN),
            key=lambda d: d.seq,
        )
        first: dict[tuple[uuid.UUID, str], int] = {}
        for d in open_:
            first.setdefault((d.subscription_id, d.object_key), d.seq)
        subs = self._t.subscriptions
        due = [
            d
            for d in open_
            if d.next_attempt_at is not None
            and d.next_attempt_at <= now
            and (d.claimed_until is None or d.claimed_until < now)
            and (
                not subs[d.subscription_id].ordered
                or first[(d.subscription_id, d.object_key)] == d.seq
            )
        ]
        return sorted(due, key=lambda d: (d.next_attempt_at, d.seq))

    def _buckets(
        self, *, now: datetime | None, held: Sequence[uuid.UUID] = ()
    ) -> dict[uuid.UUID, Bucket]:
        buckets = {
            s.id: s.bucket or Bucket(s.rate_limit_per_s)
            for s in self._t.subscriptions.values()
            if s.rate_limit_per_s is not None and s.enabled and s.id not in held
        }
        return buckets if now is None else {sub: b.at(now) for sub, b in buckets.items()}

    def claim(
        self, *, now: datetime, limit: int, lease_s: float, held: Sequence[uuid.UUID] = ()
    ) -> Claimed:
        claim = uuid.uuid4()
        with self._t.lock:
            buckets = self._buckets(now=now, held=held)
            allowed = {sub: b.whole for sub, b in buckets.items() if b.whole > 0}
            due = self._due(now)
            throttled: list[Delivery] = []
            for sub, n in allowed.items():
                throttled += [d for d in due if d.subscription_id == sub][:n]
            throttled = sorted(throttled, key=lambda d: (d.next_attempt_at, d.seq))[:limit]
            subs = self._t.subscriptions
            free = [
                d
                for d in due
                if subs[d.subscription_id].enabled
                and subs[d.subscription_id].rate_limit_per_s is None
                and d.subscription_id not in held
            ]
            rows = throttled + free[: max(0, limit - len(throttled))]
            opened: dict[uuid.UUID, Opened | Unopened] = {}
            for d in rows:
                row = subs[d.subscription_id]
                if row.id not in opened:
                    opened[row.id] = self._t.opened(row, row.signing(now))
            unopened = {sub: o for sub, o in opened.items() if isinstance(o, Unopened)}
            signing = {sub: o for sub, o in opened.items() if isinstance(o, Opened)}
            chosen = [d for d in rows if d.subscription_id in signing]
            spent = Counter(d.subscription_id for d in chosen)
            for sub_id, b in buckets.items():
                subs[sub_id].bucket = b.spend(spent[sub_id])
            leased: list[DueDelivery] = []
            for d in chosen:
                d.claimed_until, d.claim_token, d.updated_at = (
                    now + timedelta(seconds=lease_s),
                    claim,
                    now,
                )
                event = self._t.events[d.event_id]
                opened_for = signing[d.subscription_id]
                leased.append(
                    DueDelivery(
                        id=d.id,
                        event_id=d.event_id,
                        subscription_id=d.subscription_id,
                        url=subs[d.subscription_id].url,
                        secrets=opened_for.secrets,
                        body=event.body.encode(),
                        attempt_number=d.attempt_count + 1,
                        round_attempt=d.attempt_count - d.round_start + 1,
                        claim=claim,
                        headers=opened_for.headers,
                        event_time=event.time,
                        first_delivery=not d.replayed and d.round_start == 0,
                    )
                )
            return Claimed(leased, unopened)

    def release(self, claimed: Sequence[DueDelivery]) -> None:
        with self._t.lock:
            released: Counter[uuid.UUID] = Counter()
            for due in claimed:
                d = self._t.deliveries.get(due.id)
                if d is not None and d.claim_token == due.claim:
                    d.claimed_until = d.claim_token = None
                    released[d.subscription_id] += 1
            for sub, b in self._buckets(now=None).items():
                if released[sub]:
                    self._t.subscriptions[sub].bucket = b.refund(released[sub])

    def record_attempts(
        self,
        attempts: Sequence[tuple[AttemptRecord, Outcome]],
        *,
        now: datetime,
        disable_after: timedelta = DISABLE_AFTER,
    ) -> Recorded:
        with self._t.lock:
            late = 0
            of: dict[uuid.UUID, uuid.UUID] = {}
            for a, outcome in attempts:
                d = self._t.deliveries.get(a.delivery_id)
                if d is None:  # cleaned up meanwhile
                    continue
                of[d.id] = d.subscription_id
                d.attempt_count += 1
                d.attempts.append(
                    {
                        "attempt_number": d.attempt_count,
                        "started_at": a.started_at,
                        "duration_ms": a.duration_ms,
                        "status_code": a.status_code,
                        "response_headers": (
                            None
                            if a.response_headers is None
                            else storable_json(a.response_headers)
                        ),
                        "response_body": _storable(a.response_body),
                        "error": _storable(a.error),
                    }
                )
                if d.claim_token != a.claim or d.status not in OPEN:
                    log.info(
                        "attempt %d of delivery %s recorded after its claim passed on",
                        d.attempt_count,
                        a.delivery_id,
                    )
                    late += 1
                    continue
                d.status, d.next_attempt_at = STATUS[outcome.verdict], outcome.retry_at
                d.claimed_until = d.claim_token = None
                d.updated_at, d.last_status_code, d.last_error = (
                    now,
                    a.status_code,
                    _storable(a.error),
                )
                if d.status == "delivered":
                    d.delivered_at = a.started_at + timedelta(milliseconds=a.duration_ms)
            if not of:
                return Recorded(disabled={}, late=late)
            summary = health.summarise(
                [(a.started_at, o.verdict, of.get(a.delivery_id)) for a, o in attempts]
            )
            return Recorded(disabled=self._keep_health(summary, now, disable_after), late=late)

    def _keep_health(
        self, summary: dict[uuid.UUID, health.Health], now: datetime, disable_after: timedelta
    ) -> dict[uuid.UUID, str]:
        disabled: dict[uuid.UUID, str] = {}
        for sub_id, judged in sorted(summary.items()):
            sub = self._t.subscriptions.get(sub_id)
            if sub is None:
                continue
            if judged.recovered or (judged.first_failure is not None and not judged.gone):
                sub.failing_since = judged.failing_since(sub.failing_since)
            failing = None if judged.recovered else sub.failing_since
            reason = health.disable_reason(judged, failing, now=now, disable_after=disable_after)
            if reason is not None and sub.enabled:
                sub.enabled, sub.disabled_reason = False, reason
                sub.disabled_at = sub.updated_at = now
                disabled[sub_id] = reason
        return disabled


def _storable(text: str | None) -> str | None:
    """As Postgres holds it (`dispatchers.storable`): what the twin shows must be the same."""
    return None if text is None else storable_text(text)
