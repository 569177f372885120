"""The processor's health checks run in the health endpoint's thread, beside the Faust worker, and
read only what the worker publishes (`processors.liveness`)."""

from __future__ import annotations

import asyncio
import threading

import faust
import pytest

from herald_runtime.heartbeats import Heartbeats
from processors.app import build_app, publish_status
from processors.liveness import MAIN, WorkerStatus, probes
from processors.settings import ProcessorSettings


@pytest.fixture
def app() -> faust.App:
    settings = ProcessorSettings(kafka_bootstrap="127.0.0.1:1")  # never connected to
    return build_app(settings, raw_partitions=3, restart=lambda: None)


def test_probing_readiness_before_the_worker_runs_leaves_faust_on_the_workers_loop(
    app: faust.App,
) -> None:
    """Issue 9: a /readyz probe that came before Faust bound its table manager to the worker's loop
    bound it, from the health thread, to a new loop that never runs: recovery then waited forever
    (about one fresh start in four under a readiness probe)."""
    status = WorkerStatus()
    live, ready = probes(status, Heartbeats({MAIN: 60}).stuck)
    probing = threading.Thread(target=lambda: (live(), ready()))
    probing.start()
    probing.join()
    worker = faust.Worker(app, loglevel="INFO")
    publish_status(app, worker.loop, status.publish, interval_s=0.05)
    worker.loop.run_until_complete(asyncio.sleep(0.2))
    assert app.tables.loop is worker.loop
    assert app.tables.recovery.loop is worker.loop
    assert status.get().running
    assert ready() == (False, {"stuck": {}, "recovered": False, "rebalancing": False})
    worker.loop.close()
