"""The delivery queue in Postgres: due deliveries leased to workers, and the attempts they made.

Claims are leases (`claimed_until`, with a `claim_token`), taken with `FOR UPDATE SKIP LOCKED`, so
several dispatcher replicas share the work and the rows of a replica that died are claimed again
once the lease runs out. A rate-limited subscription's token bucket (`dispatchers.throttling`) lives
on its row. Recording attempts moves deliveries on and keeps endpoint health
(`dispatchers.health` decides; this applies it).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from dispatchers import health
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
from dispatchers.postgres import ordering
from dispatchers.postgres.database import Database
from dispatchers.sealing import Opened, Unopened
from dispatchers.storable import storable_json, storable_text
from dispatchers.throttling import Bucket

log = logging.getLogger(__name__)

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


class PgQueue(DeliveryQueue):
    def __init__(self, db: Database) -> None:
        self._db = db

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
        with self._db.cursor() as cur:
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
                    opened[sub] = self._db.opened(sub, row)
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
        with self._db.cursor() as cur:
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

    def record_attempts(
        self,
        attempts: Sequence[tuple[AttemptRecord, Outcome]],
        *,
        now: datetime,
        disable_after: timedelta = DISABLE_AFTER,
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
        # Pipelined: BEGIN and the lock go out together (the one result read before the end),
        # then the writes and COMMIT together; a round trip more only to disable a subscription.
        with self._db.cursor(pipelined=True) as cur:
            # Locked in id order, so two workers recording overlapping batches cannot deadlock.
            cur.execute(
                "SELECT id, subscription_id, object_key, attempt_count, claim_token, status"
                " FROM deliveries WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                (list({a.delivery_id for a, _ in attempts}),),
            )
            rows = {r["id"]: r for r in cur.fetchall()}
            logged: list[tuple[AttemptRecord, Outcome, int]] = []
            moved: dict[uuid.UUID, tuple[AttemptRecord, Outcome]] = {}
            for attempt, outcome in attempts:
                row = rows.get(attempt.delivery_id)
                if row is None:  # cleaned up meanwhile
                    continue
                row["attempt_count"] += 1
                logged.append((attempt, outcome, row["attempt_count"]))
                if row["claim_token"] == attempt.claim and row["status"] in OPEN:
                    row["claim_token"] = None
                    moved[attempt.delivery_id] = (attempt, outcome)
                else:
                    log.info(
                        "attempt %d of delivery %s recorded after its claim passed on",
                        row["attempt_count"],
                        attempt.delivery_id,
                    )
            if logged:
                cur.execute(_INSERT_ATTEMPTS, _attempt_columns(logged))
                cur.execute(_MOVE_ON, _delivery_columns(rows, moved, now))
            # A delivery that ended (delivered, failed for good) hands its object's head on.
            ordering.promote(
                cur,
                {
                    (rows[id_]["subscription_id"], rows[id_]["object_key"])
                    for id_, (_, o) in moved.items()
                    if STATUS[o.verdict] not in OPEN
                },
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
        """Apply `health`'s judgement of the attempts' subscriptions, in one statement (two or
        three more for each one disabled). It locks, in id order (as every statement locking
        several subscriptions does, so two recorders cannot deadlock), only the rows it may
        change: the failing and gone subscriptions, and the recovered ones still marked failing;
        a success to a healthy subscription (the usual attempt) locks and writes nothing."""
        summary = health.summarise(
            [(a.started_at, o.verdict, subscription_of.get(a.delivery_id)) for a, o in attempts]
        )
        if not summary:
            return {}
        subs = sorted(summary)
        cur.execute(
            _HEALTH,
            (
                subs,
                [summary[sub].recovered for sub in subs],
                [summary[sub].gone for sub in subs],
                [summary[sub].succeeded for sub in subs],
                [summary[sub].first_failure for sub in subs],
            ),
        )
        judged = [sub for sub in subs if not summary[sub].recovered or summary[sub].gone]
        if not judged:  # only recoveries: nothing to read back, nothing to disable
            return {}
        failing = {row["id"]: row["failing_since"] for row in cur.fetchall()}
        disabled: dict[uuid.UUID, str] = {}
        for sub in judged:  # in id order; their rows are locked already
            reason = health.disable_reason(
                summary[sub],
                None if summary[sub].gone else failing.get(sub),
                now=now,
                disable_after=disable_after,
            )
            if reason is None:
                continue
            cur.execute(
                "UPDATE subscriptions SET enabled = false, disabled_reason = %s,"
                " disabled_at = %s, updated_at = %s WHERE id = %s AND enabled RETURNING id",
                (reason, now, now, sub),
            )
            if cur.fetchall():
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


# Every attempt logged, numbered as `record_attempts` worked out, in one statement.
_INSERT_ATTEMPTS = """
    INSERT INTO attempts (delivery_id, attempt_number, started_at, duration_ms, status_code,
                          response_headers, response_body, error)
    SELECT * FROM unnest(%s::uuid[], %s::int[], %s::timestamptz[], %s::int[], %s::int[],
                         %s::jsonb[], %s::text[], %s::text[])
