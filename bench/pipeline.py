"""Pipeline benchmark: the whole pipeline's sustained rate and latency, against bare client loops.

    .venv/bin/python bench/pipeline.py [--step-s 20] [--rates 250,500,1000,...] [--quick]

One run on this machine, every server on 127.0.0.1 (Kafka and Postgres from HERALD_KAFKA_BOOTSTRAP
and HERALD_DATABASE_URL when set, else its own):
0. the simulator alone: the fake API server generating Events itself at `--sim-rates` to a bare
   kubernetes-client list+watch process (the collector's own client, counting what it reads): the
   rate it reached, the watcher's lag, and the simulator's CPU per 1,000 Events, so that it is
   seen not to be the limit.
1. the pipeline: a simulated cluster (`python -m herald_dev.fakekube`, a process of its own,
   keeping only its last 50,000 changes so that its memory stays flat),
   `python -m collectors`, `python -m processors` and `python -m dispatchers` as real processes,
   and a fast receiver (asyncio, 204 at once, in another process) recording when each webhook-id
   arrived. Two subscriptions (ordered and not) take every event of the cluster. The mix: one raw
   Event in ten is an Argo one (Rollouts `RolloutStepCompleted`, Argo CD `ResourceUpdated` sync
   changes, alternately), which becomes one domain event delivered twice; the other nine are Pod
   and ReplicaSet Events the built-in packs do not report.
2. rate stepping: each step offers a constant rate of raw Events/s for `--step-s` seconds (the
   fake API server generates them, in batches every 10 ms, from the mix's templates: one
   `POST /herald-fake/generate` per step); a step is kept up when (`kept_up`) the offered rate was
   reached, every expected webhook arrived (nothing lost) within `--grace-s` of the window's end,
   the end-to-end p95 of the Events offered in the window's last quarter is at most
   `LATE_P95_BOUND_S` (1 s), and the last quarter's median is not far above the first quarter's
   (a lag that grows). Stepping stops at the first step not kept up (twice); the sustained rate is
   the last one kept up.
3. at half that rate, a window of `--half-s` seconds: p50/p95/p99 end to end (the fake API server
   creating the Event -> the webhook received) and per stage (-> the raw
   topic's record timestamp -> the domain topic's -> received), and the loss check by
   deterministic webhook-id (the processor's `event_id`), two deliveries each. Then the window's
   CPU budget, from /proc: CPU seconds (utime+stime, of each process and its live descendants,
   plus the cutime+cstime of the children they reaped) and peak memory (the root's VmHWM) of the
   collector, processor and dispatcher, the Kafka broker, Postgres (the postmaster and its
   backends, exited ones through the postmaster's cutime), the receiver and the simulator; their
   sum ("whole machine") per 1,000 raw Events and the rate that implies on `os.cpu_count()` cores.
   A broker or server the bench starts itself is known by its pid; one given by
   HERALD_KAFKA_BOOTSTRAP / HERALD_DATABASE_URL is found by the port it listens on
   (/proc/net/tcp and tcp6 -> socket inode -> /proc/<pid>/fd), marked shared (its CPU includes
   others' load), or "not measured" if no one process holds the port. This bench's own CPU and
   the machine's (/proc/stat) are printed beside, not counted. `--idle-s` (5 s) with nothing
   offered just before the window gives each row's idle load, the cost per 1,000 raw Events above
   it, and a second ceiling that pays the idle load once (a low rate spreads it over few Events).
4. baselines, each stage alone over the same input as its bare loop, the pipeline stopped:
   collector vs a bare kubernetes-client list+watch -> confluent-kafka produce loop (a burst of
   Events into a fresh fake API server each); processor vs a bare aiokafka consume -> produce loop
   over the raw topic the pipeline wrote (`bench/processor.py`'s code); dispatcher vs a bare
   confluent-kafka consume -> `requests` POST loop over the domain topic the pipeline wrote
   (deliveries/s, `bench/dispatcher.py`'s rate reading). Each bare loop's CPU per 1,000 raw
   Events too: the bare collector's process over its burst, the aiokafka loop's and the relay's
   (both run in this process) over their runs, the relay's scaled by the mix's deliveries per raw
   Event (0.2: one Argo Event in ten, delivered to two subscriptions). Then the "bare-client
   budget": the whole machine's CPU per 1,000 raw Events with the three services' replaced by
   their bare loops', and the rate that implies (could bare clients carry 2,500/s here?).
Figures are wall-clock on a shared machine: compare ratios, and runs with each other.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 (a test vector)
CLUSTER = "bench"
PARTITIONS = 3
ARGO_EVERY = 10
ARGO_OBJECTS = 500
SUBSCRIPTION_PATHS = ("/hooks/ordered", "/hooks/unordered")
DEFAULT_RATES = (250, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 5000)
QUICK_RATES = (500, 1000, 2000)
MIX_PERIOD = 2 * ARGO_EVERY * ARGO_OBJECTS
"""The mix repeats every this many Events (the Argo objects' names are the longest cycle)."""
SIM_MAX_CHANGES = 50_000
LATE_P95_BOUND_S = 1.0
"""A step is kept up only if the Events offered in its last quarter arrived within this, at p95.

Why 1 s: a pipeline that keeps up at a rate queues only within a batch or two per stage (the
collector's produce linger, the processor's commit interval, the dispatcher's claim); the issue's
goal is p99 under 100 ms at half load, and a tenfold margin at full load still separates a
pipeline that keeps up from one whose queue holds seconds of Events (a steady 2 s lag is a backlog
of 2 s worth of Events it is not draining, which a heuristic on growth alone let through). It is
well under the grace (3 s), so the bound, not the grace, decides."""


# -- pure parts (tests/test_bench_pipeline.py) ---------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile `q` (0-100) of `values` (NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least the first
    return ordered[int(min(rank, len(ordered))) - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
    }


@dataclass(frozen=True)
class StepResult:
    rate: float
    """The rate asked for (raw Events/s)."""
    offered: float
    """The rate the feeder reached."""
    expected: int
    """Webhooks expected (two per Argo Event)."""
    on_time: int
    """Expected webhooks that arrived by the window's end plus the grace."""
    arrived: int
    """Expected webhooks that arrived at all (by the drain's end)."""
    early_p50_s: float
    """Median end-to-end latency of the Events offered in the window's first quarter."""
    late_p50_s: float
    """The same for its last quarter."""
    late_p95_s: float = 0.0
    """The 95th percentile of the last quarter's end-to-end latency."""


def kept_up(
    step: StepResult, *, min_offered: float = 0.95, late_p95_bound_s: float = LATE_P95_BOUND_S
) -> tuple[bool, str]:
    """Whether the pipeline kept up with a step, and why not: the rate offered, nothing lost,
    nothing later than the grace, the last quarter's p95 within the bound, and no growing lag."""
    if step.offered < min_offered * step.rate:
        return False, f"the simulator offered only {step.offered:,.0f}/s"
    if step.arrived < step.expected:
        return False, f"lost {step.expected - step.arrived} of {step.expected} webhooks"
    if step.on_time < step.expected:
        return False, f"{step.expected - step.on_time} webhooks later than the grace"
    if step.late_p95_s > late_p95_bound_s:
        return False, (
            f"last quarter's p95 {step.late_p95_s * 1000:,.0f} ms"
            f" > {late_p95_bound_s * 1000:,.0f} ms"
        )
    if step.late_p50_s > step.early_p50_s + max(0.25, step.early_p50_s / 2):
        return False, (
            f"lag grew: p50 {step.early_p50_s * 1000:.0f} ms in the first quarter,"
            f" {step.late_p50_s * 1000:.0f} ms in the last"
        )
    return True, (
        f"kept up (last quarter p95 {step.late_p95_s * 1000:,.0f} ms"
        f" <= {late_p95_bound_s * 1000:,.0f} ms, nothing lost)"
    )


def sustained_rate(steps: Sequence[StepResult]) -> float:
    """The highest rate kept up before the first rate not kept up (0 if the first was not). A
    step not kept up and followed by a step at the same rate was tried again (noise from other
    work on the machine): the later attempt decides."""
    best = 0.0
    for n, step in enumerate(steps):
        if kept_up(step)[0]:
            best = max(best, step.rate)
        elif n + 1 < len(steps) and steps[n + 1].rate == step.rate:
            continue
        else:
            break
    return best


def stat_fields(stat: str) -> list[str]:
    """The fields of a /proc/<pid>/stat line after the command (the state, field 3, first)."""
    return stat[stat.rindex(")") + 2 :].split()


def cpu_seconds(stat: str) -> float:
    """utime + stime of a /proc/<pid>/stat line, in seconds."""
    fields = stat_fields(stat)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(stats: Mapping[int, str], root: int, *, ticks: float) -> float | None:
    """CPU seconds of `root` and of every live descendant (`stats`: pid -> its /proc/<pid>/stat
    line, `ticks` a second): utime + stime of each, plus each one's cutime + cstime, the children it
    has reaped (Postgres's exited backends count in the postmaster's). None if `root` is gone."""
    if root not in stats:
        return None
    children: dict[int, list[int]] = {}
    for pid, stat in stats.items():
        children.setdefault(int(stat_fields(stat)[1]), []).append(pid)
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        fields = stat_fields(stats[pid])
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        todo.extend(children.get(pid, ()))
    return total / ticks


def listening_inodes(tcp: str, port: int) -> set[int]:
    """The inodes of the sockets listening on `port` in a /proc/net/tcp (or tcp6) table."""
    out = set()
    for line in tcp.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
            out.add(int(inode))
    return out


def serving_pid(
    fd_links: Iterable[tuple[int, str]], inodes: set[int], stats: Mapping[int, str]
) -> int | None:
    """The process holding one of the sockets `inodes` (`fd_links`: (pid, the target of one of its
    /proc/<pid>/fd links)); where several do (children inheriting it), the one whose parent does
    not; None when none does or that is not one process."""
    targets = {f"socket:[{inode}]" for inode in inodes}
    holders = {pid for pid, link in fd_links if link in targets}
    roots = {
        pid for pid in holders if pid not in stats or int(stat_fields(stats[pid])[1]) not in holders
    }
    return roots.pop() if len(roots) == 1 else None


def machine_cpu_seconds(proc_stat: str, *, ticks: float) -> tuple[float, float]:
    """(busy, all) CPU seconds of every core together since boot, from /proc/stat's `cpu` line
    (busy: all but idle and iowait)."""
    for line in proc_stat.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:9]]  # user .. steal (guest is in user)
            idle = values[3] + values[4]
            return (sum(values) - idle) / ticks, sum(values) / ticks
    raise ValueError("no cpu line in /proc/stat")


