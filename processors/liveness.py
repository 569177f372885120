"""What the processor's health endpoint and watchdog read, and what they decide from it. Pure.

Why a snapshot: the checks run in threads of their own (the health endpoint's, the watchdog's), and
Faust's objects must not be touched from there. Faust binds several of its services (the table
manager, and through it the table recovery) to an event loop only when one is first asked for; a
/readyz probe that read `app.tables.recovery` from the health thread before the worker had asked
created a new loop in that thread, one that never runs, and bound the table manager to it. The
worker then waited forever after `[^---Recovery]: Starting...` (issue 9: about one fresh start in
four under a readiness probe, and Faust's timers, the old stall guard among them, start only after
recovery, so nothing noticed). So the main thread publishes its phase here (waiting for Kafka, then
running the worker), a callback on the worker's event loop publishes every second whether the
tables are recovered and whether a rebalance is in progress, and beats the `main` heartbeat; the
checks read only that.

`main` is the main thread's loop: the wait for Kafka at start, then Faust's event loop. Not beating
for `loop_stall_s` means it is blocked: not live, and the watchdog restarts the worker in place. A
worker recovering or rebalancing for `recovery_stall_s` (Faust can hang there, faust issues #21,
#74, #133) is restarted the same way (`processors.stalls.UnreadyGuard`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from processors.stalls import UnreadyGuard

MAIN = "main"
"""The heartbeat of the main thread's loop."""

Probe = Callable[[], tuple[bool, dict[str, Any]]]


@dataclass(frozen=True)
class Status:
    waiting_for: str | None = "the worker to start"
    """Why the worker is not running yet (None once it runs)."""
    running: bool = False
    """The Faust worker runs (its event loop has published at least once)."""
    recovered: bool = False
    """The tables recovered from their changelogs."""
    rebalancing: bool = False


class WorkerStatus:
    """The published status; written by the main thread and the event loop, read by any thread."""

    def __init__(self) -> None:
        self._status = Status()
        self._lock = threading.Lock()

    def wait_for(self, reason: str) -> None:
        with self._lock:
            self._status = replace(self._status, waiting_for=reason)

    def publish(self, *, recovered: bool, rebalancing: bool) -> None:
        """From the worker's event loop."""
        with self._lock:
            self._status = Status(
                waiting_for=None, running=True, recovered=recovered, rebalancing=rebalancing
            )

    def get(self) -> Status:
        with self._lock:
            return self._status


def probes(status: WorkerStatus, stuck: Callable[[], Mapping[str, float]]) -> tuple[Probe, Probe]:
    """/healthz: the main loop turns. /readyz: live, the worker runs, its tables are recovered and
    it is not rebalancing: it is processing. `stuck`: the heartbeats past their limit."""

    def live() -> tuple[bool, dict[str, Any]]:
        late = dict(stuck())
        return not late, {"stuck": late}

    def ready() -> tuple[bool, dict[str, Any]]:
        ok, details = live()
        now = status.get()
        details = {**details, "recovered": now.recovered, "rebalancing": now.rebalancing}
        if now.waiting_for is not None:
            details["waiting_for"] = now.waiting_for
        return ok and now.running and now.recovered and not now.rebalancing, details

    return live, ready


def stall(
    status: Status,
    stuck: Mapping[str, float],
    unready: UnreadyGuard,
    *,
    now: float,
) -> str | None:
    """Why the worker must be restarted, if it must: its main loop is blocked, or it has been
    recovering or rebalancing for `unready.after_s`."""
    if MAIN in stuck:
        return f"the main loop has not turned for {stuck[MAIN]:.0f}s (blocked)"
    if not status.running:
        return None  # waiting for Kafka: the wait says why, and beats while it waits
    waiting = status.rebalancing or not status.recovered
    if unready.check(unready=waiting, now=now):
        doing = "rebalancing" if status.rebalancing else "recovering its tables"
        return (
            f"the worker has been {doing} for {unready.after_s:.0f}s"
            " (Faust can hang there, faust issues #21, #74, #133)"
        )
    return None
