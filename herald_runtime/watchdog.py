"""Liveness the watched loops cannot block: a watchdog thread, and a stop that always ends.

A service's work runs on loops (an asyncio event loop, worker threads) that can hang: blocked in a
call that never returns, or awaiting something that never happens (faust issues #21, #74, #133; and
issue 9, a Faust worker whose table manager waited on an event loop that never ran). A guard that
runs on such a loop hangs with it, and so does a signal handler the loop was to run. So:

- `Watchdog` runs a service's check in a thread of its own, every `interval_s`, from the start of the
  process; when the check names a reason, it writes every thread's stack to stderr (the evidence)
  and calls the remedy (the processor restarts itself in place; a remedy that returns ends the
  process with status 1).
- `SignalStop` takes SIGTERM and SIGINT away from the main thread: they are blocked there (and so in
  every thread started after it) and a thread of its own waits for them. The first asks the service
  to stop (its `stop` callback, which may hand the request to the event loop); if the process has
  not ended `grace_s` later, or a second signal comes, it ends with status 1. A blocked event loop or
  a shutdown that waits forever then cannot keep a process that was told to stop.

Neither needs the loops it watches. What the check reads must not need them either: a snapshot the
loops publish (`herald_runtime.heartbeats`), never the loop's own objects.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def _say(text: str) -> None:
    """Straight to stderr's file descriptor: the thread that owns sys.stderr may be the stuck one
    (and Faust's worker replaces sys.stderr with a logging proxy that has no file descriptor)."""
    os.write(2, (text.rstrip("\n") + "\n").encode(errors="replace"))


def _dump_stacks() -> None:
    try:
        faulthandler.dump_traceback(file=2, all_threads=True)
    except (OSError, ValueError) as e:  # evidence only: never a reason not to act
        _say(f"(no stacks: {e!r})")


class Watchdog:
    """Calls `remedy(reason)` once `check(now)` returns a reason; `check` runs every `interval_s`."""

    def __init__(
        self,
        check: Callable[[float], str | None],
        *,
        remedy: Callable[[str], None],
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._remedy = remedy
        self._interval_s = interval_s
        self._clock = clock
        self._stopped = threading.Event()

    def start(self) -> Watchdog:
        threading.Thread(target=self._run, name="watchdog", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval_s):
            try:
                reason = self._check(self._clock())
            except Exception:  # a bug in a check must not end the watch
                log.exception("the watchdog's check failed")
                continue
            if reason is None:
                continue
            _say(f"watchdog: {reason}; the stacks of every thread follow")
            _dump_stacks()
            try:
                self._remedy(reason)
            except Exception:
                log.exception("the watchdog's remedy failed")
            _say(f"watchdog: the remedy for '{reason}' returned; exiting")
            os._exit(1)


class SignalStop:
    """SIGTERM and SIGINT handled by a thread of their own, with a bound on how long a stop takes.

    `install` must run in the main thread before any other thread is started: a signal blocked
    there stays blocked in the threads started after (and across `os.execv`, so a signal that comes
    during a restart in place waits for the new process instead of being lost)."""

    def __init__(self, *, grace_s: float) -> None:
        self.grace_s = grace_s
        self.requested = threading.Event()
        """Set once a stop signal came."""
        self._stop: Callable[[signal.Signals], None] | None = None
        self._received: signal.Signals | None = None
        self._asked = False
        self._lock = threading.Lock()

    def install(self) -> SignalStop:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        threading.Thread(target=self._run, name="signals", daemon=True).start()
        return self

    def on_stop(self, stop: Callable[[signal.Signals], None] | None) -> None:
        """What a stop signal does from now on (None: only set `requested`). Runs in the signal
        thread: hand the work to the loop that owns it."""
        with self._lock:
            self._stop = stop
        self._ask()  # a signal that came before there was this to stop

    def _ask(self) -> None:
        """Call the stop callback once, for the first signal, whichever thread gets here first."""
        with self._lock:
            stop, received = self._stop, self._received
            if self._asked or stop is None or received is None:
                return
            self._asked = True
        try:
            stop(received)
        except Exception:
            log.exception("asking the service to stop failed")

    def _run(self) -> None:
        received = signal.Signals(signal.sigwait(STOP_SIGNALS))
        log.info("%s received: stopping (at most %ss)", received.name, self.grace_s)
        with self._lock:
            self._received = received
        self.requested.set()
        self._ask()
        again = signal.sigtimedwait(STOP_SIGNALS, self.grace_s)
        _say(
            f"{received.name}: the process did not end within {self.grace_s}s; exiting now"
            if again is None
            else f"{received.name}, then {signal.Signals(again.si_signo).name}: exiting now"
        )
        _dump_stacks()
        os._exit(1)