def cpu_deltas(
    before: Mapping[str, tuple[float, float] | None],
    after: Mapping[str, tuple[float, float] | None],
) -> dict[str, float]:
    """CPU seconds spent between two readings (name -> (CPU s, peak MiB) or None), by name, of
    those measured in both."""
    return {
        name: last[0] - first[0]
        for name, last in after.items()
        if last is not None and (first := before.get(name)) is not None
    }


def ms_per_1000_raw(cpu_s: float, units: float, *, units_per_raw: float = 1.0) -> float:
    """CPU ms per 1,000 raw Events, from `cpu_s` spent on `units` (records, deliveries) of which a
    raw Event of the mix makes `units_per_raw`."""
    return cpu_s / (units / units_per_raw) * 1_000_000


def ceiling_rate(ms_per_1000: float, cores: int) -> float:
    """The raw Events/s `cores` fully busy could take at that CPU cost (nothing else running)."""
    return cores * 1_000_000 / ms_per_1000


def above_idle_ms(
    cpu_s: float, wall_s: float, idle_cpu_s: float, idle_wall_s: float, events: int
) -> float:
    """CPU ms per 1,000 raw Events beyond what the process spent idle (no Events offered) over
    as long: the cost that grows with the rate, without the fixed one (polls, timers, others'
    load on a shared server) that a low rate spreads over few Events."""
    return ms_per_1000_raw(cpu_s - idle_cpu_s / idle_wall_s * wall_s, events)


def ceiling_above_idle(idle_cores: float, above_idle_ms_per_1000: float, cores: int) -> float:
    """The raw Events/s `cores` could take at that cost per Event once the idle load (in cores)
    is paid; 0 when the idle load fills them, NaN when the cost per Event is not positive."""
    if above_idle_ms_per_1000 <= 0:
        return float("nan")
    return max(cores - idle_cores, 0.0) * 1_000_000 / above_idle_ms_per_1000


def bare_budget(
    whole_ms: float, services_ms: Mapping[str, float], bare_ms: Mapping[str, float]
) -> float:
    """The whole machine's CPU ms per 1,000 raw Events with each service replaced by its bare
    client loop (the same services in both)."""
    if services_ms.keys() != bare_ms.keys():
        raise ValueError(f"services {sorted(services_ms)} but bare loops {sorted(bare_ms)}")
    return whole_ms - sum(services_ms.values()) + sum(bare_ms.values())


DELIVERIES_PER_RAW = len(SUBSCRIPTION_PATHS) / ARGO_EVERY
"""One raw Event in ten is an Argo one, delivered to both subscriptions."""


# -- the workload ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Offered:
    uid: str
    line: bytes
    webhook_id: str | None
    """The domain event's id (the webhook-id) if the Event is an Argo one."""


