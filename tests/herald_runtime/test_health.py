"""The health endpoint: /healthz answers whatever /readyz (or a stuck service) is waiting on."""

from __future__ import annotations

import socket
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


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another socket listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def _unready() -> tuple[bool, dict[str, Any]]:
    return False, {}


def test_a_port_in_use_is_a_bad_setting_naming_the_port_setting_and_the_address(
    taken_port: int,
) -> None:
    with pytest.raises(health.BindError) as raised:
        health.serve(host="127.0.0.1", port=taken_port, live=_unready, ready=_unready)
    message = str(raised.value)
    assert message.startswith(f"HERALD_METRICS_PORT: cannot listen on 127.0.0.1:{taken_port}")
    assert "in use" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("no-such-host.invalid", id="does-not-resolve"),
        pytest.param("192.0.2.1", id="not-an-address-of-this-machine"),
    ],
)
def test_a_host_it_cannot_listen_on_is_a_bad_setting_naming_the_host_setting(host: str) -> None:
    port = infra.free_port()
    with pytest.raises(health.BindError) as raised:
        health.serve(host=host, port=port, live=_unready, ready=_unready)
    assert str(raised.value).startswith(f"HERALD_METRICS_HOST: cannot listen on {host}:{port}")
