"""How deliveries are queued in Postgres so that a claim reads only what it could take (migration
0009, issue 14): a disabled subscription's open deliveries are parked, and an ordered
subscription's later events about an object wait behind its head (its first open delivery) outside
the claims' partial indexes. Shared by what queues deliveries (`events`: record_batch, replay), what
finishes them (`queue`: record_attempts), what opens them again (`deliveries`: redeliver, recover)
and what parks them (`subscriptions`: set_enabled, update)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

# Each (subscription, object)'s head: its first open delivery stops waiting. Read through
# `deliveries_waiting` (an object with nothing waiting costs one probe of it), then, only for an
# object with one waiting, `deliveries_heads` (is an earlier one open and not waiting?): never the
# finished deliveries' dead index entries, nor the deliveries behind the first waiting one.
PROMOTE = """
    UPDATE deliveries d SET waiting = false
    FROM unnest(%(subs)s::uuid[], %(keys)s::text[]) AS p(sub, key)
    CROSS JOIN LATERAL (
        SELECT e.id, e.seq FROM deliveries e
        WHERE e.subscription_id = p.sub AND e.object_key = p.key
          AND e.status IN ('pending', 'retrying') AND e.waiting
        ORDER BY e.seq LIMIT 1
    ) h
    WHERE d.id = h.id AND d.waiting
      AND (SELECT true FROM deliveries f
           WHERE f.subscription_id = p.sub AND f.object_key = p.key
             AND f.status IN ('pending', 'retrying') AND NOT f.waiting AND f.seq < h.seq
           LIMIT 1) IS NULL
"""
# After an earlier delivery was opened again (redeliver, recover): the open deliveries behind each
# head that are not waiting wait again (read through `deliveries_heads`: at most a few).
DEMOTE = """
    UPDATE deliveries d SET waiting = true
    FROM unnest(%(subs)s::uuid[], %(keys)s::text[]) AS p(sub, key)
    CROSS JOIN LATERAL (
        SELECT e.seq FROM deliveries e
        WHERE e.subscription_id = p.sub AND e.object_key = p.key
          AND e.status IN ('pending', 'retrying')
        ORDER BY e.seq LIMIT 1
    ) h
    WHERE d.subscription_id = p.sub AND d.object_key = p.key
      AND d.status IN ('pending', 'retrying') AND NOT d.waiting AND d.seq > h.seq
"""
# Before queueing deliveries behind an object's head (or reopening an earlier one), the heads are
# row-locked, in id order (as `record_attempts` locks the deliveries it records): a head cannot
# finish unseen by a delivery queued behind it meanwhile (whichever commits second sees the other's
# rows and moves the head on). Rows, not advisory locks: a batch may name thousands of objects.
LOCK_HEADS = """
    SELECT id FROM deliveries WHERE id IN (
        SELECT h.id FROM unnest(%(subs)s::uuid[], %(keys)s::text[]) AS p(sub, key)
        CROSS JOIN LATERAL (
            SELECT e.id FROM deliveries e
            WHERE e.subscription_id = p.sub AND e.object_key = p.key
              AND e.status IN ('pending', 'retrying')
            ORDER BY e.seq LIMIT 1
        ) h)
    ORDER BY id FOR UPDATE
"""
# Per subscription, shared by what queues deliveries, exclusive for `set_enabled`: no delivery is
# queued parked after its subscription was enabled (or the other way round).
_LOCK_SUBSCRIPTIONS = (
    "SELECT count(pg_advisory_xact_lock_shared(%s::int, k)) FROM unnest(%s::int[]) AS k"
)
_ENABLING_LOCK = 0x48455245  # "HERE": the class of the per-subscription locks above

Cursor = psycopg.Cursor[dict[str, Any]]


def _subscription_keys(subscriptions: Iterable[uuid.UUID]) -> list[int]:
    return sorted({int.from_bytes(sub.bytes[:4], signed=True) for sub in subscriptions})


def lock_enabling(cur: Cursor, subscription: uuid.UUID) -> None:
    """Exclusive (for `set_enabled`): nothing queues a delivery of it meanwhile (parked by a
    stale reading)."""
    cur.execute(
        "SELECT pg_advisory_xact_lock(%s::int, %s::int)",
        (_ENABLING_LOCK, _subscription_keys([subscription])[0]),
    )


def queueing(cur: Cursor, subscriptions: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Before queueing deliveries of these subscriptions: hold off their enabling and disabling
    (`set_enabled`) until the transaction ends; return the ordered ones."""
    subs = sorted(set(subscriptions))
    cur.execute(_LOCK_SUBSCRIPTIONS, (_ENABLING_LOCK, _subscription_keys(subs)))
    cur.execute("SELECT id FROM subscriptions WHERE id = ANY(%s) AND ordered", (subs,))
    return {row["id"] for row in cur.fetchall()}


def lock_heads(cur: Cursor, pairs: Iterable[tuple[uuid.UUID, str]]) -> None:
    listed = sorted(pairs)
    if listed:
        cur.execute(
            LOCK_HEADS, {"subs": [sub for sub, _ in listed], "keys": [key for _, key in listed]}
        )


def promote(cur: Cursor, pairs: Iterable[tuple[uuid.UUID, str]]) -> None:
    """Make each (subscription, object)'s first open delivery its head (claimable). The caller
    holds the heads' locks (`lock_heads`), or the finished heads'."""
    listed = sorted(pairs)
    if listed:
        # Its generic plan (per-pair index probes) always: with one object's deliveries a large
        # share of the table, the planner would otherwise plan it anew each time.
        cur.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cur.execute(
            PROMOTE, {"subs": [sub for sub, _ in listed], "keys": [key for _, key in listed]}
        )
        cur.execute("RESET plan_cache_mode")


def reopen(cur: Cursor, subscription: uuid.UUID, keys: Sequence[str]) -> None:
    """Before opening deliveries of `subscription` about these objects again: the locks."""
    queueing(cur, [subscription])
    lock_heads(cur, {(subscription, key) for key in keys})


def reopened(cur: Cursor, subscription: uuid.UUID, keys: Sequence[str]) -> None:
    """After: each object's first open delivery is its head, and for an ordered subscription the
    open ones behind it wait (for an unordered one, none waits)."""
    params = {"subs": [subscription] * len(keys), "keys": list(keys)}
    cur.execute(PROMOTE, params)
    cur.execute("SELECT ordered FROM subscriptions WHERE id = %s", (subscription,))
    row = cur.fetchone()
    if row is not None and row["ordered"]:
        cur.execute(DEMOTE, params)
    else:
        cur.execute(
            "UPDATE deliveries SET waiting = false WHERE subscription_id = %s"
            " AND object_key = ANY(%s) AND status IN ('pending', 'retrying') AND waiting",
            (subscription, list(keys)),
        )