def mix_event(i: int, *, tag: str) -> tuple[dict[str, Any], str | None]:
    """Raw Event `i` of the mix and the catalogue name of the domain event it yields (or None)."""
    namespace = f"team-{i % 20}"
    uid = str(uuid.uuid4())
    catalogue: str | None = None
    # 500 Rollouts and 500 Applications, each with a few Events a minute at 1,000 Events/s (an
    # ordered subscription sends one object's events one at a time: few objects would make a
    # queue no cluster has).
    argo = f"{(i // (2 * ARGO_EVERY)) % ARGO_OBJECTS:03d}"
    if i % ARGO_EVERY == 0:
        namespace = f"team-{(i // (2 * ARGO_EVERY)) % 20}"
    if i % ARGO_EVERY == 0 and (i // ARGO_EVERY) % 2 == 0:
        involved = {
            "kind": "Rollout",
            "name": f"svc-{argo}",
            "apiVersion": "argoproj.io/v1alpha1",
        }
        reason, component = "RolloutStepCompleted", "rollouts-controller"
        message = f"Rollout step {i % 8 + 1}/8 completed (setWeight: {(i % 8 + 1) * 10})"
        catalogue = "rollout.step_advanced"
    elif i % ARGO_EVERY == 0:
        involved = {
            "kind": "Application",
            "name": f"app-{argo}",
            "apiVersion": "argoproj.io/v1alpha1",
        }
        reason, component = "ResourceUpdated", "argocd-application-controller"
        message = "Updated sync status: Synced -> OutOfSync"
        catalogue = "application.sync_changed"
    elif i % 5 == 0:
        involved = {"kind": "ReplicaSet", "name": f"svc-{i % 300}-7d9c", "apiVersion": "apps/v1"}
        reason, component = "SuccessfulCreate", "replicaset-controller"
        message = f"Created pod: svc-{i % 300}-7d9c-{i:x}"
    else:
        pod = f"svc-{i % 300}-7d9c-{i // 4:x}"
        involved = {
            "kind": "Pod",
            "name": pod,
            "apiVersion": "v1",
            "fieldPath": "spec.containers{app}",
        }
        reason, component, message = (
            (
                "Scheduled",
                "default-scheduler",
                f"Successfully assigned {namespace}/{pod} to node-{i % 7}",
            ),
            (
                "Pulled",
                "kubelet",
                'Container image "registry.example/app:1.2.3" already present on machine',
            ),
            ("Started", "kubelet", "Started container app"),
        )[i % 3]
    event = {
        "metadata": {
            "name": f"{involved['name']}.{tag}{i:08x}",
            "namespace": namespace,
            "uid": uid,
        },
        "involvedObject": {
            **involved,
            "namespace": namespace,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{involved['name']}")),
        },
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "reportingComponent": component,
    }
    return event, catalogue


def workload(count: int, *, tag: str) -> list[Offered]:
    from processors.interpreting import Occurrence, event_id  # noqa: PLC0415

    out = []
    for i in range(count):
        event, catalogue = mix_event(i, tag=tag)
        uid = event["metadata"]["uid"]
        line = json.dumps({"type": "ADDED", "object": event}, separators=(",", ":")).encode()
        webhook_id = event_id(Occurrence(CLUSTER, uid, 1), catalogue) if catalogue else None
        out.append(Offered(uid, line, webhook_id))
    return out


def generated_workload(count: int, *, seed: str) -> tuple[list[Offered], list[dict[str, Any]]]:
    """What the fake API server generates from the mix's templates with this seed (Event i is
    template i mod the mix's period, uid `generated_uid(seed, i)`), and the templates."""
    from herald_dev.fakekube import generated_uid  # noqa: PLC0415
    from processors.interpreting import Occurrence, event_id  # noqa: PLC0415

    templates = []
    for i in range(min(count, MIX_PERIOD)):
        event, _ = mix_event(i, tag="")
        del event["metadata"]["uid"], event["metadata"]["name"]
        templates.append(event)
    catalogues = [mix_event(i, tag="")[1] for i in range(2 * ARGO_EVERY)]
    out = []
    for i in range(count):
        uid = generated_uid(seed, i)
        catalogue = catalogues[i % (2 * ARGO_EVERY)]
        webhook_id = event_id(Occurrence(CLUSTER, uid, 1), catalogue) if catalogue else None
        out.append(Offered(uid, b"", webhook_id))
    return out, templates


class SimCluster:
    """`python -m herald_dev.fakekube` in a process of its own, with a bounded history."""

    def __init__(self, work: Path, name: str, *, max_changes: int = SIM_MAX_CHANGES) -> None:
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
                "--max-changes",
                str(max_changes),
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

    def generate(
        self, items: Sequence[Offered], templates: list[dict[str, Any]], rate: float, seed: str
    ) -> tuple[dict[str, float], float]:
        """Have the server create `items` at `rate`; return when each was created and the rate
        reached."""
        parsed = urlparse(self.url)
        conn = http.client.HTTPConnection(
            parsed.hostname or "127.0.0.1", parsed.port, timeout=len(items) / rate + 120
        )
        body = json.dumps(
            {"templates": templates, "rate": rate, "count": len(items), "seed": seed}
        ).encode()
        try:
            conn.request("POST", "/herald-fake/generate", body)
            response = conn.getresponse()
            answer = json.loads(response.read())
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"fakekube answered {response.status}: {answer}")
        posted: dict[str, float] = {}
        for first, count, at in answer["batches"]:
            for n in range(int(first), int(first) + int(count)):
                posted[items[n].uid] = at
        return posted, float(answer["offered"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class Feeder:
    """POSTs Events to the fake API server on one kept-alive connection (the warm-up, the bursts)."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.conn = http.client.HTTPConnection(
            parsed.hostname or "127.0.0.1", parsed.port, timeout=60
        )

    def post(self, lines: Sequence[bytes]) -> None:
        self.conn.request("POST", "/herald-fake/events", b"\n".join(lines))
        response = self.conn.getresponse()
        response.read()
        if response.status != 201:
            raise RuntimeError(f"fakekube answered {response.status}")


# -- the receiver ------------------------------------------------------------------------------


def serve(port: int, out: Path) -> None:
    """The receiver process: 204 at once; appends `<path> <webhook-id> <time.time()>` per request."""
    lines: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, webhook_id = 0, "-"
                lines_of_head = head.split(b"\r\n")
                path = lines_of_head[0].split(b" ")[1].decode()
                for line in lines_of_head[1:]:
                    name, _, value = line.partition(b":")
                    lowered = name.strip().lower()
                    if lowered == b"content-length":
                        length = int(value)
                    elif lowered == b"webhook-id":
                        webhook_id = value.strip().decode()
                await reader.readexactly(length)
                lines.append(f"{path} {webhook_id} {time.time():.6f}\n")
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def flush(file: Any) -> None:
        while True:
            await asyncio.sleep(0.05)
            if lines:
                file.write("".join(lines))
                lines.clear()
                file.flush()

    async def main() -> None:
        with out.open("a") as file:
            server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
            task = asyncio.create_task(flush(file))
            async with server:
                await server.serve_forever()
            task.cancel()

    asyncio.run(main())


class Arrivals:
    """What the receiver recorded: the first arrival of each (path, webhook-id)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.first: dict[tuple[str, str], float] = {}
        self.duplicates = 0

    def read(self) -> None:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].decode().splitlines():
            path, webhook_id, at = line.split(" ")
            key = (path, webhook_id)
            if key in self.first:
                self.duplicates += 1
            else:
                self.first[key] = float(at)


# -- Kafka reading ---------------------------------------------------------------------------


class TopicReader:
    """Reads a topic from its beginning, without a group, up to its high watermarks on demand."""

    def __init__(self, bootstrap: str, topic: str, handle: Callable[[bytes, float], None]) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition  # noqa: PLC0415

        self.topic = topic
        self.handle = handle
        self.count = 0
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-read-{uuid.uuid4().hex[:6]}",
                "enable.auto.commit": False,
            }
        )
        self.partitions = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)]
        self.consumer.assign(self.partitions)
        self.positions = [0] * PARTITIONS

    def high(self) -> list[int]:
        from confluent_kafka import TopicPartition  # noqa: PLC0415

        return [
            self.consumer.get_watermark_offsets(
                TopicPartition(self.topic, p), timeout=10, cached=False
            )[1]
            for p in range(PARTITIONS)
        ]

    def catch_up(self, *, timeout_s: float = 120) -> None:
        target = self.high()
        deadline = time.monotonic() + timeout_s
        while any(pos < t for pos, t in zip(self.positions, target, strict=True)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.topic}: not read to its end in {timeout_s} s")
            for message in self.consumer.consume(num_messages=5000, timeout=0.5):
                if message.error() is not None:
                    continue
                self.positions[message.partition()] = message.offset() + 1
                self.count += 1
                self.handle(message.value() or b"", message.timestamp()[1] / 1000)

    def close(self) -> None:
        self.consumer.close()


def total_records(bootstrap: str, topic: str) -> int:
    reader = TopicReader(bootstrap, topic, lambda v, t: None)
    try:
        return sum(reader.high())
    finally:
        reader.close()


# -- what a run leaves behind on a shared broker and database server -------------------------

CREATED: dict[str, set[str]] = {"topics": set(), "prefixes": set(), "databases": set()}
"""Exactly what this run created, dropped at its end (the broker and the server may be shared)."""


def create_topics(bootstrap: str, env: dict[str, str], *, partitions: int) -> None:
    from herald_dev import infra  # noqa: PLC0415

    CREATED["topics"].update(env.values())
    infra.create_topics(bootstrap, env, partitions=partitions)


def drop_created(bootstrap: str, admin_url: str) -> None:
    """Delete the topics and databases this run created (and the changelogs of its processor)."""
    import psycopg  # noqa: PLC0415
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415

    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = admin.list_topics(timeout=10).topics
    doomed = [
        name
        for name in existing
        if name in CREATED["topics"] or any(name.startswith(p) for p in CREATED["prefixes"])
    ]
    for future in admin.delete_topics(doomed, operation_timeout=30).values() if doomed else []:
        try:
            future.result()
        except Exception as e:  # noqa: BLE001 - reported, the run is over
            print(f"(a topic was not deleted: {e})")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for database in CREATED["databases"]:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# -- processes ---------------------------------------------------------------------------------


TICKS = os.sysconf("SC_CLK_TCK")


