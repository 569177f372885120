"""A service's HTTP endpoint: `/metrics` (Prometheus), `/healthz` (liveness), `/readyz` (readiness).

Each service says what live and ready mean for it (see their composition roots and docs); a check
answers 200 or 503 with a JSON body that says why. Where it listens is a setting (`HERALD_METRICS_HOST`,
`HERALD_METRICS_PORT`): an address it cannot listen on (a port in use, a host this machine does not
have or cannot resolve) is a `BindError`, a bad setting naming the variable and the address, which
the service stops with in one line (it used to end in a traceback naming neither).
"""

from __future__ import annotations

import errno
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from herald_runtime.settings import SettingsError

Check = Callable[[], tuple[bool, dict[str, Any]]]

HOST_SETTING = "HERALD_METRICS_HOST"
PORT_SETTING = "HERALD_METRICS_PORT"


class BindError(SettingsError):
    """The endpoint cannot listen at the address its settings give; the message names the setting
    to change and the address."""


def bind_error(error: OSError, *, host: str, port: int) -> BindError:
    """What `error`, raised binding `host:port`, means in the settings' terms."""
    address = f"{host}:{port}"
    if isinstance(error, socket.gaierror):
        return BindError(f"{HOST_SETTING}: cannot listen on {address}: {host!r} does not resolve")
    if error.errno == errno.EADDRINUSE:
        return BindError(
            f"{PORT_SETTING}: cannot listen on {address}: the port is in use (another process"
            f" listens there; choose another port, or 0 to turn the endpoint off)"
        )
    if error.errno == errno.EACCES:
        return BindError(f"{PORT_SETTING}: cannot listen on {address}: permission denied")
    if error.errno == errno.EADDRNOTAVAIL:
        return BindError(
            f"{HOST_SETTING}: cannot listen on {address}: no interface of this machine has that"
            " address"
        )
    return BindError(
        f"{HOST_SETTING}/{PORT_SETTING}: cannot listen on {address}: {error.strerror or error}"
    )


def serve(*, host: str, port: int, live: Check, ready: Check) -> ThreadingHTTPServer:
    """Serve the endpoint on a daemon thread. BindError if `host:port` cannot be listened on."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif self.path in ("/healthz", "/readyz"):
                ok, details = (live if self.path == "/healthz" else ready)()
                body = json.dumps({"ok": ok, **details}, default=str).encode()
                self._send(200 if ok else 503, body, "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as e:
        raise bind_error(e, host=host, port=port) from e
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
