"""Dispatcher benchmark: deliveries per second through one dispatcher process, against a bare loop.

    .venv/bin/python bench/dispatcher.py [--events 6000] [--workers 8]

It starts its own Kafka broker and Postgres cluster (or uses HERALD_KAFKA_BOOTSTRAP and
HERALD_DATABASE_URL), a fast receiver (204 at once) in another process, and measures, in one run:
1. a bare loop: the same number of threads, one `requests.Session` each, POSTing the same signed
   body to the same receiver;
2. `python -m dispatchers` over the domain topic: deliveries per second recorded as delivered in
   Postgres (from the first to the last), 20 subscriptions, every event matching one of them;
3. the same with 10 % of the subscriptions pointing at a receiver that never answers (it hangs
   past the dispatcher's read timeout): the healthy subscriptions' deliveries per second, as a
   share of run 2's;
4. the dispatcher's peak memory (VmHWM) over runs 2 and 3.
The figures are wall-clock on this machine; every process shares its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import requests
from confluent_kafka import Producer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dispatchers.matching import SubscriptionFilter  # noqa: E402
from dispatchers.postgres import Store  # noqa: E402
from dispatchers.signing import sign  # noqa: E402
from herald_contracts import (  # noqa: E402
    DomainEvent,
    domain_record_headers,
    encode_domain_event,
)
from herald_dev import infra  # noqa: E402
from herald_dev.processes import ServiceProcess  # noqa: E402

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 (a test vector)
SUBSCRIPTIONS = 20
HANGING = 2  # 10 %


def serve(port: int, *, hang: bool) -> None:
    """The receiver process: 204 at once, or (hang) never an answer. asyncio, HTTP/1.1 keep-alive,
    so the receiver is not what limits the rates measured."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                if hang:
                    await asyncio.sleep(3600)
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def start_receiver(*, hang: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = infra.free_port()
    args = [sys.executable, __file__, "--serve", str(port)] + (["--hang"] if hang else [])
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, f"http://127.0.0.1:{port}/hooks"


def event(i: int, cluster: str) -> DomainEvent:
    name = f"svc-{i % 500}"
    return DomainEvent(
        id=f"bench-{uuid.uuid4().hex}",
        source=f"/clusters/{cluster}/namespaces/team/rollouts/{name}",
        type="dev.herald.rollout.step_advanced",
        subject=name,
        time="2026-08-20T09:00:00Z",
        data={"cluster": cluster, "namespace": "team", "name": name, "step_index": i % 8},
        key=f"{cluster}/team/Rollout/{name}",
    )


def bare_loop(url: str, *, threads: int, total: int) -> float:
    body = encode_domain_event(event(0, "c0"))
    count = iter(range(total))
    lock = threading.Lock()

    def worker() -> None:
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=1)
        session.mount("http://", adapter)
        while True:
            with lock:
                if next(count, None) is None:
                    return
            ts = int(time.time())
            headers = {
                "Content-Type": "application/cloudevents+json",
                "webhook-id": "bench",
                "webhook-timestamp": str(ts),
                "webhook-signature": sign(
                    secrets=(SECRET,), message_id="bench", timestamp=ts, body=body
                ),
            }
            session.post(url, data=body, headers=headers, timeout=(5, 15)).close()

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return total / (time.perf_counter() - started)