def process_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds so far, peak resident MiB) of a live process."""
    cpu = cpu_seconds(Path(f"/proc/{pid}/stat").read_text())
    return cpu, peak_mib(pid)


def peak_mib(pid: int) -> float:
    """VmHWM of a live process, in MiB (0 if it cannot be read)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def read_stats() -> dict[int, str]:
    """/proc/<pid>/stat of every process now."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out[int(entry.name)] = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
    return out


def tree_stats(pid: int | None) -> tuple[float, float] | None:
    """(CPU seconds of the process tree under `pid`, the root's peak MiB); None: not measured."""
    if pid is None:
        return None
    cpu = tree_cpu_seconds(read_stats(), pid, ticks=TICKS)
    return None if cpu is None else (cpu, peak_mib(pid))


def machine_busy() -> tuple[float, float]:
    return machine_cpu_seconds(Path("/proc/stat").read_text(), ticks=TICKS)


def listening_pid(address: str) -> int | None:
    """The process listening on this machine on the port of `address` (a bootstrap `host:port`
    or a database URL), through /proc/net/tcp(6) and the processes' socket links; None when the
    address is not one local port or no one process is found."""
    if "://" in address:
        parsed = urlparse(address)
        host, port = parsed.hostname or "", parsed.port or 5432
    elif "," in address:
        return None  # several brokers: not one process on this machine
    else:
        host, _, number = address.rpartition(":")
        host, port = host.strip("[]"), int(number)
    if host not in {"127.0.0.1", "localhost", "::1", ""}:
        return None
    inodes: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            inodes |= listening_inodes(Path(f"/proc/net/{table}").read_text(), port)
        except OSError:
            continue
    if not inodes:
        return None
    links = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                links.append((int(entry.name), os.readlink(fd)))
        except OSError:  # gone, or not ours to read
            continue
    return serving_pid(links, inodes, read_stats())


@dataclass
class Pipeline:
    bootstrap: str
    admin_url: str
    work: Path
    stack: ExitStack
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    pids: dict[str, int | None] = field(default_factory=dict)
    """The processes whose CPU is counted (each with its descendants); None: not measured."""

    def start(self) -> None:
        import psycopg  # noqa: PLC0415

        from dispatchers.matching import SubscriptionFilter  # noqa: PLC0415
        from dispatchers.postgres import Store  # noqa: PLC0415
        from herald_dev.processes import ServiceProcess  # noqa: PLC0415

        self.topics = {
            "HERALD_RAW_TOPIC": f"bench.{self.run}.raw",
            "HERALD_DOMAIN_TOPIC": f"bench.{self.run}.domain",
            "HERALD_DEAD_LETTER_TOPIC": f"bench.{self.run}.dead",
            "HERALD_CHECKPOINT_TOPIC": f"bench.{self.run}.cp",
        }
        create_topics(self.bootstrap, self.topics, partitions=PARTITIONS)
        database = f"bench_pipeline_{self.run}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
            CREATED["databases"].add(database)
        self.database_url = self.admin_url.rsplit("/", 1)[0] + f"/{database}"
        self.receiver_url, self.arrivals, self.pids["receiver"] = start_receiver(
            self.work, self.stack
        )
        store = Store.open(self.database_url)
        store.migrate()
        self.subscriptions = [
            store.subscriptions.create(
                url=self.receiver_url + path,
                secrets=[SECRET],
                filter=SubscriptionFilter(clusters=(CLUSTER,)),
                ordered=path.endswith("/ordered"),
            )
            for path in SUBSCRIPTION_PATHS
        ]
        store.close()
        cluster = SimCluster(self.work, f"pipeline-{self.run}")
        self.stack.callback(cluster.stop)
        self.cluster = cluster
        self.pids["simulator"] = cluster.process.pid
        self.feeder = Feeder(cluster.url)
        env = {
            **self.topics,
            "HERALD_KAFKA_BOOTSTRAP": self.bootstrap,
            "HERALD_DATABASE_URL": self.database_url,
            "HERALD_METRICS_PORT": "0",
            "HERALD_METRICS_HOST": "127.0.0.1",
            "HERALD_CLUSTER_NAME": CLUSTER,
            "HERALD_KUBECONFIG": str(cluster.kubeconfig),
            "HERALD_PROCESSOR_APP_ID": f"bench-pipeline-{self.run}",
            "HERALD_PROCESSOR_DATA_DIR": str(self.work / "processor-data"),
            "HERALD_DISPATCHER_GROUP_ID": f"bench-pipeline-d-{self.run}",
            "HERALD_ALLOW_PRIVATE_NETWORKS": "true",
        }
        CREATED["prefixes"].add(f"bench-pipeline-{self.run}-")  # the processor's changelogs
        self.services = {}
        for name in ("collectors", "processors", "dispatchers"):
            service = ServiceProcess(name, env, self.work / f"{name}.log").start()
            self.stack.callback(service.stop)
            assert service.process is not None
            self.services[name] = service
            self.pids[name[:-1]] = service.process.pid
        self.raw_at: dict[str, float] = {}
        self.domain_at: dict[str, float] = {}
        self.domain_ids: dict[str, str] = {}
        self.raw = TopicReader(self.bootstrap, self.topics["HERALD_RAW_TOPIC"], self._raw)
        self.domain = TopicReader(self.bootstrap, self.topics["HERALD_DOMAIN_TOPIC"], self._domain)
        self.stack.callback(self.raw.close)
        self.stack.callback(self.domain.close)

    def _raw(self, value: bytes, at: float) -> None:
        if b"RolloutStepCompleted" in value or b"ResourceUpdated" in value:
            uid = json.loads(value)["object"]["metadata"]["uid"]
            self.raw_at.setdefault(uid, at)

    def _domain(self, value: bytes, at: float) -> None:
        event = json.loads(value)
        uid = event["data"]["source_event_uid"]
        self.domain_at.setdefault(uid, at)
        self.domain_ids[uid] = event["id"]

    def check_alive(self) -> None:
        for name, service in self.services.items():
            if not service.alive:
                raise RuntimeError(f"{name} exited:\n{service.log_tail()}")

    def warm_up(self, *, timeout_s: float = 180) -> None:
        """One Argo Event through the whole pipeline (the services' start-up, the groups' joins)."""
        items = [i for i in workload(ARGO_EVERY, tag="w") if i.webhook_id][:1]
        self.feeder.post([items[0].line])
        expected = {(p, str(items[0].webhook_id)) for p in SUBSCRIPTION_PATHS}
        deadline = time.monotonic() + timeout_s
        while not expected <= self.arrivals.first.keys():
            if time.monotonic() > deadline:
                raise RuntimeError("the warm-up webhooks did not arrive")
            self.check_alive()
            time.sleep(0.2)
            self.arrivals.read()

    def stats(self) -> dict[str, tuple[float, float] | None]:
        return {name: tree_stats(pid) for name, pid in self.pids.items()}

    def step(
        self, rate: float, window_s: float, *, grace_s: float, drain_s: float, tag: str
    ) -> Measured:
        seed = f"{self.run}{tag}".strip("-")
        items, templates = generated_workload(int(rate * window_s), seed=seed)
        posted, offered = self.cluster.generate(items, templates, rate, seed)
        end = time.time()
        expected = {
            (p, str(i.webhook_id)): i.uid for i in items if i.webhook_id for p in SUBSCRIPTION_PATHS
        }
        deadline = time.monotonic() + drain_s
        while True:
            self.arrivals.read()
            if expected.keys() <= self.arrivals.first.keys() or time.monotonic() > deadline:
                break
            self.check_alive()
            time.sleep(0.2)
        self.raw.catch_up()
        self.domain.catch_up()
        return Measured(self, items, posted, offered, rate, end, grace_s, expected)

    def settle(self, *, timeout_s: float = 180) -> float:
        """Wait until the processor's and the dispatcher's groups have committed up to the end of
        their topics (what a step not kept up left queued); return how long it took."""
        from confluent_kafka import Consumer, TopicPartition  # noqa: PLC0415

        groups = {
            f"bench-pipeline-{self.run}": self.topics["HERALD_RAW_TOPIC"],
            f"bench-pipeline-d-{self.run}": self.topics["HERALD_DOMAIN_TOPIC"],
        }
        began = time.monotonic()
        for group, topic in groups.items():
            consumer = Consumer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "group.id": group,
                    "enable.auto.commit": False,
                }
            )
            try:
                partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
                high = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions]
                while True:
                    committed = [tp.offset for tp in consumer.committed(partitions, timeout=10)]
                    if all(c >= h for c, h in zip(committed, high, strict=True)):
                        break
                    if time.monotonic() - began > timeout_s:
                        print(f"(not settled: {group} committed {committed} of {high})")
                        break
                    self.check_alive()
                    time.sleep(0.5)
            finally:
                consumer.close()
        return time.monotonic() - began

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()


@dataclass
class Measured:
    """One window's figures."""

    pipeline: Pipeline
    items: list[Offered]
    posted: dict[str, float]
    offered: float
    rate: float
    end: float
    grace_s: float
    expected: dict[tuple[str, str], str]

    def __post_init__(self) -> None:
        first = self.pipeline.arrivals.first
        self.e2e: list[float] = []
        self.collector: list[float] = []
        self.processor: list[float] = []
        self.dispatcher: list[float] = []
        self.lost = [k for k in self.expected if k not in first]
        self.late = [k for k in self.expected if k in first and first[k] > self.end + self.grace_s]
        self.wrong_ids = 0
        quarter = (self.end - min(self.posted.values())) / 4
        start = min(self.posted.values())
        early: list[float] = []
        late: list[float] = []
        for key, uid in self.expected.items():
            if key not in first:
                continue
            at, sent = first[key], self.posted[uid]
            self.e2e.append(at - sent)
            if sent < start + quarter:
                early.append(at - sent)
            elif sent >= self.end - quarter:
                late.append(at - sent)
            domain_at = self.pipeline.domain_at.get(uid)
            if domain_at is not None:
                self.dispatcher.append(at - domain_at)
        for item in self.items:
            if item.webhook_id is None:
                continue
            raw_at = self.pipeline.raw_at.get(item.uid)
            domain_at = self.pipeline.domain_at.get(item.uid)
            if raw_at is not None:
                self.collector.append(raw_at - self.posted[item.uid])
            if raw_at is not None and domain_at is not None:
                self.processor.append(domain_at - raw_at)
            if self.pipeline.domain_ids.get(item.uid, item.webhook_id) != item.webhook_id:
                self.wrong_ids += 1
        self.result = StepResult(
            rate=self.rate,
            offered=self.offered,
            expected=len(self.expected),
            on_time=len(self.expected) - len(self.lost) - len(self.late),
            arrived=len(self.expected) - len(self.lost),
            early_p50_s=percentile(early, 50) if early else 0.0,
            late_p50_s=percentile(late, 50) if late else 0.0,
            late_p95_s=percentile(late, 95) if late else 0.0,
        )


