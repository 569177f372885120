"""The event store in Postgres: each event read once (the exact bytes, also those no subscription
wants now, for `replay`), numbered in the order it arrived, and one pending delivery per wanted
subscription. Claims and attempts are the queue's (`dispatchers.postgres.queue`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from psycopg.types.json import Jsonb

from dispatchers.model import EventStore, Row, StoredBatch, Subscription, cloudevent, replays_to
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
            # One statement for the batch's deliveries, in topic order (their `seq` orders one
            # object's deliveries); RETURNING gives the new ones only.
            cur.execute(
                "INSERT INTO deliveries (id, event_id, subscription_id, object_key, status,"
                " next_attempt_at)"
                " SELECT t.id, t.event_id, t.subscription_id, t.object_key, 'pending', %(now)s"
                " FROM unnest(%(ids)s::uuid[], %(events)s::text[], %(subs)s::uuid[],"
                " %(keys)s::text[]) WITH ORDINALITY AS t(id, event_id, subscription_id,"
                " object_key, ord)"
                " ORDER BY t.ord"
                " ON CONFLICT (event_id, subscription_id) DO NOTHING RETURNING id",
                {
                    "now": now,
                    "ids": [uuid.uuid4() for _ in deliveries],
                    "events": [e.id for e, _ in deliveries],
                    "subs": [sub for _, sub in deliveries],
                    "keys": [e.key for e, _ in deliveries],
                },
            )
            return StoredBatch(len(cur.fetchall()), taken)

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
                    cur.execute(
                        "INSERT INTO deliveries (id, event_id, subscription_id, object_key, status,"
                        " next_attempt_at)"
                        " SELECT t.id, t.event_id, %(sub)s, t.object_key, 'pending', %(now)s"
                        " FROM unnest(%(ids)s::uuid[], %(events)s::text[], %(keys)s::text[])"
                        " WITH ORDINALITY AS t(id, event_id, object_key, ord) ORDER BY t.ord"
                        " ON CONFLICT (event_id, subscription_id) DO NOTHING RETURNING id",
                        {
                            "sub": subscription.id,
                            "now": now,
                            "ids": [uuid.uuid4() for _ in wanted],
                            "events": [r["id"] for r in wanted],
                            "keys": [r["object_key"] for r in wanted],
                        },
                    )
                    queued += len(cur.fetchall())
            if len(rows) < page:
                return queued
