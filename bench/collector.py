"""Collector benchmark: relist and steady-stream throughput, and peak memory with three clusters.

    .venv/bin/python bench/collector.py [--events 10000] [--stream 20000]

It starts its own Kafka broker (or uses HERALD_KAFKA_BOOTSTRAP), runs simulated clusters as separate
processes (`python -m herald_dev.fakekube`) so they do not share the collector's interpreter, and
measures, in one run:
1. the initial relist: time from the collector's start to every listed Event acknowledged by Kafka;
2. a steady stream: Events added to the cluster while the collector watches, acknowledged per second;
3. a bare confluent-kafka produce loop over the same records (same keys, values, producer settings),
   the baseline the collector's figures are divided by;
4. the peak resident memory (VmHWM) of `python -m collectors` watching three clusters of that size.
The figures are wall-clock on this machine, so only their ratios to the baseline carry over.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collectors.kafka import KafkaRecordSink, producer_config  # noqa: E402
from collectors.kube import KubeEventSource  # noqa: E402
from collectors.progress import Progress  # noqa: E402
from collectors.records import to_raw_record  # noqa: E402
from collectors.watching import Watcher  # noqa: E402
from herald_contracts import encode_raw_record  # noqa: E402
from herald_dev import infra  # noqa: E402


class NullObserver:
    def received(self, watch_type: str) -> None: ...
    def observed(self, event: dict[str, Any]) -> None: ...
    def dropped(self, reason: str) -> None: ...
    def set_aside(self, reason: str) -> None: ...
    def shortened(self) -> None: ...
    def restarted(self, cause: str) -> None: ...
    def relisted(self, cause: str) -> None: ...
    def contacted(self) -> None: ...


def event(i: int, prefix: str) -> dict[str, Any]:
    """A realistic Argo Rollouts Event (about 700 bytes as JSON)."""
    name = f"payments-{i % 50}"
    return {
        "metadata": {
            "name": f"{name}.{prefix}{i:08x}",
            "namespace": f"team-{i % 20}",
            "uid": str(uuid.uuid4()),
        },
        "involvedObject": {
            "kind": "Rollout",
            "namespace": f"team-{i % 20}",
            "name": name,
            "uid": str(uuid.uuid4()),
            "apiVersion": "argoproj.io/v1alpha1",
            "resourceVersion": str(48211102 + i),
        },
        "reason": "RolloutStepCompleted",
        "message": f"Rollout step {i % 8 + 1}/8 completed (setWeight: {(i % 8 + 1) * 10})",
        "source": {"component": "rollouts-controller"},
        "firstTimestamp": "2026-08-20T09:14:27Z",
        "lastTimestamp": "2026-08-20T09:16:53Z",
        "count": 1,
        "type": "Normal",
        "eventTime": None,
        "reportingComponent": "rollouts-controller",
        "reportingInstance": "",
    }


class FakeCluster:
    """`python -m herald_dev.fakekube` in a process of its own."""

    def __init__(self, work: Path, name: str) -> None:
        self.kubeconfig = work / f"{name}.kubeconfig"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "herald_dev.fakekube",
                "--kubeconfig",
                str(self.kubeconfig),
                "--bookmark-interval-s",
                "5",
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not self.kubeconfig.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("fakekube did not start")
            time.sleep(0.05)
        time.sleep(0.2)
        self.url = json.loads(self.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]

    @staticmethod
    def encode(events: list[dict[str, Any]]) -> list[bytes]:
        """Request bodies of 1,000 Events each, made before any timing starts."""
        return [
            "\n".join(
                json.dumps({"type": "ADDED", "object": e}) for e in events[start : start + 1000]
            ).encode()
            for start in range(0, len(events), 1000)
        ]

    def post(self, bodies: list[bytes]) -> None:
        for body in bodies:
            request = urllib.request.Request(
                f"{self.url}/herald-fake/events", data=body, method="POST"
            )
            with urllib.request.urlopen(request, timeout=120) as response:
                response.read()

    def add(self, events: list[dict[str, Any]]) -> None:
        self.post(self.encode(events))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def bare_produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    producer = Producer(producer_config(bootstrap))
    started = time.perf_counter()
    for key, value in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0
    return time.perf_counter() - started


def records_of(events: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    out = []
    for e in events:
        record = to_raw_record(
            cluster="bench", watch_type="ADDED", event=e, collected_at="2026-08-20T09:16:54.000000Z"
        )
        out.append((record.key.encode(), encode_raw_record(record)))
    return out


def wait_acked(progress: Progress, sent_before: int, *, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while progress.unacknowledged or progress.sent_count < sent_before:
        if time.monotonic() > deadline:
            raise RuntimeError("records not acknowledged in time")
        time.sleep(0.001)


def collector_throughput(
    bootstrap: str, topic: str, work: Path, listed: int, streamed: int
) -> tuple[float, float]:
    cluster = FakeCluster(work, "throughput")
    try:
        cluster.add([event(i, "l") for i in range(listed)])
        producer = Producer(producer_config(bootstrap))
        sink = KafkaRecordSink(producer, topic=topic)
        stop = threading.Event()
        threading.Thread(target=sink.serve_reports, args=(stop,), daemon=True).start()
        source = KubeEventSource.connect(
            kubeconfig=cluster.kubeconfig,
            context=None,
            namespace=None,
            connect_timeout_s=5,
            read_timeout_s=60,
            watch_read_margin_s=30,
        )
        progress = CountingProgress()
        watcher = Watcher(
            cluster="bench",
            source=source,
            sink=sink,
            observer=NullObserver(),
            now=lambda: "2026-08-20T09:16:54.000000Z",
            progress=progress,
            stop=stop,
            watch_timeout_s=600,
        )
        started = time.perf_counter()
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        wait_acked(progress, listed)
        relist_s = time.perf_counter() - started
        while watcher.resource_version is None or progress.checkpoint is None:
            time.sleep(0.01)
        bodies = cluster.encode([event(i, "s") for i in range(streamed)])
        started = time.perf_counter()
        cluster.post(bodies)
        wait_acked(progress, listed + streamed)
        stream_s = time.perf_counter() - started
        stop.set()
        source.interrupt()
        thread.join(timeout=10)
        return relist_s, streamed / stream_s
    finally:
        cluster.stop()


class CountingProgress(Progress):
    sent_count = 0

    def sent(self, resource_version: str | None) -> int:
        self.sent_count += 1
        return super().sent(resource_version)


def peak_memory_mb(bootstrap: str, topic: str, work: Path, per_cluster: int) -> tuple[float, int]:
    clusters = [FakeCluster(work, f"memory-{n}") for n in range(3)]
    try:
        for n, cluster in enumerate(clusters):
            cluster.add([event(i, f"m{n}") for i in range(per_cluster)])
        cluster_file = work / "clusters.yaml"
        cluster_file.write_text(
            json.dumps(
                {
                    "clusters": [
                        {"name": f"memory-{n}", "kubeconfig": str(c.kubeconfig)}
                        for n, c in enumerate(clusters)
                    ]
                }
            )
        )
        env = {
            **os.environ,
            "HERALD_KAFKA_BOOTSTRAP": bootstrap,
            "HERALD_RAW_TOPIC": topic,
            "HERALD_CLUSTERS_FILE": str(cluster_file),
            "HERALD_METRICS_PORT": "0",
            "HERALD_CHECKPOINT_TOPIC": f"bench.checkpoints.{uuid.uuid4().hex[:6]}",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "collectors"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(3)
            for n, cluster in enumerate(clusters):  # then a stream on every cluster
                cluster.add([event(i, f"n{n}") for i in range(per_cluster // 5)])
            time.sleep(4)
            status = Path(f"/proc/{process.pid}/status").read_text()
            peak_kb = int(
                next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]
            )
            return peak_kb / 1024, 3 * (per_cluster + per_cluster // 5)
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        for cluster in clusters:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000, help="Events in the initial list")
    parser.add_argument("--stream", type=int, default=20_000, help="Events streamed while watching")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp,
        infra.kafka_broker(Path(tmp)) as bootstrap,
    ):
        state = Path(tmp)
        run = uuid.uuid4().hex[:6]
        topics = {
            "HERALD_RAW_TOPIC": f"bench.{run}.raw",
            "HERALD_DOMAIN_TOPIC": f"bench.{run}.domain",
            "HERALD_DEAD_LETTER_TOPIC": f"bench.{run}.dead",
            "HERALD_CHECKPOINT_TOPIC": f"bench.{run}.cp",
        }
        infra.create_topics(bootstrap, topics)
        raw = topics["HERALD_RAW_TOPIC"]
        relist_s, stream_rate = collector_throughput(
            bootstrap, raw, state, args.events, args.stream
        )
        bare_relist_s = bare_produce(
            bootstrap, raw, records_of([event(i, "b") for i in range(args.events)])
        )
        bare_stream_s = bare_produce(
            bootstrap, raw, records_of([event(i, "c") for i in range(args.stream)])
        )
        bare_rate = args.stream / bare_stream_s
        peak_mb, total = peak_memory_mb(bootstrap, raw, state, args.events)
        print(
            f"initial relist of {args.events} Events, published and acknowledged: {relist_s:.2f} s "
            f"({args.events / relist_s:,.0f} Events/s); target <= 4 s"
        )
        print(
            f"  bare confluent-kafka produce loop over the same records: {bare_relist_s:.2f} s; "
            f"ratio collector/bare = {relist_s / bare_relist_s:.1f}"
        )
        print(
            f"steady stream while watching: {stream_rate:,.0f} Events/s over {args.stream} Events; target >= 5,000/s"
        )
        print(
            f"  bare produce loop: {bare_rate:,.0f} records/s; ratio collector/bare = {stream_rate / bare_rate:.2f}"
        )
        print(
            f"peak memory of `python -m collectors` watching 3 clusters ({total} Events): {peak_mb:.0f} MB (VmHWM); target < 150 MB"
        )


if __name__ == "__main__":
    main()