def dispatcher_breakdown(measured: Measured) -> dict[str, list[float]]:
    """The dispatcher's stage cut in three from its delivery log: the domain record's timestamp ->
    its delivery row (`deliveries.created_at`: consumed and stored) -> the first attempt's start
    (claimed) -> received. Empty when the log's shape is not the one this reads."""
    import psycopg  # noqa: PLC0415

    pipeline = measured.pipeline
    paths = dict(zip(pipeline.subscriptions, SUBSCRIPTION_PATHS, strict=True))
    out: dict[str, list[float]] = {"stored": [], "claimed": [], "sent": []}
    ids = list({webhook_id for _, webhook_id in measured.expected})
    try:
        with psycopg.connect(pipeline.database_url) as conn:
            rows = conn.execute(
                "SELECT d.event_id, d.subscription_id, d.created_at, min(a.started_at)"
                " FROM deliveries d JOIN attempts a ON a.delivery_id = d.id"
                " WHERE d.event_id = ANY(%s) GROUP BY d.id",
                (ids,),
            ).fetchall()
    except psycopg.Error as e:
        print(f"(the delivery log could not be read: {e})")
        return out
    first = pipeline.arrivals.first
    for event_id, subscription_id, created_at, started_at in rows:
        key = (paths[subscription_id], event_id)
        uid = measured.expected.get(key)
        domain_at = pipeline.domain_at.get(uid or "")
        if uid is None or domain_at is None or key not in first:
            continue
        out["stored"].append(created_at.timestamp() - domain_at)
        out["claimed"].append(started_at.timestamp() - created_at.timestamp())
        out["sent"].append(first[key] - started_at.timestamp())
    return out


def start_receiver(work: Path, stack: ExitStack) -> tuple[str, Arrivals, int]:
    from herald_dev import infra  # noqa: PLC0415

    port = infra.free_port()
    out = work / f"arrivals-{port}.txt"
    out.touch()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop() -> None:
        process.terminate()
        process.wait(timeout=10)

    stack.callback(stop)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    return f"http://127.0.0.1:{port}", Arrivals(out), process.pid


def topic_names(run: str, prefix: str, given: dict[str, str], **names: str) -> dict[str, str]:
    """Every topic setting named (so that creating topics touches no default name), `names`
    (raw, domain, dead, checkpoint) and `given` first, fresh names for the rest."""
    keys = {
        "raw": "HERALD_RAW_TOPIC",
        "domain": "HERALD_DOMAIN_TOPIC",
        "dead": "HERALD_DEAD_LETTER_TOPIC",
        "checkpoint": "HERALD_CHECKPOINT_TOPIC",
    }
    out = {key: f"bench.{run}.{prefix}{short}" for short, key in keys.items()}
    out.update({keys[short]: name for short, name in names.items()})
    return {**out, **given}


# -- baselines ---------------------------------------------------------------------------------