def delivered_rate(
    database_url: str, subscriptions: set[uuid.UUID], expected: int, *, timeout_s: float = 300
) -> float:
    """Deliveries per second to `subscriptions`, from the first delivered to the `expected`-th."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*), min(delivered_at), max(delivered_at) FROM deliveries"
                " WHERE status = 'delivered' AND subscription_id = ANY(%s)",
                (list(subscriptions),),
            ).fetchone()
            assert row is not None
            if row[0] >= expected:
                return float(row[0]) / max(0.001, (row[2] - row[1]).total_seconds())
            time.sleep(0.5)
    raise SystemExit(f"only {row[0]} of {expected} deliveries were made within {timeout_s}s")


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_dispatcher(
    *,
    bootstrap: str,
    admin_url: str,
    work: Path,
    workers: int,
    urls: list[str],
    events: int,
) -> tuple[float, float]:
    """One dispatcher over `events` events, one subscription per URL; returns (deliveries/s to
    the subscriptions whose URL is the first one, peak memory in MB)."""
    run = uuid.uuid4().hex[:6]
    database = f"bench_{run}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{database}"
    store = Store.open(url)
    store.migrate()
    healthy: set[uuid.UUID] = set()
    clusters = []
    for i, target in enumerate(urls):
        cluster = f"c{i}"
        clusters.append(cluster)
        sub = store.subscriptions.create(
            url=target,
            secrets=[SECRET],
            filter=SubscriptionFilter(clusters=(cluster,)),
            ordered=True,
        )
        if target == urls[0]:
            healthy.add(sub)
    store.close()
    topics = {
        "HERALD_DOMAIN_TOPIC": f"bench.{run}.domain",
        "HERALD_DEAD_LETTER_TOPIC": f"bench.{run}.dead",
        "HERALD_RAW_TOPIC": f"bench.{run}.raw",
    }
    infra.create_topics(bootstrap, topics, partitions=3)
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    wanted = 0
    for i in range(events):
        cluster = clusters[i % len(clusters)]
        item = event(i, cluster)
        producer.produce(
            topics["HERALD_DOMAIN_TOPIC"],
            key=item.key.encode(),
            value=encode_domain_event(item),
            headers=domain_record_headers(),
        )
        if urls[i % len(urls)] == urls[0]:
            wanted += 1
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(60)
    env = {
        **topics,
        "HERALD_KAFKA_BOOTSTRAP": bootstrap,
        "HERALD_DATABASE_URL": url,
        "HERALD_DISPATCHER_GROUP_ID": f"bench-{run}",
        "HERALD_DISPATCHER_WORKERS": str(workers),
        "HERALD_ALLOW_PRIVATE_NETWORKS": "true",
        "HERALD_METRICS_PORT": "0",
        "HERALD_HTTP_READ_TIMEOUT_S": "5",
    }
    process = ServiceProcess("dispatchers", env, work / f"dispatcher-{run}.log").start()
    try:
        rate = delivered_rate(url, healthy, wanted)
        assert process.process is not None
        memory = peak_memory_mb(process.process.pid)
    finally:
        process.stop()
    return rate, memory


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hang", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, hang=args.hang)
        return
    work = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    receivers = []
    with infra.kafka_broker(work) as bootstrap, infra.postgres_server() as database_url:
        try:
            fast, fast_url = start_receiver(hang=False)
            hanging, hanging_url = start_receiver(hang=True)
            receivers = [fast, hanging]
            bare = bare_loop(fast_url, threads=args.workers, total=args.events)
            ours, memory = run_dispatcher(
                bootstrap=bootstrap,
                admin_url=database_url,
                work=work,
                workers=args.workers,
                urls=[fast_url] * SUBSCRIPTIONS,
                events=args.events,
            )
            healthy_share = int(args.events * (SUBSCRIPTIONS - HANGING) / SUBSCRIPTIONS)
            mixed, memory_mixed = run_dispatcher(
                bootstrap=bootstrap,
                admin_url=database_url,
                work=work,
                workers=args.workers,
                urls=[fast_url] * (SUBSCRIPTIONS - HANGING) + [hanging_url] * HANGING,
                events=args.events,
            )
            print(f"{args.events} events, {SUBSCRIPTIONS} subscriptions, {args.workers} threads")
            print(f"bare requests.Session loop: {bare:,.0f} requests/s")
            print(
                f"python -m dispatchers: {ours:,.0f} deliveries/s recorded and acknowledged"
                f" (target >= 1,000); ratio to the bare loop = {ours / bare:.2f} (aim >= 0.6)"
            )
            print(
                f"with {HANGING} of {SUBSCRIPTIONS} subscriptions on a receiver that never answers:"
                f" healthy ones {mixed:,.0f} deliveries/s ({healthy_share} deliveries),"
                f" {mixed / ours:.0%} of the rate above (aim >= 90 %)"
            )
            print(f"dispatcher peak memory: {max(memory, memory_mixed):.0f} MB (target < 200 MB)")
        finally:
            for r in receivers:
                r.kill()
                r.wait()


if __name__ == "__main__":
    main()
