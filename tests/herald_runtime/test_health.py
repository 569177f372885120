"""The health endpoint: /healthz answers whatever /readyz (or a stuck service) is waiting on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from herald_dev import infra
from herald_runtime import health
from tests.support import http_get


@pytest.fixture
def blocked() -> Iterator[threading.Event]:
    release = threading.Event()
    yield release
    release.set()


def test_liveness_answers_while_a_readiness_check_is_blocked(blocked: threading.Event) -> None:
    def ready() -> tuple[bool, dict[str, Any]]:
        blocked.wait(30)  # e.g. waiting on a lock a stuck loop holds
        return True, {}

    port = infra.free_port()
    server = health.serve(
        host="127.0.0.1", port=port, live=lambda: (True, {"loop_age_s": 0}), ready=ready
    )
    try:
        stuck = threading.Thread(target=http_get, args=(port, "/readyz"), daemon=True)
        stuck.start()
        started = time.monotonic()
        assert http_get(port, "/healthz") == (200, '{"ok": true, "loop_age_s": 0}')
        assert http_get(port, "/metrics")[0] == 200
        assert time.monotonic() - started < 2
        assert stuck.is_alive()  # the readiness request is still waiting
    finally:
        blocked.set()
        server.shutdown()
        server.server_close()
