"""The watchdog thread and the signal thread act when the event loop they watch is blocked: small
real programs whose asyncio loop is stuck in a blocking call, run as processes and signalled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support import wait_until

REPO = Path(__file__).resolve().parents[2]

BLOCKED_LOOP = textwrap.dedent(
    """
    import asyncio, signal, sys, time
    from herald_runtime.watchdog import SignalStop

    signals = SignalStop(grace_s=float(sys.argv[1])).install()
    loop = asyncio.new_event_loop()
    # What asyncio (and Faust's worker) would run on SIGTERM: never, while the loop is blocked.
    loop.add_signal_handler(signal.SIGTERM, lambda: print("the loop's handler ran", flush=True))
    signals.on_stop(lambda received: print("asked to stop:", received.name, flush=True))

    async def blocked() -> None:
        print("running", flush=True)
        time.sleep(3600)  # a blocking call on the event loop

    loop.run_until_complete(blocked())
    """
)

CLEAN_STOP = textwrap.dedent(
    """
    import asyncio, sys
    from herald_runtime.watchdog import SignalStop

    signals = SignalStop(grace_s=30).install()
    loop = asyncio.new_event_loop()
    stopped = asyncio.Event()
    signals.on_stop(lambda received: loop.call_soon_threadsafe(stopped.set))

    async def serve() -> None:
        print("running", flush=True)
        await stopped.wait()
        print("stopped cleanly", flush=True)

    loop.run_until_complete(serve())
    """
)

RESTARTED = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from herald_runtime.heartbeats import Heartbeats
    from herald_runtime.watchdog import Watchdog

    if sys.argv[1:] == ["again"]:
        print("started again", flush=True)
        sys.exit(0)
    beats = Heartbeats({"loop": 1.0})
    loop = asyncio.new_event_loop()

    def beat() -> None:
        beats.beat("loop")
        loop.call_later(0.1, beat)

    def restart(reason: str) -> None:
        print("restarting:", reason, flush=True)
        os.execv(sys.executable, [sys.executable, sys.argv[0], "again"])

    Watchdog(lambda now: "the loop is blocked" if beats.stuck() else None, remedy=restart,
             interval_s=0.2).start()
    loop.call_soon(beat)

    async def work() -> None:
        await asyncio.sleep(0.5)  # the loop turns, and beats
        print("blocking", flush=True)
        time.sleep(3600)

    loop.run_until_complete(work())
    """
)


def _run(tmp_path: Path, script: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    path = tmp_path / "program.py"
    path.write_text(script)
    out = tmp_path / "out.log"
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, str(path), *args],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, out


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.mark.timeout(60)
def test_sigterm_ends_a_process_whose_event_loop_is_blocked_within_the_grace(
    tmp_path: Path,
) -> None:
    process, out = _run(tmp_path, BLOCKED_LOOP, "2")
    try:
        wait_until(lambda: "running" in out.read_text())
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 1
        took = time.monotonic() - sent
    finally:
        _stop(process)
    log = out.read_text()
    assert 2 <= took < 10, log
    assert "asked to stop: SIGTERM" in log
    assert "did not end within 2.0s" in log
    assert "the loop's handler ran" not in log
    assert "blocked" in log  # the stacks of every thread, the stuck one included


@pytest.mark.timeout(60)
def test_a_second_signal_ends_it_at_once(tmp_path: Path) -> None:
    process, out = _run(tmp_path, BLOCKED_LOOP, "60")
    try:
        wait_until(lambda: "running" in out.read_text())
        process.send_signal(signal.SIGTERM)
        wait_until(lambda: "asked to stop" in out.read_text())
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 1
    finally:
        _stop(process)
    assert "SIGTERM, then SIGINT: exiting now" in out.read_text()


@pytest.mark.timeout(60)
def test_a_service_that_stops_cleanly_ends_with_its_own_status(tmp_path: Path) -> None:
    process, out = _run(tmp_path, CLEAN_STOP)
    try:
        wait_until(lambda: "running" in out.read_text())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        _stop(process)
    assert "stopped cleanly" in out.read_text()


@pytest.mark.timeout(60)
def test_the_watchdog_restarts_a_process_whose_event_loop_stopped_beating(tmp_path: Path) -> None:
    process, out = _run(tmp_path, RESTARTED)
    try:
        assert process.wait(timeout=30) == 0
    finally:
        _stop(process)
    log = out.read_text()
    assert log.index("blocking") < log.index("restarting: the loop is blocked")
    assert "work" in log  # the blocked coroutine is named in the stacks
    assert log.rstrip().endswith("started again")
