"""A webhook receiver that verifies Standard Webhooks signatures and prints what it receives.

It is what a subscriber runs, written from the Standard Webhooks specification alone (it shares no
code with the dispatcher's signing), so the demo and the end-to-end test check the signature
independently. A request with a missing, stale or wrong signature gets 401 and is recorded as
rejected.

    python -m herald_dev.receiver --secret whsec_... [--port N]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_S = 300


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    reason: str
    at: float = field(default_factory=time.monotonic)
    """When it arrived (monotonic seconds)."""

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


def verify(
    secret: str,
    headers: dict[str, str],
    body: bytes,
    *,
    now: float,
    tolerance_s: float = TOLERANCE_S,
) -> tuple[bool, str]:
    """Check `webhook-signature` against `whsec_` secret, per the Standard Webhooks spec."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        return False, "missing webhook-id, webhook-timestamp or webhook-signature"
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance_s:
        return False, f"timestamp {timestamp} outside tolerance"
    key = base64.b64decode(secret.split("_", 1)[1])
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True, "ok"
    return False, "no signature matches"


@dataclass(frozen=True)
class Reply:
    """How to answer one request (tests script receivers that misbehave)."""

    status: int = 204
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0
    """Wait this long before answering (a slow receiver, or one that hangs past the timeout)."""
    close: bool = False
    """Close the connection without answering."""


@dataclass
class Receiver:
    secret: str
    echo: bool = False
    status: int = 204
    """The status answered to a verified request (tests change it)."""
    respond: Any = None
    """Optional `(Received) -> Reply`, deciding the answer to each verified request."""
    tolerance_s: float = TOLERANCE_S
    """How far `webhook-timestamp` may be from now (tests on fake time widen it)."""
    received: list[Received] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None

    def serve(self, port: int = 0) -> str:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok, reason = verify(
                    receiver.secret,
                    headers,
                    body,
                    now=time.time(),
                    tolerance_s=receiver.tolerance_s,
                )
                item = Received(headers, body, ok, reason)
                receiver.record(item)
                reply = Reply(status=receiver.status if ok else 401)
                if ok and receiver.respond is not None:
                    reply = receiver.respond(item)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.close:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the receiver is not serving")
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def record(self, item: Received) -> None:
        with self._cond:
            self.received.append(item)
            self._cond.notify_all()
        if self.echo:
            if item.verified:
                event = item.event
                data = event.get("data")
                if not isinstance(data, dict):  # another producer's event: any JSON, or none
                    data = {}
                print(
                    f"received {event.get('type')} {data.get('namespace')}/{data.get('name')}"
                    f" at {event.get('time')}: {data.get('source_message')}  [signature verified]",
                    flush=True,
                )
            else:
                print(f"REJECTED a request: {item.reason}", flush=True)

    def wait_for(self, count: int, *, timeout_s: float) -> list[Received]:
        """Wait until `count` requests arrived (or the timeout passed); return them all."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self.received) < count and time.monotonic() < deadline:
                self._cond.wait(timeout=deadline - time.monotonic())
            return list(self.received)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m herald_dev.receiver", description=__doc__)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    receiver = Receiver(secret=args.secret, echo=True)
    print(f"receiving on {receiver.serve(args.port)}", file=sys.stderr, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
