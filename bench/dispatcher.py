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
4. the dispatcher's peak memory (VmHWM) over runs 2 and 3;
5. latency (issue 14): lone records, produced one at a time (the next once the last has arrived,
   after a short random gap), each timed from just before it is produced on the domain topic to
   its webhook arriving at a receiver in this process; p50 and p99 of `--lone` records through
   `python -m dispatchers`, and through a bare relay in another process (a confluent-kafka
   consumer asking for one record at a time, POSTing it with a `requests.Session`), with the
   ratios. `--latency-only` runs this part alone.
6. `--recording-only`: recording alone (issue 14), no HTTP: `--workers` threads record
   `--events` successful attempts of claimed deliveries, one `record_attempts` per attempt, the
   same through `GroupedAttempts` (the dispatcher's way: attempts finishing together share a
   transaction), and 25 per call; attempts recorded per second in each case.
The figures are wall-clock on this machine; every process shares its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import requests
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dispatchers.matching import SubscriptionFilter  # noqa: E402
from dispatchers.model import AttemptRecord  # noqa: E402
from dispatchers.outcomes import Outcome, Verdict  # noqa: E402
from dispatchers.postgres import Store  # noqa: E402
from dispatchers.sending import GroupedAttempts  # noqa: E402
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


def bench_topics(prefix: str) -> dict[str, str]:
    """Herald's topics, every one named after `prefix` (none of a shared broker's defaults)."""
    return {
        "HERALD_DOMAIN_TOPIC": f"{prefix}.domain",
        "HERALD_DEAD_LETTER_TOPIC": f"{prefix}.dead",
        "HERALD_RAW_TOPIC": f"{prefix}.raw",
        "HERALD_CHECKPOINT_TOPIC": f"{prefix}.checkpoints",
    }


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


