"""What /healthz, /readyz and the watchdog thread make of the status the worker publishes."""

from __future__ import annotations

from processors.liveness import MAIN, WorkerStatus, probes, stall
from processors.stalls import UnreadyGuard


def test_a_worker_waiting_for_kafka_is_live_and_not_ready_and_says_why() -> None:
    status = WorkerStatus()
    live, ready = probes(status, dict)
    status.wait_for("Kafka at 127.0.0.1:1 does not answer")
    assert live() == (True, {"stuck": {}})
    assert ready() == (
        False,
        {
            "stuck": {},
            "recovered": False,
            "rebalancing": False,
            "waiting_for": "Kafka at 127.0.0.1:1 does not answer",
        },
    )


def test_a_worker_is_ready_once_its_tables_are_recovered_and_it_is_not_rebalancing() -> None:
    status = WorkerStatus()
    _, ready = probes(status, dict)
    status.publish(recovered=False, rebalancing=True)
    assert ready()[0] is False
    status.publish(recovered=True, rebalancing=True)
    assert ready()[0] is False
    status.publish(recovered=True, rebalancing=False)
    assert ready() == (True, {"stuck": {}, "recovered": True, "rebalancing": False})


def test_a_blocked_main_loop_is_neither_live_nor_ready() -> None:
    status = WorkerStatus()
    status.publish(recovered=True, rebalancing=False)
    live, ready = probes(status, lambda: {MAIN: 75.0})
    assert live() == (False, {"stuck": {MAIN: 75.0}})
    assert ready()[0] is False


def test_a_blocked_main_loop_is_restarted_whatever_the_phase() -> None:
    running, waiting = WorkerStatus(), WorkerStatus()
    running.publish(recovered=True, rebalancing=False)
    waiting.wait_for("Kafka at 127.0.0.1:1 does not answer")
    for status in (running, waiting):
        reason = stall(status.get(), {MAIN: 61.0}, UnreadyGuard(after_s=300), now=0)
        assert reason is not None
        assert "has not turned for 61s" in reason


def test_waiting_for_kafka_is_never_a_stall_however_long() -> None:
    status = WorkerStatus()
    status.wait_for("Kafka at 127.0.0.1:1 does not answer")
    guard = UnreadyGuard(after_s=300)
    assert all(stall(status.get(), {}, guard, now=t) is None for t in (0, 300, 3000, 30000))


def test_a_worker_recovering_past_the_limit_is_restarted_and_a_ready_one_never() -> None:
    status = WorkerStatus()
    guard = UnreadyGuard(after_s=300)
    status.publish(recovered=False, rebalancing=False)
    assert stall(status.get(), {}, guard, now=1000) is None
    assert stall(status.get(), {}, guard, now=1299) is None
    reason = stall(status.get(), {}, guard, now=1300)
    assert reason is not None
    assert "recovering its tables for 300s" in reason
    ready = WorkerStatus()
    ready.publish(recovered=True, rebalancing=False)
    fresh = UnreadyGuard(after_s=300)
    assert all(stall(ready.get(), {}, fresh, now=t) is None for t in (0, 1000, 100000))


def test_a_rebalance_that_ends_starts_the_clock_over() -> None:
    status = WorkerStatus()
    guard = UnreadyGuard(after_s=300)
    status.publish(recovered=True, rebalancing=True)
    assert stall(status.get(), {}, guard, now=0) is None
    status.publish(recovered=True, rebalancing=False)
    assert stall(status.get(), {}, guard, now=250) is None
    status.publish(recovered=True, rebalancing=True)
    assert stall(status.get(), {}, guard, now=260) is None
    assert stall(status.get(), {}, guard, now=559) is None
    reason = stall(status.get(), {}, guard, now=560)
    assert reason is not None
    assert "rebalancing" in reason
