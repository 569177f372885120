"""The event store in Postgres: each event read once (the exact bytes, also those no subscription
wants now, for `replay`), numbered in the order it arrived, and one pending delivery per wanted
subscription. Claims and attempts are the queue's (`dispatchers.postgres.queue`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from psycopg.types.json import Jsonb

from dispatchers.model import EventStore, Row, StoredBatch, Subscription, cloudevent, replays_to
from dispatchers.postgres import ordering
from dispatchers.postgres.database import Database
from dispatchers.storable import storable_json, storable_text


class PgEvents(EventStore):
    def __init__(self, db: Database) -> None:
        self._db = db

    def record_batch(
        self,
        batch: Sequence[Row],
        *,
        now: datetime,
    ) -> StoredBatch:
        """Store each event once (the exact UTF-8 bytes read, as text: what is sent; also events no
        subscription wants now, for `replay`) and one pending delivery per subscription, in one
        transaction.

        Repeats (the same event id and subscription) are absorbed. An event is known by its id
        alone, so an event whose id is stored already as another source's (two producers using
        the same ids) gets nothing stored and is returned in `taken`: its deliveries would send
        the other event's body. Raises ValuesRefusedError if the database refuses a value of the
        batch (nothing is stored).
        """
        rows = [(cloudevent(event, body), body, subs) for event, body, subs in batch]
        if not rows:
            return StoredBatch(0, {})
        with self._db.cursor() as cur:
            cur.executemany(
                "INSERT INTO events (id, type, source, object_key, time, payload, body)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                [
                    (
                        event.id,
                        event.type,
                        storable_text(event.source),
                        event.key,
                        event.time or now,  # a producer may leave `time` out: then, when read
                        Jsonb(storable_json(dict(event.attributes))),
                        body.decode(),
                    )
                    for event, body, _ in rows
                ],
            )
            # Read after the insert, in the same transaction: a concurrent insert of the same id
            # has committed by now (the insert waited for it), so this sees whose id it is.
            cur.execute(
                "SELECT id, source FROM events WHERE id = ANY(%s)", ([e.id for e, _, _ in rows],)
            )
            sources = {row["id"]: row["source"] for row in cur.fetchall()}
            taken = {
                i: sources[event.id]
                for i, (event, _, _) in enumerate(rows)
                if sources.get(event.id, storable_text(event.source)) != storable_text(event.source)
            }
            deliveries = [
                (e, sub) for i, (e, _, subs) in enumerate(rows) if i not in taken for sub in subs
            ]
            if not deliveries:
                return StoredBatch(0, taken)
            ordered = ordering.queueing(cur, {sub for _, sub in deliveries})
            ordering.lock_heads(cur, {(sub, e.key) for e, sub in deliveries if sub in ordered})
            # One statement for the batch's deliveries, in topic order (their `seq` orders one
            # object's deliveries); RETURNING gives the new ones only. An ordered subscription's
            # wait behind its object's open delivery, or the batch's earlier one (if that was a
            # repeat of a finished one, the next becomes the head, below); a disabled
            # subscription's are parked.
            cur.execute(
                "INSERT INTO deliveries (id, event_id, subscription_id, object_key, status,"
                " next_attempt_at, parked, waiting)"
                " SELECT t.id, t.event_id, t.subscription_id, t.object_key, 'pending', %(now)s,"
                " NOT COALESCE(s.enabled, true), t.ordered AND ("
                "   row_number() OVER (PARTITION BY t.subscription_id, t.object_key"
                "                      ORDER BY t.ord) > 1"
                # A probe per row (a scalar subquery: an EXISTS could be run hashed, over every
                # open delivery).
                "   OR (SELECT true FROM deliveries e WHERE e.subscription_id = t.subscription_id"
                "       AND e.object_key = t.object_key"
                "       AND e.status IN ('pending', 'retrying') LIMIT 1) IS NOT NULL)"
                " FROM unnest(%(ids)s::uuid[], %(events)s::text[], %(subs)s::uuid[],"
                " %(keys)s::text[], %(waiting)s::bool[]) WITH ORDINALITY AS t(id, event_id,"
                " subscription_id, object_key, ordered, ord)"
                " LEFT JOIN subscriptions s ON s.id = t.subscription_id"
                " ORDER BY t.ord"
                " ON CONFLICT (event_id, subscription_id) DO NOTHING"
                " RETURNING id, subscription_id, object_key, waiting",
                {
                    "now": now,
                    "ids": [uuid.uuid4() for _ in deliveries],
                    "events": [e.id for e, _ in deliveries],
                    "subs": [sub for _, sub in deliveries],
                    "keys": [e.key for e, _ in deliveries],
                    "waiting": [sub in ordered for _, sub in deliveries],
                },
            )
            created = cur.fetchall()
            ordering.promote(
                cur, {(r["subscription_id"], r["object_key"]) for r in created if r["waiting"]}
            )
            return StoredBatch(len(created), taken)

    def replay(
        self,
        subscription: Subscription,
        *,
        since: datetime,
        until: datetime | None,
        now: datetime,
        page: int = 500,
    ) -> int:
        """Queue for `subscription` every stored event observed in [since, until) that its filters
        match and that it has no delivery of yet, in the order they arrived (so an ordered
        subscription gets one object's events in the order the domain topic gave them); return how
        many. A page of events per transaction."""
        queued = 0
        after = 0
        while True:
            with self._db.cursor() as cur:
                cur.execute(
                    "SELECT id, object_key, seq, body FROM events"
                    " WHERE seq > %(after)s AND time >= %(since)s"
                    " AND (%(until)s::timestamptz IS NULL OR time < %(until)s)"
                    " ORDER BY seq LIMIT %(page)s",
                    {"after": after, "since": since, "until": until, "page": page},
                )
                rows = cur.fetchall()
                if not rows:
                    return queued
                after = rows[-1]["seq"]
                wanted = [
                    r
                    for r in rows
                    if replays_to(
                        subscription, event_id=r["id"], body=r["body"], object_key=r["object_key"]
                    )
                ]
                if wanted:
                    # Queued like consumed ones (parked, waiting behind their object's head), and
                    # marked replayed (not first deliveries, for the end-to-end latency).
                    ordered = bool(ordering.queueing(cur, [subscription.id]))
                    if ordered:
                        ordering.lock_heads(
                            cur, {(subscription.id, r["object_key"]) for r in wanted}
                        )
                    cur.execute(
                        "INSERT INTO deliveries (id, event_id, subscription_id, object_key, status,"
                        " next_attempt_at, parked, waiting, replayed)"
                        " SELECT t.id, t.event_id, %(sub)s, t.object_key, 'pending', %(now)s,"
                        " NOT COALESCE(s.enabled, true), %(ordered)s, true"
                        " FROM unnest(%(ids)s::uuid[], %(events)s::text[], %(keys)s::text[])"
                        " WITH ORDINALITY AS t(id, event_id, object_key, ord)"
                        " LEFT JOIN subscriptions s ON s.id = %(sub)s ORDER BY t.ord"
                        " ON CONFLICT (event_id, subscription_id) DO NOTHING"
                        " RETURNING id, object_key",
                        {
                            "sub": subscription.id,
                            "now": now,
                            "ordered": ordered,
                            "ids": [uuid.uuid4() for _ in wanted],
                            "events": [r["id"] for r in wanted],
                            "keys": [r["object_key"] for r in wanted],
                        },
                    )
                    created = cur.fetchall()
                    if ordered:
                        ordering.promote(cur, {(subscription.id, r["object_key"]) for r in created})
                    queued += len(created)
            if len(rows) < page:
                return queued