def clean_up(bootstrap: str, admin_url: str, run: str) -> None:
    """Drop the database and delete the topics a run created (`bench_<run>`, `bench.<run>.*`): the
    broker and the server may be shared."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "bench_{run}" WITH (FORCE)')
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [
        name for name in admin.list_topics(timeout=10).topics if name.startswith(f"bench.{run}.")
    ]
    for done in admin.delete_topics(names).values() if names else ():
        done.result(30)


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
    try:
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
        topics = bench_topics(f"bench.{run}")
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
    finally:
        clean_up(bootstrap, admin_url, run)


class Arrivals:
    """A receiver in this process (204 at once, keep-alive) noting when each webhook-id arrives
    (`time.monotonic()`)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.arrived = threading.Condition()
        arrivals = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                at = time.monotonic()
                with arrivals.arrived:
                    arrivals.times.setdefault(self.headers.get("webhook-id", ""), at)
                    arrivals.arrived.notify_all()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, webhook_id: str, timeout_s: float) -> float:
        with self.arrived:
            if not self.arrived.wait_for(lambda: webhook_id in self.times, timeout_s):
                raise SystemExit(f"webhook {webhook_id} did not arrive within {timeout_s} s")
            return self.times[webhook_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def relay(bootstrap: str, topic: str, url: str) -> None:
    """The bare relay process: one record at a time from `topic`, POSTed to `url` (webhook-id:
    the record's key), until killed."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-relay-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    session = requests.Session()
    while True:
        for message in consumer.consume(num_messages=1, timeout=0.5):
            if message.error() is None:
                key = (message.key() or b"").decode()
                session.post(
                    url, data=message.value(), headers={"webhook-id": key}, timeout=(5, 15)
                ).close()


def lone_latencies(
    producer: Producer, topic: str, arrivals: Arrivals, *, count: int, keyed_by_id: bool
) -> list[float]:
    """Seconds from just before each lone record is produced to its webhook's arrival: one at a
    time, the next 20 to 60 ms after the last arrived. The first record (a warm-up: the consumer
    may still be joining its group) is not counted."""
    latencies = []
    for i in range(count + 1):
        item = event(i, "c0")
        key = item.id if keyed_by_id else item.key
        started = time.monotonic()
        producer.produce(
            topic,
            key=key.encode(),
            value=encode_domain_event(item),
            headers=domain_record_headers(),
        )
        producer.flush(10)
        arrived = arrivals.wait_for(item.id, timeout_s=120 if i == 0 else 30)
        if i:
            latencies.append(arrived - started)
        time.sleep(random.uniform(0.02, 0.06))  # noqa: S311 (spacing, not security)
    return latencies


def percentiles(latencies: list[float]) -> tuple[float, float]:
    """p50 and p99, in milliseconds."""
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def measure_latency(*, bootstrap: str, admin_url: str, work: Path, lone: int) -> None:
    arrivals = Arrivals()
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 0, "partitioner": "murmur2_random"}
    )
    run = uuid.uuid4().hex[:6]
    try:
        relay_topics = bench_topics(f"bench.{run}.relay")
        infra.create_topics(bootstrap, relay_topics, partitions=3)
        relay_topic = relay_topics["HERALD_DOMAIN_TOPIC"]
        process = subprocess.Popen(
            [sys.executable, __file__, "--relay", bootstrap, relay_topic, arrivals.url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            bare = lone_latencies(producer, relay_topic, arrivals, count=lone, keyed_by_id=True)
        finally:
            process.kill()
            process.wait()

        database = f"bench_{run}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        url = admin_url.rsplit("/", 1)[0] + f"/{database}"
        store = Store.open(url)
        store.migrate()
        store.subscriptions.create(
            url=arrivals.url, secrets=[SECRET], filter=SubscriptionFilter(), ordered=True
        )
        store.close()
        topics = bench_topics(f"bench.{run}")
        infra.create_topics(bootstrap, topics, partitions=3)
        env = {
            **topics,
            "HERALD_KAFKA_BOOTSTRAP": bootstrap,
            "HERALD_DATABASE_URL": url,
            "HERALD_DISPATCHER_GROUP_ID": f"bench-{run}",
            "HERALD_ALLOW_PRIVATE_NETWORKS": "true",
            "HERALD_METRICS_PORT": "0",
        }
        service = ServiceProcess("dispatchers", env, work / f"dispatcher-{run}.log").start()
        try:
            ours = lone_latencies(
                producer, topics["HERALD_DOMAIN_TOPIC"], arrivals, count=lone, keyed_by_id=False
            )
        finally:
            service.stop()
    finally:
        arrivals.close()
        clean_up(bootstrap, admin_url, run)
    bare_p50, bare_p99 = percentiles(bare)
    p50, p99 = percentiles(ours)
    print(f"latency of {lone} lone records, produced to webhook arrived:")
    print(f"bare consume(1 record) -> POST relay: p50 {bare_p50:.1f} ms, p99 {bare_p99:.1f} ms")
    print(
        f"python -m dispatchers: p50 {p50:.1f} ms, p99 {p99:.1f} ms;"
        f" ratio to the bare relay p50 {p50 / bare_p50:.1f}, p99 {p99 / bare_p99:.1f}"
    )


def measure_recording(*, admin_url: str, threads: int, attempts: int) -> None:
    """Successful attempts recorded per second on `threads` threads, without HTTP: one
    `record_attempts` per attempt, the same grouped across threads, and 25 per call."""
    run = uuid.uuid4().hex[:6]
    database = f"bench_{run}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        store = Store.open(admin_url.rsplit("/", 1)[0] + f"/{database}", max_size=threads)
        store.migrate()
        subs = [
            store.subscriptions.create(
                url="http://127.0.0.1:9/hooks",
                secrets=[SECRET],
                filter=SubscriptionFilter(),
                ordered=False,
            )
            for _ in range(SUBSCRIPTIONS)
        ]
        cases = [
            ("one per call", 1, False),
            ("grouped across threads", 1, True),
            ("25 per call", 25, False),
        ]
        print(f"recording {attempts} successful attempts on {threads} threads:")
        for name, per_call, grouped in cases:
            now = datetime.now(UTC)
            events = [event(i, f"c{i % SUBSCRIPTIONS}") for i in range(attempts)]
            store.events.record_events(
                [(e, encode_domain_event(e), [subs[i % len(subs)]]) for i, e in enumerate(events)],
                now=now,
            )
            due = store.queue.claim_due(now=now, limit=attempts, lease_s=600)
            recorder = GroupedAttempts(store.queue) if grouped else store.queue
            shares = [due[t::threads] for t in range(threads)]

            def record(
                share: list[Any], recorder: Any = recorder, per_call: int = per_call
            ) -> None:
                for i in range(0, len(share), per_call):
                    at = datetime.now(UTC)
                    recorder.record_attempts(
                        [
                            (
                                AttemptRecord(d.id, d.claim, at, 1, 204, {}, "", None),
                                Outcome(Verdict.DELIVERED),
                            )
                            for d in share[i : i + per_call]
                        ],
                        now=at,
                    )

            pool = [threading.Thread(target=record, args=(share,)) for share in shares]
            started = time.perf_counter()
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            rate = len(due) / (time.perf_counter() - started)
            print(f"  {name}: {rate:,.0f} attempts/s ({len(due)} attempts)")
        store.close()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hang", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lone", type=int, default=200, help="lone records timed (latency)")
    parser.add_argument("--latency-only", action="store_true", help="run the latency part alone")
    parser.add_argument("--relay", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument(
        "--recording-only", action="store_true", help="time recording attempts alone (no HTTP)"
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, hang=args.hang)
        return
    if args.relay:
        relay(*args.relay)
        return
    if args.recording_only:
        with infra.postgres_server() as database_url:
            measure_recording(admin_url=database_url, threads=args.workers, attempts=args.events)
        return
    work = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    receivers = []
    with infra.kafka_broker(work) as bootstrap, infra.postgres_server() as database_url:
        if args.latency_only:
            measure_latency(bootstrap=bootstrap, admin_url=database_url, work=work, lone=args.lone)
            return
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
            measure_latency(bootstrap=bootstrap, admin_url=database_url, work=work, lone=args.lone)
        finally:
            for r in receivers:
                r.kill()
                r.wait()


if __name__ == "__main__":
    main()
