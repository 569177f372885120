"""Claim-path backlog benchmark: claims per second with and without a backlog the claims must skip.

    .venv/bin/python bench/claims.py [--seconds 15] [--backlog 100000] [--batch 10]

Through the `Store` API, as the dispatcher's sending loop does (`dispatchers.sending`): claim a
batch of due deliveries, record a successful attempt for each, repeat, for `--seconds`, over a
steady flow of claimable deliveries (one per object, for an ordered subscription). Four cases, each
in a fresh database:
(a) no backlog;
(b) `--backlog` deliveries pending for a disabled subscription;
(c) `--backlog` later events of one object queued behind a retrying one, for an ordered
    subscription (they wait while the earlier one is open);
(d) one idle rate-limited subscription (no deliveries).
It prints deliveries claimed per second (and claims, batches, per second) and each case's ratio to
(a). It starts its own Postgres (`herald_dev.infra`) unless HERALD_DATABASE_URL is set. The figures
are wall-clock on this machine: run it several times and compare the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dispatchers.matching import SubscriptionFilter  # noqa: E402
from dispatchers.model import AttemptRecord  # noqa: E402
from dispatchers.outcomes import Outcome, Verdict  # noqa: E402
from dispatchers.postgres import Store  # noqa: E402
from dispatchers.postgres import queue as pg_queue  # noqa: E402
from herald_contracts import DomainEvent, encode_domain_event  # noqa: E402
from herald_dev import infra  # noqa: E402

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 (a test vector)
FLOW = 40_000  # claimable deliveries queued for the measured subscription (more than it can take)
CHUNK = 5_000  # events per `record_batch` building a backlog
FLOW_CHUNK = 500  # events per `record_batch` of the flow: the consumer's largest batch


def now() -> datetime:
    return datetime.now(UTC)


def event(name: str, n: int, *, obj: str) -> tuple[DomainEvent, bytes]:
    e = DomainEvent(
        id=f"{name}-{n}",
        source=f"/clusters/c/namespaces/bench/rollouts/{obj}",
        type="dev.herald.rollout.step_advanced",
        subject=obj,
        time="2026-11-30T09:00:00Z",
        data={"cluster": "c", "namespace": "bench", "name": obj, "step_index": n},
        key=f"c/bench/Rollout/{obj}",
    )
    return e, encode_domain_event(e)


def subscribe(store: Store, *, ordered: bool = True, rate: float | None = None) -> uuid.UUID:
    return store.subscriptions.create(
        url="http://127.0.0.1:9/hooks",
        secrets=[SECRET],
        filter=SubscriptionFilter(),
        ordered=ordered,
        rate_limit_per_s=rate,
    )


def queue(
    store: Store,
    subscription: uuid.UUID,
    name: str,
    count: int,
    obj: Callable[[int], str],
    *,
    chunk: int = CHUNK,
) -> None:
    for start in range(0, count, chunk):
        batch = [event(name, n, obj=obj(n)) for n in range(start, min(count, start + chunk))]
        store.events.record_batch([(e, body, [subscription]) for e, body in batch], now=now())


def backlog_disabled(store: Store, size: int) -> None:
    sub = subscribe(store)
    queue(store, sub, "disabled", size, lambda n: f"d{n}")
    store.subscriptions.set_enabled(sub, enabled=False, reason="bench", now=now())


def backlog_behind_retrying(store: Store, size: int) -> None:
    sub = subscribe(store, ordered=True)
    queue(store, sub, "stuck", 1, lambda n: "stuck")
    [head] = store.queue.claim_due(now=now(), limit=1, lease_s=60)
    store.queue.record_attempts(
        [(_attempt(head.id, head.claim, 503), Outcome(Verdict.RETRY, now() + timedelta(days=1)))],
        now=now(),
    )
    queue(store, sub, "later", size, lambda n: "stuck")  # ids later-0..: after stuck-0


def backlog_idle_limited(store: Store, size: int) -> None:
    subscribe(store, rate=5.0)


def _attempt(delivery: uuid.UUID, claim: uuid.UUID, status: int) -> AttemptRecord:
    return AttemptRecord(
        delivery_id=delivery,
        claim=claim,
        started_at=now(),
        duration_ms=1,
        status_code=status,
        response_headers=None,
        response_body=None,
        error=None,
    )


@contextmanager
def fresh_store(admin_url: str) -> Iterator[tuple[Store, str]]:
    name = f"bench_claims_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    store = Store.open(url)
    try:
        store.migrate()
        yield store, url
    finally:
        store.close()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def explain(url: str, *, batch: int) -> str:
    """The buffers the claim's statements read (EXPLAIN (ANALYZE, BUFFERS), rolled back): the
    plan's cost in pages, whatever the machine's noise."""
    statements = {"due": pg_queue._DUE_UNTHROTTLED}
    buckets = getattr(pg_queue, "_DUE_BUCKETS", None)  # the claim's bucket query, since 0009
    if buckets is not None:
        statements["buckets"] = buckets
    parts = []
    with psycopg.connect(url) as conn:
        for name, sql in statements.items():
            [[plan]] = conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql,
                {"now": now(), "held": [], "limit": batch},
            ).fetchall()
            top = plan[0]["Plan"]
            parts.append(f"{name} {top['Shared Hit Blocks'] + top['Shared Read Blocks']} pages")
        conn.rollback()
    return ", ".join(parts)


@dataclass
class Tally:
    seconds: float = 0.0
    delivered: int = 0
    claims: int = 0
    claim_ms: list[float] = field(default_factory=list)
    record_ms: list[float] = field(default_factory=list)
    ran_out: bool = False

    def line(self) -> str:
        return (
            f"{self.delivered / self.seconds:,.0f} deliveries claimed/s"
            f" ({self.claims / self.seconds:,.0f} claims/s; median claim"
            f" {statistics.median(self.claim_ms):.1f} ms, recording"
            f" {statistics.median(self.record_ms or [0.0]):.1f} ms)"
        )


def measure(store: Store, tally: Tally, *, seconds: float, batch: int) -> None:
    """Claim and record for `seconds`, as the sending loop does, counting into `tally`."""
    ok = Outcome(Verdict.DELIVERED)
    started = time.perf_counter()
    while not tally.ran_out and time.perf_counter() - started < seconds:
        t = time.perf_counter()
        due = store.queue.claim_due(now=now(), limit=batch, lease_s=60)
        tally.claim_ms.append((time.perf_counter() - t) * 1000)
        if not due:
            tally.ran_out = True  # the flow ran out: the rate so far stands
            break
        t = time.perf_counter()
        store.queue.record_attempts([(_attempt(d.id, d.claim, 204), ok) for d in due], now=now())
        tally.record_ms.append((time.perf_counter() - t) * 1000)
        tally.delivered += len(due)
        tally.claims += 1
    tally.seconds += time.perf_counter() - started


CASES: dict[str, Callable[[Store, int], None] | None] = {
    "(a) no backlog": None,
    "(b) backlog pending for a disabled subscription": backlog_disabled,
    "(c) backlog behind one retrying object (ordered)": backlog_behind_retrying,
    "(d) one idle rate-limited subscription": backlog_idle_limited,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured per case")
    parser.add_argument("--rounds", type=int, default=10, help="turns the cases take")
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10, help="deliveries per claim")
    args = parser.parse_args()
    with infra.postgres_server() as admin_url, ExitStack() as stack:
        stores: dict[str, tuple[Store, str]] = {}
        for label, build in CASES.items():
            store, url = stores[label] = stack.enter_context(fresh_store(admin_url))
            t = time.perf_counter()
            if build is not None:
                build(store, args.backlog)
            flow = subscribe(store)
            queue(store, flow, "flow", FLOW, lambda n: f"o{n}", chunk=FLOW_CHUNK)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")  # as autovacuum would after the backlog was built
            print(f"{label}: built in {time.perf_counter() - t:.0f} s", flush=True)
        # The cases take turns, so the machine's noise falls on each alike.
        tallies = {label: Tally() for label in CASES}
        for _ in range(args.rounds):
            for label, (store, _) in stores.items():
                measure(store, tallies[label], seconds=args.seconds / args.rounds, batch=args.batch)
        print()
        for label, (_, url) in stores.items():
            print(
                f"{label}: {tallies[label].line()}; then a claim reads {explain(url, batch=args.batch)}"
            )
    base = tallies["(a) no backlog"]
    print("\nratio to (a), deliveries claimed per second:")
    for label, tally in tallies.items():
        ratio = (tally.delivered / tally.seconds) / (base.delivered / base.seconds)
        print(f"  {label}: {ratio:.2f}")


if __name__ == "__main__":
    main()
