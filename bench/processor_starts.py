"""How often a processor started on a fresh broker becomes ready, and how long it takes.

    .venv/bin/python bench/processor_starts.py [--starts 12] [--ready-within-s 60]
        [--probe-interval-s 0.1] [--stop-within-s 60] [--dumps DIR]

The field case (issue 9): a fresh single-node Kafka, the three topics created with 3 partitions
each, `python -m processors` started with a fresh data directory; about one start in four stayed
in Faust's table recovery for good, its event loop blocked. Each start here does exactly that on a
broker of its own (never HERALD_KAFKA_BOOTSTRAP: the broker must be fresh), waits for `/readyz` to
answer 200, then stops the worker with SIGTERM and times how long it takes to exit. A worker not
ready in time has its threads dumped with `py-spy dump` (if py-spy is installed) into `--dumps`,
with its log. Everything it starts it stops, by pid. It prints one line per start and a summary.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from herald_dev import infra  # noqa: E402

PARTITIONS = 3


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return 0


def one_start(
    index: int, *, ready_within_s: float, probe_interval_s: float, stop_within_s: float, dumps: Path
) -> tuple[float | None, float | None]:
    """(seconds to ready or None, seconds SIGTERM took to end the worker or None: it did not)."""
    work = Path(tempfile.mkdtemp(prefix="herald-starts-"))
    pid, bootstrap, _ = infra.start_kafka(work)
    try:
        topics = {
            "HERALD_RAW_TOPIC": "herald.kube-events.v1",
            "HERALD_DOMAIN_TOPIC": "herald.deploy-events.v1",
            "HERALD_DEAD_LETTER_TOPIC": "herald.dead-letters.v1",
            "HERALD_CHECKPOINT_TOPIC": "herald.collector-checkpoints.v1",
        }
        infra.create_topics(bootstrap, topics, partitions=PARTITIONS)
        port = infra.free_port()
        log = work / "processor.log"
        env = {
            **os.environ,
            **topics,
            "HERALD_KAFKA_BOOTSTRAP": bootstrap,
            "HERALD_METRICS_PORT": str(port),
            "HERALD_PROCESSOR_DATA_DIR": str(work / "data"),
        }
        with log.open("wb") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "processors"],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        started = time.monotonic()
        ready_after: float | None = None
        while time.monotonic() - started < ready_within_s and worker.poll() is None:
            if readyz(port) == 200:
                ready_after = time.monotonic() - started
                break
            time.sleep(probe_interval_s)
        if ready_after is None:
            dumps.mkdir(parents=True, exist_ok=True)
            if worker.poll() is None:
                worker.send_signal(signal.SIGUSR1)  # mode's Worker writes every task's stack
                time.sleep(3)
            spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            if Path(spy).exists() and worker.poll() is None:
                dump = subprocess.run(
                    [spy, "dump", "--pid", str(worker.pid)],
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=60,
                )
                (dumps / f"start-{index}.py-spy.txt").write_text(dump.stdout + dump.stderr)
            shutil.copy(log, dumps / f"start-{index}.log")
        stopping = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=stop_within_s)
            stopped_after: float | None = time.monotonic() - stopping
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
            stopped_after = None
        return ready_after, stopped_after
    finally:
        infra.stop_kafka(pid)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--starts", type=int, default=12)
    parser.add_argument("--ready-within-s", type=float, default=60)
    parser.add_argument("--probe-interval-s", type=float, default=0.1)
    parser.add_argument("--stop-within-s", type=float, default=60)
    parser.add_argument("--dumps", type=Path, default=Path(tempfile.gettempdir()) / "herald-starts")
    args = parser.parse_args()
    run = uuid.uuid4().hex[:6]
    dumps = args.dumps / run
    results = []
    for index in range(args.starts):
        ready_after, stop_s = one_start(
            index,
            ready_within_s=args.ready_within_s,
            probe_interval_s=args.probe_interval_s,
            stop_within_s=args.stop_within_s,
            dumps=dumps,
        )
        results.append((ready_after, stop_s))
        ready = f"ready after {ready_after:.1f}s" if ready_after is not None else "NOT READY"
        stop = (
            f"SIGTERM ended it in {stop_s:.1f}s"
            if stop_s is not None
            else f"SIGTERM did not end it within {args.stop_within_s:.0f}s (killed)"
        )
        print(f"start {index + 1}/{args.starts}: {ready}; {stop}", flush=True)
    stuck = sum(1 for ready, _ in results if ready is None)
    unstopped = sum(1 for _, stop in results if stop is None)
    print(
        f"{stuck} of {len(results)} starts not ready within {args.ready_within_s:.0f}s;"
        f" {unstopped} not ended by SIGTERM within {args.stop_within_s:.0f}s;"
        f" dumps in {dumps if stuck else '-'}"
    )


if __name__ == "__main__":
    main()
