"""Processor benchmark: raw records per second through one Faust worker, against bare client loops.

    .venv/bin/python bench/processor.py [--records 40000]

It starts its own Kafka broker (or uses HERALD_KAFKA_BOOTSTRAP), writes a realistic mix of raw records
(mostly noise: Pods, Deployments, ReplicaSets; about one in seven an Argo Rollouts or Argo CD Event of
the catalogue) and measures, in one run over the same records:
1. `python -m processors` (one worker): raw records per second, from its consumer group's committed
   offsets (the first commit to the last, so the worker's start-up is left out);
2. a bare aiokafka consume-and-produce loop (Faust's own client): every record read is produced to
   another topic, then flushed;
3. the same bare loop with confluent-kafka.
It prints our rate as a ratio of each. The figures are wall-clock on this machine.

    .venv/bin/python bench/processor.py --paced 250,1000,2500 [--paced-s 15]

instead offers raw records at each rate to two workers side by side, one with the processor's
fetch settings (`HERALD_PROCESSOR_FETCH_MIN_BYTES`, `..._MAX_WAIT_MS`) and one with Faust's own
(the broker answers at the first record), and prints each worker's CPU ms per 1,000 records and
their ratio: what gathering fetches saves at rates the pipeline runs at.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from herald_contracts import RawRecord, WatchType, encode_raw_record  # noqa: E402
from herald_dev import infra  # noqa: E402

PARTITIONS = 3
SHA = "3f6c2e1d9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e"


def raw_event(i: int) -> dict[str, Any]:
    kind = i % 14
    namespace = f"team-{i % 40}"
    if kind == 0:
        involved = {
            "kind": "Rollout",
            "name": f"svc-{i % 300}",
            "apiVersion": "argoproj.io/v1alpha1",
        }
        reason, message, component = (
            "RolloutStepCompleted",
            f"Rollout step {i % 8 + 1}/8 completed (setWeight: 10)",
            "rollouts-controller",
        )
    elif kind == 1:
        involved = {
            "kind": "Application",
            "name": f"app-{i % 300}",
            "apiVersion": "argoproj.io/v1alpha1",
        }
        reason, message, component = (
            "ResourceUpdated",
            "Updated sync status: Synced -> OutOfSync",
            "argocd-application-controller",
        )
    elif kind in (2, 3, 4):
        involved = {
            "kind": "Rollout",
            "name": f"svc-{i % 300}",
            "apiVersion": "argoproj.io/v1alpha1",
        }
        reason, message, component = (
            "ScalingReplicaSet",
            f"Scaled up ReplicaSet svc-{i:x} (revision 2) from 0 to 1",
            "rollouts-controller",
        )
    elif kind in (5, 6, 7, 8):
        involved = {
            "kind": "Pod",
            "name": f"svc-{i % 300}-{i:x}",
            "apiVersion": "v1",
            "fieldPath": "spec.containers{app}",
        }
        reason, message, component = (
            "Pulled",
            'Container image "registry.example/app:1.2.3" already present on machine',
            "kubelet",
        )
    else:
        involved = {"kind": "ReplicaSet", "name": f"svc-{i % 300}-{i % 7}", "apiVersion": "apps/v1"}
        reason, message, component = (
            "SuccessfulCreate",
            f"Created pod: svc-{i:x}",
            "replicaset-controller",
        )
    return {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {
            "name": f"{involved['name']}.{i:016x}",
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(1000 + i),
            "creationTimestamp": "2026-08-20T09:14:27Z",
        },
        "involvedObject": {**involved, "namespace": namespace, "uid": str(uuid.uuid4())},
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "firstTimestamp": "2026-08-20T09:14:27Z",
        "lastTimestamp": "2026-08-20T09:14:27Z",
        "count": 1,
        "type": "Normal",
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": "",
    }


def records(count: int) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(count):
        record = RawRecord(
            cluster="bench",
            watch_type=WatchType.ADDED,
            collected_at="2026-08-20T09:14:28Z",
            object=raw_event(i),
        )
        out.append((record.key.encode(), encode_raw_record(record)))
    return out


def produce_all(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",
            "linger.ms": 5,
            "compression.type": "lz4",
        }
    )
    for key, value in items:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0


def committed(bootstrap: str, topic: str, group: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        parts = consumer.committed(
            [TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10
        )
        return sum(max(0, tp.offset) for tp in parts)
    except KafkaException:
        return 0  # the group's coordinator is not ready yet
    finally:
        consumer.close()


def start_worker(
    bootstrap: str,
    topics: dict[str, str],
    work: Path,
    app_id: str,
    settings: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`python -m processors`, one worker of group `app_id`, with `settings` over the defaults."""
    env = {
        **os.environ,
        **topics,
        "HERALD_KAFKA_BOOTSTRAP": bootstrap,
        "HERALD_METRICS_PORT": "0",
        "HERALD_PROCESSOR_APP_ID": app_id,
        "HERALD_PROCESSOR_DATA_DIR": str(work / app_id),
        **(settings or {}),
    }
    # BENCH_PROFILE=FILE runs the worker under cProfile, writing FILE when it stops.
    profile = (
        ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]]
        if os.environ.get("BENCH_PROFILE")
        else []
    )
    return subprocess.Popen(
        [sys.executable, *profile, "-m", "processors"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


FAUST_FETCHES = {
    "HERALD_PROCESSOR_FETCH_MIN_BYTES": "1",
    "HERALD_PROCESSOR_FETCH_MAX_WAIT_MS": "1500",
}
"""Faust's own fetch: the broker answers at the first record, an idle fetch waits 1.5 s."""


def paced_cpu(
    bootstrap: str,
    run: str,
    work: Path,
    rates: list[float],
    *,
    seconds: float,
    against: dict[str, str],
) -> list[tuple[float, float, float]]:
    """Per offered rate (raw records/s, for `seconds` each): CPU ms per 1,000 records of a worker
    with the processor's default settings and of one with the settings `against` (by default
    Faust's own fetching, `FAUST_FETCHES`), run side by side on the same records (each its own
    raw topic and group), so the machine's noise falls on both alike. A rate's window ends once
    both workers committed every record offered."""
    from bench.pipeline import process_stats  # noqa: PLC0415 - /proc read once, in one place

    variants = {"tuned": {}, "against": against}
    topics = {
        name: {
            "HERALD_RAW_TOPIC": f"bench.{run}.{name}.raw",
            "HERALD_DOMAIN_TOPIC": f"bench.{run}.{name}.domain",
            "HERALD_DEAD_LETTER_TOPIC": f"bench.{run}.{name}.dead",
            "HERALD_CHECKPOINT_TOPIC": f"bench.{run}.{name}.cp",  # `create_topics` makes it too
        }
        for name in variants
    }
    for names in topics.values():
        infra.create_topics(bootstrap, names, partitions=PARTITIONS)
    items = records(200 + sum(int(rate * seconds) for rate in rates))  # none offered twice
    workers = {
        name: start_worker(bootstrap, topics[name], work, f"bench-{run}-{name}", settings)
        for name, settings in variants.items()
    }
    producer = Producer(
        {"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 5}
    )

    def offer(chunk: list[tuple[bytes, bytes]], rate: float | None) -> None:
        began = time.monotonic()
        for i, (key, value) in enumerate(chunk):
            if rate is not None:
                time.sleep(max(0.0, began + i / rate - time.monotonic()))
            for names in topics.values():
                producer.produce(names["HERALD_RAW_TOPIC"], key=key, value=value)
            producer.poll(0)
        assert producer.flush(60) == 0

    def settled(total: int) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if all(
                committed(bootstrap, topics[n]["HERALD_RAW_TOPIC"], f"bench-{run}-{n}") >= total
                for n in variants
            ):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the workers did not commit {total} records within 300 s")

    out = []
    try:
        offer(items[:200], None)  # warm: both workers started, assigned and recovered
        total = 200
        settled(total)
        for rate in rates:
            count = int(rate * seconds)
            before = {n: process_stats(w.pid)[0] for n, w in workers.items()}
            offer(items[total : total + count], rate)
            total += count
            settled(total)
            used = {n: process_stats(w.pid)[0] - before[n] for n, w in workers.items()}
            out.append((rate, used["tuned"] / count * 1e6, used["against"] / count * 1e6))
    finally:
        for worker in workers.values():
            worker.terminate()
            worker.wait(timeout=30)
    return out


def processor_rate(
    bootstrap: str, topics: dict[str, str], total: int, work: Path, *, app_id: str | None = None
) -> float:
    """Raw records per second through one processor worker; `app_id` names its group and its
    changelog topics (a new one when None)."""
    app_id = app_id or f"bench-{uuid.uuid4().hex[:6]}"
    process = start_worker(bootstrap, topics, work, app_id)
    samples: list[tuple[float, int]] = []
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = committed(bootstrap, topics["HERALD_RAW_TOPIC"], app_id)
            if done and (not samples or done != samples[-1][1]):
                samples.append((time.monotonic(), done))
            if done >= total:
                break
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=30)
    (t0, n0), (t1, n1) = samples[0], samples[-1]
    return (n1 - n0) / (t1 - t0)


async def aiokafka_loop(bootstrap: str, source: str, sink: str, total: int) -> float:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: PLC0415 - Faust's own client

    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=f"bare-aio-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    try:
        seen = 0
        started: float | None = None
        while seen < total:
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            for messages in batches.values():
                if started is None:
                    started = time.perf_counter()
                for message in messages:
                    json.loads(message.value)
                    await producer.send(sink, key=message.key, value=message.value)
                    seen += 1
        await producer.flush()
        await consumer.commit()
        assert started is not None
        return total / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()


def confluent_loop(bootstrap: str, source: str, sink: str, total: int) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bare-ck-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
            "linger.ms": 5,
        }
    )
    consumer.subscribe([source])
    seen = 0
    started: float | None = None
    try:
        while seen < total:
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                if message.error() is not None:
                    continue
                if started is None:
                    started = time.perf_counter()
                json.loads(message.value() or b"{}")
                while True:
                    try:
                        producer.produce(sink, key=message.key(), value=message.value())
                        break
                    except BufferError:
                        producer.poll(0.05)
                producer.poll(0)
                seen += 1
        producer.flush(60)
        consumer.commit(asynchronous=False)
        assert started is not None
        return total / (time.perf_counter() - started)
    finally:
        consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument(
        "--paced",
        help="comma-separated raw records/s: CPU per record at each offered rate, the"
        " processor's fetch settings against Faust's own, side by side (instead of the rate run)",
    )
    parser.add_argument("--paced-s", type=float, default=15, help="seconds per paced rate")
    parser.add_argument(
        "--against",
        help="NAME=VALUE[,NAME=VALUE...]: the second worker's settings in a paced run (default:"
        " Faust's own fetching, " + ",".join(f"{k}={v}" for k, v in FAUST_FETCHES.items()) + ")",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    with infra.kafka_broker(work) as bootstrap:
        run = uuid.uuid4().hex[:6]
        if args.paced:
            rates = [float(r) for r in args.paced.split(",")]
            against = (
                dict(pair.split("=", 1) for pair in args.against.split(","))
                if args.against
                else FAUST_FETCHES
            )
            print("against:", ", ".join(f"{k}={v}" for k, v in against.items()))
            print(
                f"{'offered/s':>9} {'default CPU ms/1000':>20} {'against ms/1000':>16} {'ratio':>6}"
            )
            for rate, tuned, faust in paced_cpu(
                bootstrap, run, work, rates, seconds=args.paced_s, against=against
            ):
                print(f"{rate:>9,.0f} {tuned:>20,.0f} {faust:>16,.0f} {tuned / faust:>6.2f}")
            return
        topics = {
            "HERALD_RAW_TOPIC": f"bench.{run}.raw",
            "HERALD_DOMAIN_TOPIC": f"bench.{run}.domain",
            "HERALD_DEAD_LETTER_TOPIC": f"bench.{run}.dead",
            "HERALD_CHECKPOINT_TOPIC": f"bench.{run}.cp",
        }
        infra.create_topics(bootstrap, topics, partitions=PARTITIONS)
        sinks = {
            "HERALD_RAW_TOPIC": f"bench.{run}.sink-aio",
            "HERALD_DOMAIN_TOPIC": f"bench.{run}.sink-ck",
            "HERALD_DEAD_LETTER_TOPIC": f"bench.{run}.unused",
            "HERALD_CHECKPOINT_TOPIC": f"bench.{run}.unused-cp",
        }
        infra.create_topics(bootstrap, sinks, partitions=PARTITIONS)
        items = records(args.records)
        argo = sum(1 for i in range(args.records) if i % 14 in (0, 1))
        produce_all(bootstrap, topics["HERALD_RAW_TOPIC"], items)
        ours = processor_rate(bootstrap, topics, args.records, work)
        aio = asyncio.run(
            aiokafka_loop(
                bootstrap, topics["HERALD_RAW_TOPIC"], sinks["HERALD_RAW_TOPIC"], args.records
            )
        )
        ck = confluent_loop(
            bootstrap, topics["HERALD_RAW_TOPIC"], sinks["HERALD_DOMAIN_TOPIC"], args.records
        )
        print(
            f"{args.records} raw records ({argo} of them Argo events of the catalogue), {PARTITIONS} partitions"
        )
        print(f"python -m processors, one worker: {ours:,.0f} raw records/s; target >= 5,000/s")
        print(
            f"bare aiokafka consume-and-produce loop: {aio:,.0f} records/s; ratio ours/aiokafka = {ours / aio:.2f} (aim >= 0.5)"
        )
        print(
            f"bare confluent-kafka consume-and-produce loop: {ck:,.0f} records/s; ratio ours/confluent = {ours / ck:.2f}"
        )


if __name__ == "__main__":
    main()