def bare_collector(kubeconfig: str, topic: str, bootstrap: str) -> None:
    """The bare loop (a process of its own): list, then watch from the list's resourceVersion with
    the kubernetes client (raw JSON lines, as the collector reads them), produce each object."""
    from confluent_kafka import Producer  # noqa: PLC0415
    from kubernetes import client, config  # noqa: PLC0415

    config.load_kube_config(config_file=kubeconfig)
    api = client.CoreV1Api()
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True}
    )

    def produce(obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        while True:
            try:
                producer.produce(
                    topic,
                    key=f"{meta['namespace']}/{meta['name']}".encode(),
                    value=json.dumps(obj).encode(),
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)

    listed = json.loads(api.list_event_for_all_namespaces(_preload_content=False).data)
    for item in listed["items"]:
        produce(item)
    version = listed["metadata"]["resourceVersion"]
    while True:
        response = api.list_event_for_all_namespaces(
            watch=True, resource_version=version, timeout_seconds=600, _preload_content=False
        )
        pending = b""
        for chunk in response.stream(amt=None, decode_content=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line:
                    change = json.loads(line)
                    version = change["object"]["metadata"]["resourceVersion"]
                    if change["type"] != "BOOKMARK":
                        produce(change["object"])
        producer.flush(10)


def bare_watch(kubeconfig: str, count: str) -> None:
    """The simulator's reader (a process of its own): the kubernetes client's list, then a watch
    from its resourceVersion read as raw JSON lines (as the collector reads them), each line
    decoded, until `count` generated Events were read; prints "ready" after the list, then one JSON
    line: Events read, seconds from the first to the last, and the lag percentiles (read -> the
    server's creation stamp)."""
    from kubernetes import client, config  # noqa: PLC0415

    from herald_dev.fakekube import GENERATED_AT  # noqa: PLC0415

    config.load_kube_config(config_file=kubeconfig)
    api = client.CoreV1Api()
    listed = json.loads(api.list_event_for_all_namespaces(_preload_content=False).data)
    version = listed["metadata"]["resourceVersion"]
    print("ready", flush=True)
    lags: list[float] = []
    first = last = 0.0
    while len(lags) < int(count):
        response = api.list_event_for_all_namespaces(
            watch=True, resource_version=version, timeout_seconds=600, _preload_content=False
        )
        pending = b""
        for chunk in response.stream(amt=None, decode_content=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            now = time.time()
            for line in lines:
                if not line:
                    continue
                change = json.loads(line)
                version = change["object"]["metadata"]["resourceVersion"]
                stamp = (change["object"]["metadata"].get("annotations") or {}).get(GENERATED_AT)
                if change["type"] == "ADDED" and stamp:
                    first = first or now
                    last = now
                    lags.append(now - float(stamp))
            if len(lags) >= int(count):
                break
    print(json.dumps({"read": len(lags), "span_s": last - first, **summary(lags)}), flush=True)


def simulator_alone(work: Path, rate: float, seconds: float) -> dict[str, float]:
    """The simulator generating `rate` Events/s for `seconds` to `bare_watch`: the rate offered,
    the rate read, the lag, and the CPU per 1,000 Events of the simulator and of the reader."""
    cluster = SimCluster(work, f"sim-{uuid.uuid4().hex[:6]}")
    count = int(rate * seconds)
    reader = subprocess.Popen(
        [sys.executable, __file__, "--bare-watch", str(cluster.kubeconfig), str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None
        if reader.stdout.readline().strip() != "ready":
            raise RuntimeError("the bare watch did not start")
        sim_before = process_stats(cluster.process.pid)[0]
        reader_before = process_stats(reader.pid)[0]
        seed = f"sim{uuid.uuid4().hex[:4]}"
        items, templates = generated_workload(count, seed=seed)
        _, offered = cluster.generate(items, templates, rate, seed)
        answer = json.loads(reader.stdout.readline())
        sim_cpu = process_stats(cluster.process.pid)[0] - sim_before
        reader_cpu = process_stats(reader.pid)[0] - reader_before
        sim_peak = process_stats(cluster.process.pid)[1]
    finally:
        reader.kill()
        reader.wait(timeout=10)
        cluster.stop()
    return {
        "offered": offered,
        "read": answer["read"] / max(answer["span_s"], 1e-9),
        "lag_p50": answer["p50"],
        "lag_p99": answer["p99"],
        "sim_cpu_ms_per_1000": sim_cpu / count * 1_000_000,
        "reader_cpu_ms_per_1000": reader_cpu / count * 1_000_000,
        "sim_peak_mib": sim_peak,
    }


def burst_rate(
    bootstrap: str,
    topic: str,
    cluster: Any,
    count: int,
    *,
    pid: int | None = None,
    timeout_s: float = 300,
) -> tuple[float, float | None]:
    """Records/s: a warm-up Event until it is on `topic`, then `count` Events POSTed at once until
    they all are (the topic's watermarks polled every 20 ms); and the CPU seconds the process tree
    under `pid` spent on the burst (None without a pid)."""
    items = workload(count + 1, tag="b")
    feeder = Feeder(cluster.url)
    feeder.post([items[0].line])
    deadline = time.monotonic() + timeout_s
    while total_records(bootstrap, topic) < 1:
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing reached {topic}")
        time.sleep(0.1)
    bodies = [[i.line for i in items[1 + n : 1 + n + 1000]] for n in range(0, count, 1000)]
    before = tree_stats(pid)
    started = time.monotonic()
    for body in bodies:
        feeder.post(body)
    while total_records(bootstrap, topic) < count + 1:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not every Event reached {topic}")
        time.sleep(0.02)
    rate = count / (time.monotonic() - started)
    after = tree_stats(pid)
    return rate, (after[0] - before[0] if before and after else None)


def collector_baseline(bootstrap: str, work: Path, count: int) -> tuple[float, float, float]:
    """Events/s of the collector and of the bare loop, and the bare loop's CPU ms per 1,000."""
    from bench.collector import FakeCluster  # noqa: PLC0415
    from herald_dev.processes import ServiceProcess  # noqa: PLC0415

    run = uuid.uuid4().hex[:6]
    topics = {
        "HERALD_RAW_TOPIC": f"bench.{run}.craw",
        "HERALD_CHECKPOINT_TOPIC": f"bench.{run}.ccp",
    }
    bare_topic = f"bench.{run}.cbare"
    create_topics(
        bootstrap, topic_names(run, "c", topics, domain=bare_topic), partitions=PARTITIONS
    )
    with ExitStack() as stack:
        cluster = FakeCluster(work, f"collector-{run}")
        stack.callback(cluster.stop)
        env = {
            **topics,
            "HERALD_KAFKA_BOOTSTRAP": bootstrap,
            "HERALD_METRICS_PORT": "0",
            "HERALD_METRICS_HOST": "127.0.0.1",
            "HERALD_CLUSTER_NAME": CLUSTER,
            "HERALD_KUBECONFIG": str(cluster.kubeconfig),
        }
        service = ServiceProcess("collectors", env, work / f"collector-{run}.log").start()
        stack.callback(service.stop)
        ours, _ = burst_rate(bootstrap, topics["HERALD_RAW_TOPIC"], cluster, count)
    with ExitStack() as stack:
        cluster = FakeCluster(work, f"bare-{run}")
        stack.callback(cluster.stop)
        process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--bare-collector",
                str(cluster.kubeconfig),
                bare_topic,
                bootstrap,
            ],
            stdout=subprocess.DEVNULL,
        )
        stack.callback(lambda: (process.terminate(), process.wait(timeout=10)))
        bare, bare_cpu = burst_rate(bootstrap, bare_topic, cluster, count, pid=process.pid)
    assert bare_cpu is not None
    return ours, bare, ms_per_1000_raw(bare_cpu, count)


def processor_baseline(
    bootstrap: str, raw_topic: str, work: Path, count: int
) -> tuple[float, float, float]:
    """Raw records/s of the processor and of the bare aiokafka loop, and the loop's CPU ms per
    1,000 (this process's, where it runs: its other clients are idle then)."""
    from bench.processor import aiokafka_loop, processor_rate  # noqa: PLC0415

    run = uuid.uuid4().hex[:6]
    topics = {
        "HERALD_RAW_TOPIC": raw_topic,
        "HERALD_DOMAIN_TOPIC": f"bench.{run}.pdomain",
        "HERALD_DEAD_LETTER_TOPIC": f"bench.{run}.pdead",
        "HERALD_CHECKPOINT_TOPIC": f"bench.{run}.pcp",
    }
    create_topics(bootstrap, topics, partitions=PARTITIONS)
    create_topics(
        bootstrap, topic_names(run, "s", {}, raw=f"bench.{run}.psink"), partitions=PARTITIONS
    )
    app_id = f"bench-pipeline-{run}-baseline"
    CREATED["prefixes"].add(f"{app_id}-")  # its changelogs, deleted with the rest
    try:
        ours = processor_rate(bootstrap, topics, count, work, app_id=app_id)
    except (ZeroDivisionError, IndexError):  # done before its second commit: too few records
        ours = float("nan")
    cpu_before = time.process_time()
    bare = asyncio.run(aiokafka_loop(bootstrap, raw_topic, f"bench.{run}.psink", count))
    return ours, bare, ms_per_1000_raw(time.process_time() - cpu_before, count)


def bare_dispatcher(
    bootstrap: str, topic: str, urls: Sequence[str], count: int, *, threads: int = 8
) -> float:
    """Deliveries/s of a bare loop: a confluent-kafka consumer handing each record to `threads`
    threads with a `requests.Session` each, POSTing it signed to every URL."""
    import requests  # noqa: PLC0415
    from confluent_kafka import Consumer  # noqa: PLC0415

    from dispatchers.signing import sign  # noqa: PLC0415

    work: queue.Queue[tuple[str, bytes, str] | None] = queue.Queue(maxsize=2000)
    done = [0]
    lock = threading.Lock()

    def worker() -> None:
        session = requests.Session()
        while (item := work.get()) is not None:
            webhook_id, body, url = item
            ts = int(time.time())
            headers = {
                "Content-Type": "application/cloudevents+json",
                "webhook-id": webhook_id,
                "webhook-timestamp": str(ts),
                "webhook-signature": sign(
                    secrets=(SECRET,), message_id=webhook_id, timestamp=ts, body=body
                ),
            }
            session.post(url, data=body, headers=headers, timeout=(5, 15)).close()
            with lock:
                done[0] += 1

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bare-d-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    queued = 0
    started: float | None = None
    try:
        while queued < count:
            for message in consumer.consume(num_messages=500, timeout=0.1):
                if message.error() is not None or queued >= count:
                    continue
                if started is None:
                    started = time.perf_counter()
                body = message.value() or b""
                webhook_id = json.loads(body)["id"]
                for url in urls:
                    work.put((webhook_id, body, url))
                    queued += 1
    finally:
        for _ in pool:
            work.put(None)
        for t in pool:
            t.join()
        consumer.close()
    assert started is not None
    return done[0] / (time.perf_counter() - started)


def dispatcher_baseline(
    bootstrap: str, admin_url: str, domain_topic: str, work: Path, count: int
) -> tuple[float, float, float]:
    """Deliveries/s of the dispatcher and of the bare relay, and the relay's CPU ms per 1,000 raw
    Events of the mix (`DELIVERIES_PER_RAW` deliveries each; this process's CPU, where it runs)."""
    import psycopg  # noqa: PLC0415

    from bench.dispatcher import delivered_rate  # noqa: PLC0415
    from dispatchers.matching import SubscriptionFilter  # noqa: PLC0415
    from dispatchers.postgres import Store  # noqa: PLC0415
    from herald_dev.processes import ServiceProcess  # noqa: PLC0415

    run = uuid.uuid4().hex[:6]
    with ExitStack() as stack:
        receiver_url, _, _ = start_receiver(work, stack)
        urls = [receiver_url + path for path in SUBSCRIPTION_PATHS]
        database = f"bench_pipeline_d_{run}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
            CREATED["databases"].add(database)
        url = admin_url.rsplit("/", 1)[0] + f"/{database}"
        store = Store.open(url)
        store.migrate()
        subscriptions = {
            store.subscriptions.create(
                url=u,
                secrets=[SECRET],
                filter=SubscriptionFilter(clusters=(CLUSTER,)),
                ordered=u.endswith("/ordered"),
            )
            for u in urls
        }
        store.close()
        env = {
            "HERALD_KAFKA_BOOTSTRAP": bootstrap,
            "HERALD_DATABASE_URL": url,
            "HERALD_DOMAIN_TOPIC": domain_topic,
            "HERALD_DEAD_LETTER_TOPIC": f"bench.{run}.ddead",
            "HERALD_DISPATCHER_GROUP_ID": f"bench-d-{run}",
            "HERALD_METRICS_PORT": "0",
            "HERALD_METRICS_HOST": "127.0.0.1",
            "HERALD_ALLOW_PRIVATE_NETWORKS": "true",
        }

        create_topics(
            bootstrap,
            topic_names(run, "d", {}, domain=domain_topic, dead=env["HERALD_DEAD_LETTER_TOPIC"]),
            partitions=PARTITIONS,
        )
        service = ServiceProcess("dispatchers", env, work / f"dispatcher-{run}.log").start()
        stack.callback(service.stop)
        ours = delivered_rate(url, subscriptions, count)
        service.stop()
        cpu_before = time.process_time()
        bare = bare_dispatcher(bootstrap, domain_topic, urls, count)
        bare_cpu = time.process_time() - cpu_before
    return ours, bare, ms_per_1000_raw(bare_cpu, count, units_per_raw=DELIVERIES_PER_RAW)


# -- the run -----------------------------------------------------------------------------------


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def ms(value: float) -> str:
    return f"{value * 1000:,.0f}"


def print_latencies(measured: Measured) -> None:
    rows = [
        ("end to end", measured.e2e),
        ("  fake API -> raw topic (collector)", measured.collector),
        ("  raw -> domain topic (processor)", measured.processor),
        ("  domain topic -> received (dispatcher)", measured.dispatcher),
    ]
    parts = dispatcher_breakdown(measured)
    rows += [
        ("    -> delivery row stored (consumed)", parts["stored"]),
        ("    -> first attempt started (claimed)", parts["claimed"]),
        ("    -> received (sent)", parts["sent"]),
    ]
    print(f"{'latency, ms':42} {'n':>7} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}")
    for name, values in rows:
        s = summary(values)
        print(
            f"{name:42} {len(values):>7} {ms(s['p50']):>7} {ms(s['p95']):>7} {ms(s['p99']):>7} {ms(s['max']):>7}"
        )


ROWS = ("collector", "processor", "dispatcher", "kafka", "postgres", "receiver", "simulator")
SERVICES = ("collector", "processor", "dispatcher")


@dataclass(frozen=True)
class Budget:
    """A window's CPU per 1,000 raw Events by row (and "whole machine"): on average, and above
    the row's idle load; and each row's idle load in cores."""

    average: dict[str, float]
    above_idle: dict[str, float]
    idle_cores: dict[str, float]


Stats = Mapping[str, tuple[float, float] | None]


def print_cpu_table(
    window: tuple[Stats, Stats, float],
    idle: tuple[Stats, Stats, float],
    shared: set[str],
    *,
    events: int,
    cores: int,
) -> Budget:
    """The half-rate window's CPU per process tree, the three services' and the whole machine's
    (`window` and `idle`: the stats before and after, and the wall seconds between)."""
    (before, after, wall_s), (idle_before, idle_after, idle_s) = window, idle
    print(
        f"\n{'process':12} {'CPU s in window':>16} {'CPU ms / 1000 Events':>21} {'peak MiB':>9}"
        f" {'% of a core':>12} {'idle % core':>12} {'ms/1000 above idle':>19}"
    )
    budget = Budget({}, {}, {})
    cpu: dict[str, float] = {}
    for name in ROWS:
        first, last = before.get(name), after.get(name)
        idle_first, idle_last = idle_before.get(name), idle_after.get(name)
        label = name + (" *" if name in shared else "")
        if first is None or last is None or idle_first is None or idle_last is None:
            print(f"{label:12} {'not measured':>16}   (no process of its own found)")
            continue
        cpu[name] = last[0] - first[0]
        idle_cpu = idle_last[0] - idle_first[0]
        budget.average[name] = ms_per_1000_raw(cpu[name], events)
        budget.idle_cores[name] = idle_cpu / idle_s
        budget.above_idle[name] = above_idle_ms(cpu[name], wall_s, idle_cpu, idle_s, events)
        print(
            f"{label:12} {cpu[name]:>16.2f} {budget.average[name]:>21.0f} {last[1]:>9.0f}"
            f" {cpu[name] / wall_s * 100:>12.0f} {budget.idle_cores[name] * 100:>12.0f}"
            f" {budget.above_idle[name]:>19.0f}"
        )
    three = sum(cpu.get(name, 0.0) for name in SERVICES)
    print(
        f"{'the three':12} {three:>16.2f} {ms_per_1000_raw(three, events):>21.0f}"
        f"   (collector, processor, dispatcher: at most"
        f" {ceiling_rate(ms_per_1000_raw(three, events), cores):,.0f} raw Events/s on {cores} idle"
        " cores, nothing else running)"
    )
    whole = sum(cpu.values())
    for part in (budget.average, budget.above_idle, budget.idle_cores):
        part["whole machine"] = sum(part.values())
    missing = [name for name in ROWS if name not in cpu]
    print(
        f"{'whole machine':12} {whole:>16.2f} {budget.average['whole machine']:>21.0f}"
        f" {'':>9} {whole / wall_s * 100:>12.0f} {budget.idle_cores['whole machine'] * 100:>12.0f}"
        f" {budget.above_idle['whole machine']:>19.0f}"
        f"   (every row above{', but ' + ' and '.join(missing) + ' (not measured)' if missing else ''})"
    )
    bound = "; a lower bound of its CPU, so an upper bound of the rate" if missing else ""
    print(
        f"at most {ceiling_rate(budget.average['whole machine'], cores):,.0f} raw Events/s on"
        f" {cores} cores at the window's average cost per Event{bound}; at most"
        f" {ceiling_above_idle(budget.idle_cores['whole machine'], budget.above_idle['whole machine'], cores):,.0f}"
        " with the idle load paid once and the cost above it per Event"
        f" (idle: {idle_s:.0f} s with no Events offered, just before the window)"
    )
    if shared:
        print(
            f"* {' and '.join(sorted(shared))}: shared (HERALD_KAFKA_BOOTSTRAP/HERALD_DATABASE_URL),"
            " found by the port it listens on: it serves others too, whose load its CPU includes"
        )
    return budget


def main() -> None:  # noqa: PLR0915 - one script, read top to bottom
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--step-s", type=float, default=20, help="seconds per rate step")
    parser.add_argument("--rates", help="comma-separated raw Events/s to step through")
    parser.add_argument(
        "--grace-s", type=float, default=3, help="how late after a window its webhooks may arrive"
    )
    parser.add_argument(
        "--drain-s", type=float, default=90, help="how long to wait for a window's webhooks"
    )
    parser.add_argument(
        "--half-s", type=float, help="seconds of the half-rate window (default: 1.5 steps)"
    )
    parser.add_argument(
        "--retries", type=int, default=1, help="times a step not kept up is tried again"
    )
    parser.add_argument("--burst", type=int, default=20_000, help="Events per baseline burst")
    parser.add_argument("--quick", action="store_true", help="a 2-minute smoke run")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--bare-collector", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--bare-watch", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument(
        "--sim-rates",
        default="4000,8000",
        help="Events/s the simulator alone offers a bare watch (empty: skip)",
    )
    parser.add_argument("--sim-s", type=float, default=10, help="seconds per simulator rate")
    parser.add_argument(
        "--idle-s",
        type=float,
        default=5,
        help="seconds with no Events before the half-rate window (each process's idle load)",
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.out)
        return
    if args.bare_collector:
        bare_collector(*args.bare_collector)
        return
    if args.bare_watch:
        bare_watch(*args.bare_watch)
        return
    if args.quick:
        args.step_s, args.burst, args.drain_s = (
            min(args.step_s, 8),
            min(args.burst, 5000),
            min(args.drain_s, 30),
        )
    rates = (
        [float(r) for r in args.rates.split(",")]
        if args.rates
        else list(QUICK_RATES if args.quick else DEFAULT_RATES)
    )
    half_s = args.half_s or args.step_s * 1.5
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from herald_dev import infra  # noqa: PLC0415

    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="herald-bench-pipeline-"))
    with (
        infra.kafka_broker_served(work) as kafka,
        infra.postgres_server_served() as postgres,
        ExitStack() as stack,
    ):
        bootstrap, admin_url = kafka.address, postgres.address
        stack.callback(drop_created, bootstrap, admin_url)
        sim_rates = [float(r) for r in args.sim_rates.split(",") if r.strip()]
        if sim_rates:
            print(
                f"the simulator alone, {args.sim_s:.0f} s per rate, to a bare kubernetes-client"
                f" watch; {load()}"
            )
            print(
                f"{'rate/s':>7} {'offered':>8} {'read/s':>8} {'lag p50':>8} {'p99 ms':>7}"
                f" {'sim CPU ms/1000':>16} {'reader CPU ms/1000':>19} {'sim peak MiB':>13}"
            )
            for rate in sim_rates:
                sim = simulator_alone(work, rate, args.sim_s)
                print(
                    f"{rate:>7,.0f} {sim['offered']:>8,.0f} {sim['read']:>8,.0f}"
                    f" {ms(sim['lag_p50']):>8} {ms(sim['lag_p99']):>7}"
                    f" {sim['sim_cpu_ms_per_1000']:>16.0f} {sim['reader_cpu_ms_per_1000']:>19.0f}"
                    f" {sim['sim_peak_mib']:>13.0f}",
                    flush=True,
                )
        pipeline = Pipeline(bootstrap, admin_url, work, stack)
        pipeline.start()
        shared = {
            name for name, served in (("kafka", kafka), ("postgres", postgres)) if not served.pid
        }
        pipeline.pids["kafka"] = kafka.pid or listening_pid(bootstrap)
        pipeline.pids["postgres"] = postgres.pid or listening_pid(admin_url)
        print(f"pipeline started (logs in {work}); {load()}; warming up ...", flush=True)
        pipeline.warm_up()
        steps: list[Measured] = []
        header = f"{'rate/s':>7} {'offered':>8} {'webhooks':>15} {'e2e p50':>8} {'p99':>7} {'coll p99':>9} {'proc p99':>9} {'disp p99':>9} {'CPU ms/1000':>12}  verdict"
        print(
            f"\nrate stepping, {args.step_s:.0f} s per step, grace {args.grace_s:.0f} s (latencies in"
            " ms; CPU: the whole machine's rows below, per 1,000 raw Events offered, drain included)"
        )
        print(header, flush=True)
        attempts = [(rate, attempt) for rate in rates for attempt in range(1 + args.retries)]
        for n, (rate, attempt) in enumerate(attempts):
            if attempt and kept_up(steps[-1].result)[0]:
                continue
            step_before = pipeline.stats()
            measured = pipeline.step(
                rate, args.step_s, grace_s=args.grace_s, drain_s=args.drain_s, tag=f"s{n}-"
            )
            step_cpu = sum(cpu_deltas(step_before, pipeline.stats()).values())
            steps.append(measured)
            ok, why = kept_up(measured.result)
            r = measured.result
            print(
                f"{rate:>7,.0f} {measured.offered:>8,.0f} {r.on_time:>7}/{r.expected:<7} {ms(percentile(measured.e2e, 50)):>8}"
                f" {ms(percentile(measured.e2e, 99)):>7} {ms(percentile(measured.collector, 99)):>9}"
                f" {ms(percentile(measured.processor, 99)):>9} {ms(percentile(measured.dispatcher, 99)):>9}"
                f" {ms_per_1000_raw(step_cpu, len(measured.items)):>12,.0f}  {why}",
                flush=True,
            )
            if not ok and attempt == args.retries:
                break
        sustained = sustained_rate([m.result for m in steps])
        half = (sustained or rates[0]) / 2
        settled = pipeline.settle()
        print(
            f"\nsustained: {sustained:,.0f} raw Events/s; {load()}; the backlog drained"
            f" {settled:.0f} s after the last step",
            flush=True,
        )
        idle_before, idle_began = pipeline.stats(), time.monotonic()
        time.sleep(args.idle_s)
        idle = (idle_before, pipeline.stats(), time.monotonic() - idle_began)
        before, machine_before, bench_before = pipeline.stats(), machine_busy(), time.process_time()
        window_began = time.monotonic()
        measured = pipeline.step(half, half_s, grace_s=args.grace_s, drain_s=args.drain_s, tag="h-")
        window_s = time.monotonic() - window_began
        after, machine_after, bench_after = pipeline.stats(), machine_busy(), time.process_time()
        r = measured.result
        print(
            f"\nat half that rate, {half:,.0f} raw Events/s offered for {half_s:.0f} s ({measured.offered:,.0f}/s reached):"
        )
        print_latencies(measured)
        print(
            f"loss check: {r.arrived} of {r.expected} expected webhooks arrived ({len(measured.lost)} lost,"
            f" {len(measured.late)} later than the grace, {pipeline.arrivals.duplicates} duplicates so far,"
            f" {measured.wrong_ids} domain events with another id than expected)"
        )
        cores = os.cpu_count() or 1
        budget = print_cpu_table(
            (before, after, window_s), idle, shared, events=len(measured.items), cores=cores
        )
        busy = machine_after[0] - machine_before[0]
        total = machine_after[1] - machine_before[1]
        print(
            f"not counted: this bench's own process, {bench_after - bench_before:.2f} CPU s (it reads"
            f" both topics to time the stages). The machine as a whole (/proc/stat) was busy"
            f" {busy:.1f} of {total:.1f} CPU s meanwhile ({total / cores:.0f} s with the drain):"
            " what the rows do not sum to is this bench and other work on the machine."
        )
        domain_count = total_records(bootstrap, pipeline.topics["HERALD_DOMAIN_TOPIC"])
        raw_count = total_records(bootstrap, pipeline.topics["HERALD_RAW_TOPIC"])
        pipeline.stop()
        if not args.no_baselines:
            print(
                f"\nbaselines (pipeline stopped; {raw_count:,} raw and {domain_count:,} domain records written) ...",
                flush=True,
            )
            coll, coll_bare, coll_ms = collector_baseline(bootstrap, work, args.burst)
            proc, proc_bare, proc_ms = processor_baseline(
                bootstrap, pipeline.topics["HERALD_RAW_TOPIC"], work, min(raw_count, args.burst * 3)
            )
            disp, disp_bare, disp_ms = dispatcher_baseline(
                bootstrap,
                admin_url,
                pipeline.topics["HERALD_DOMAIN_TOPIC"],
                work,
                min(2 * domain_count, args.burst // 2),
            )
            print(
                f"{'stage':12} {'ours /s':>9} {'bare /s':>9} {'ratio':>6} {'bare CPU ms/1000':>17}"
                "  bare loop"
            )
            print(
                f"{'collector':12} {coll:>9,.0f} {coll_bare:>9,.0f} {coll / coll_bare:>6.2f} {coll_ms:>17.0f}"
                f"  kubernetes-client list+watch -> confluent-kafka produce (Events/s, a burst of {args.burst:,};"
                " CPU per 1,000 raw Events, its process)"
            )
            print(
                f"{'processor':12} {proc:>9,.0f} {proc_bare:>9,.0f} {proc / proc_bare:>6.2f} {proc_ms:>17.0f}"
                "  aiokafka consume -> produce (raw records/s; CPU per 1,000 raw records, its loop)"
            )
            print(
                f"{'dispatcher':12} {disp:>9,.0f} {disp_bare:>9,.0f} {disp / disp_bare:>6.2f} {disp_ms:>17.0f}"
                "  confluent-kafka consume -> requests POST, 8 threads (deliveries/s; CPU per 1,000"
                f" raw Events of the mix: {DELIVERIES_PER_RAW:.1f} deliveries each, one Argo Event in"
                f" {ARGO_EVERY} delivered to {len(SUBSCRIPTION_PATHS)} subscriptions)"
            )
            print(
                f"pipeline sustained {sustained:,.0f} raw Events/s = {sustained / min(coll_bare, proc_bare):.2f} of the slower bare loop of the collector and the processor (raw records/s)"
            )
            if all(name in budget.average for name in SERVICES):
                bare_ms = {"collector": coll_ms, "processor": proc_ms, "dispatcher": disp_ms}
                others = [n for n in ROWS if n not in SERVICES]
                unmeasured = [n for n in others if n not in budget.average]
                average = bare_budget(
                    budget.average["whole machine"],
                    {n: budget.average[n] for n in SERVICES},
                    bare_ms,
                )
                above = bare_budget(
                    budget.above_idle["whole machine"],
                    {n: budget.above_idle[n] for n in SERVICES},
                    bare_ms,
                )
                idle_others = budget.idle_cores["whole machine"] - sum(
                    budget.idle_cores[n] for n in SERVICES
                )
                print(
                    f"bare-client budget: {average:,.0f} CPU ms per 1,000 raw Events = the whole"
                    f" machine's {budget.average['whole machine']:,.0f} with the three services'"
                    f" {sum(budget.average[n] for n in SERVICES):,.0f} replaced by their bare loops'"
                    f" {sum(bare_ms.values()):,.0f}: at most {ceiling_rate(average, cores):,.0f} raw"
                    f" Events/s on {cores} cores; with the other rows' idle load paid once"
                    f" ({idle_others * 100:.0f} % of a core) and their cost above it,"
                    f" {above:,.0f} ms per 1,000: at most"
                    f" {ceiling_above_idle(idle_others, above, cores):,.0f}"
                    + (f" ({' and '.join(unmeasured)} not measured)" if unmeasured else "")
                    + ". Kafka, Postgres, the receiver and the simulator as measured in the window:"
                    " Postgres as Herald's dispatcher used it (the bare relay records nothing);"
                    " the bare loops' figures are from bursts, not a steady rate"
                )
        print(
            f"\nrun took {time.monotonic() - began:.0f} s; {load()};"
            " figures are wall-clock on a shared machine"
        )


if __name__ == "__main__":
    main()