"""
# Every delivery recorded: its attempts counted; the one whose claim an attempt held (`moved`)
# moved on by that attempt's outcome, its claim let go.
_MOVE_ON = """
    UPDATE deliveries d SET
        attempt_count = GREATEST(d.attempt_count, c.n),
        status = CASE WHEN c.moved THEN c.status ELSE d.status END,
        next_attempt_at = CASE WHEN c.moved THEN c.retry_at ELSE d.next_attempt_at END,
        claimed_until = CASE WHEN c.moved THEN NULL ELSE d.claimed_until END,
        claim_token = CASE WHEN c.moved THEN NULL ELSE d.claim_token END,
        updated_at = CASE WHEN c.moved THEN %(now)s ELSE d.updated_at END,
        last_status_code = CASE WHEN c.moved THEN c.code ELSE d.last_status_code END,
        last_error = CASE WHEN c.moved THEN c.error ELSE d.last_error END,
        delivered_at = CASE WHEN c.moved AND c.status = 'delivered' THEN c.done
                            ELSE d.delivered_at END
    FROM unnest(%(ids)s::uuid[], %(n)s::int[], %(moved)s::bool[], %(status)s::text[],
                %(retry_at)s::timestamptz[], %(code)s::int[], %(error)s::text[],
                %(done)s::timestamptz[]) AS c(id, n, moved, status, retry_at, code, error, done)
    WHERE d.id = c.id
"""
# The failure streaks (`health.Health.failing_since`, worked out on the locked rows): a recovered
# subscription's cleared (locked only if it was set), a failing one's started if none runs, or
# restarted at its first failure after a success; a gone one's otherwise kept (it is disabled). Every row
# that may change is locked first, in id order. Returns the streak of each row it locked.
_HEALTH = """
    WITH j AS (
        SELECT * FROM unnest(%s::uuid[], %s::bool[], %s::bool[], %s::bool[], %s::timestamptz[])
            AS j(id, recovered, gone, succeeded, first_failure)
    ), locked AS (
        SELECT s.id, j.recovered, j.gone, j.succeeded, j.first_failure
        FROM subscriptions s JOIN j ON j.id = s.id
        WHERE NOT j.recovered OR j.gone OR s.failing_since IS NOT NULL
        ORDER BY s.id
        FOR NO KEY UPDATE OF s
    )
    UPDATE subscriptions s SET failing_since = CASE
        WHEN l.recovered THEN NULL
        WHEN l.gone THEN s.failing_since
        WHEN l.succeeded THEN l.first_failure
        ELSE COALESCE(s.failing_since, l.first_failure) END
    FROM locked l WHERE s.id = l.id
    RETURNING s.id, s.failing_since
"""


def _attempt_columns(logged: Sequence[tuple[AttemptRecord, Outcome, int]]) -> list[list[Any]]:
    return [
        [a.delivery_id for a, _, _ in logged],
        [n for _, _, n in logged],
        [a.started_at for a, _, _ in logged],
        [a.duration_ms for a, _, _ in logged],
        [a.status_code for a, _, _ in logged],
        [
            Jsonb(storable_json(a.response_headers)) if a.response_headers is not None else None
            for a, _, _ in logged
        ],
        [_storable(a.response_body) for a, _, _ in logged],
        [_storable(a.error) for a, _, _ in logged],
    ]


def _delivery_columns(
    rows: dict[uuid.UUID, dict[str, Any]],
    moved: dict[uuid.UUID, tuple[AttemptRecord, Outcome]],
    now: datetime,
) -> dict[str, Any]:
    ids = list(rows)
    by = [moved.get(id_) for id_ in ids]
    return {
        "now": now,
        "ids": ids,
        "n": [rows[id_]["attempt_count"] for id_ in ids],
        "moved": [m is not None for m in by],
        "status": [None if m is None else STATUS[m[1].verdict] for m in by],
        "retry_at": [None if m is None else m[1].retry_at for m in by],
        "code": [None if m is None else m[0].status_code for m in by],
        "error": [None if m is None else _storable(m[0].error) for m in by],
        "done": [
            None if m is None else m[0].started_at + timedelta(milliseconds=m[0].duration_ms)
            for m in by
        ],
    }


def _storable(text: str | None) -> str | None:
    """What a receiver said (or the error about it), as Postgres text can hold it."""
    return None if text is None else storable_text(text)
