"""Processor memory benchmark: the peak RSS of a worker that recovers a large table changelog.

    .venv/bin/python bench/processor_memory.py [--keys 200000] [--live-share 0.14]

It starts its own Kafka broker (or uses HERALD_KAFKA_BOOTSTRAP), and for each case writes a fresh
`occurrences` changelog the way a worker writes it, starts `python -m processors` on it, waits until
the worker is ready and its first sweep has run, and reads the worker's peak resident set size
(VmHWM) and current one (VmRSS) from /proc:
1. baseline: an empty changelog (the worker's own footprint);
2. all live: `--keys` entries all within the retention (what the state costs when it is needed);
3. a week old: `--keys` entries of which only `--live-share` (one day in seven) is within the
   retention, the rest past it: a worker restarted on a week of state (issue 9).
It prints the figures and each case's ratio to the baseline. Run it from a checkout of an older
version to compare (the changelog values are written in this version's shape).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from herald_dev import infra  # noqa: E402

PARTITIONS = 3
DAY = 86_400.0


def write_changelog(bootstrap: str, topic: str, keys: int, *, live_share: float) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics(
        [NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)]
    ).values():
        future.result(timeout=30)
    # Uncompressed, as Faust writes its changelogs.
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    now = time.time()
    live = int(keys * live_share)
    for k in range(keys):
        at = now - 3600 if k < live else now - 2 * DAY - (k % 5) * DAY
        key = json.dumps(f"bench/{uuid.UUID(int=k)}").encode()
        value = json.dumps([k % PARTITIONS, at, [[k, 1 + k % 4]]]).encode()
        while True:
            try:
                producer.produce(topic, key=key, value=value, partition=k % PARTITIONS)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(rest.split()[0])
    return fields


def metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f'{name}{{table="occurrences"}}'):
            return float(line.split()[-1])
    return None


def run_worker(
    bootstrap: str, topics: dict[str, str], work: Path, *, keys: int, live_share: float
) -> tuple[dict[str, int], float, float]:
    """(memory in KiB, seconds to ready, entries held) of a worker on a fresh changelog."""
    app_id = f"bench-mem-{uuid.uuid4().hex[:6]}"
    if keys:
        write_changelog(bootstrap, f"{app_id}-occurrences-changelog", keys, live_share=live_share)
    port = infra.free_port()
    env = {
        **os.environ,
        **topics,
        "HERALD_KAFKA_BOOTSTRAP": bootstrap,
        "HERALD_METRICS_PORT": str(port),
        "HERALD_PROCESSOR_APP_ID": app_id,
        "HERALD_PROCESSOR_DATA_DIR": str(work / app_id),
        "HERALD_PROCESSOR_SWEEP_INTERVAL_S": "2",
    }
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "processors"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ready_after = None
        # Versions before issue 9 could hang for good when /readyz was probed in their first
        # moments (bench/processor_starts.py): give them those moments to compare with them.
        time.sleep(3)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5):
                    ready_after = time.monotonic() - started
                    break
            except OSError:
                time.sleep(0.5)
        assert ready_after is not None, "the worker never became ready"
        # The first sweeps run (an older version has no such metric: wait a while instead).
        entries = None
        settle = time.monotonic() + 20
        while time.monotonic() < settle:
            entries = metric(port, "herald_processor_state_entries")
            if entries is not None:
                time.sleep(3)
                entries = metric(port, "herald_processor_state_entries")
                break
            time.sleep(0.5)
        return (
            memory_kib(process.pid),
            ready_after,
            entries if entries is not None else float("nan"),
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--live-share", type=float, default=1 / 7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="herald-bench-mem-"))
    with infra.kafka_broker(work) as bootstrap:
        run = uuid.uuid4().hex[:6]
        topics = {
            "HERALD_RAW_TOPIC": f"bench.{run}.raw",
            "HERALD_DOMAIN_TOPIC": f"bench.{run}.domain",
            "HERALD_DEAD_LETTER_TOPIC": f"bench.{run}.dead",
            "HERALD_CHECKPOINT_TOPIC": f"bench.{run}.cp",
        }
        infra.create_topics(bootstrap, topics, partitions=PARTITIONS)
        cases = [
            ("baseline: empty changelog", 0, 1.0),
            (f"all live: {args.keys:,} entries within the retention", args.keys, 1.0),
            (
                f"a week old: {args.keys:,} entries, {args.live_share:.0%} within the retention",
                args.keys,
                args.live_share,
            ),
        ]
        base: int | None = None
        for title, keys, share in cases:
            memory, ready_s, entries = run_worker(
                bootstrap, topics, work, keys=keys, live_share=share
            )
            base = base or memory["VmHWM"]
            print(
                f"{title}: peak RSS {memory['VmHWM'] / 1024:,.0f} MiB"
                f" (ratio to baseline {memory['VmHWM'] / base:.2f}),"
                f" RSS after the sweep {memory['VmRSS'] / 1024:,.0f} MiB,"
                f" entries held {entries:,.0f}, ready after {ready_s:.1f}s",
                flush=True,
            )


if __name__ == "__main__":
    main()
