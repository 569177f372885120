"""The HTTP sender: one `requests.Session` per worker thread, redirects never followed, TLS verified,
and the address connected to is the address checked (`dispatchers.addresses`).

The check lives in urllib3's connection classes: a connection resolves the host itself, refuses the
addresses the `AddressPolicy` refuses (judging each against the URL's host name, for the listed
hosts), and connects to one it accepted, so nothing resolves the name again between the check and
the connection (DNS rebinding cannot slip through). TLS still verifies the certificate against the
host name of the URL.

A refusal by policy is not a network error: when every address the name resolves to is refused (or
the URL itself can never be delivered to), the result says so in `refused`, which the retry policy
reads as final (`dispatchers.outcomes`). A name with an accepted address that does not answer is a
network error, retried.

An attempt has a total deadline besides the connect and read timeouts (which bound each wait, not
the whole): a watchdog thread shuts the socket of an attempt still running at its deadline, which
ends whatever read or write it was blocked in, so a receiver trickling its answer cannot hold a
worker past it.

An attempt's result is what the receiver said (status, headers, the first 4 KiB of the body) or why
nothing was said (the error); deciding what it means is `dispatchers.outcomes`' job.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from dispatchers.addresses import STRICT, AddressPolicy, UrlError, check_url

MAX_BODY_BYTES = 4096


@dataclass(frozen=True)
class HttpResult:
    status_code: int | None
    headers: dict[str, str] | None
    body: str | None
    error: str | None
    duration_ms: int
    refused: str | None = None
    """Why the policy refused the URL or every address of its host: no request was made, and
    none ever will be (set with `error`)."""

    @property
    def permanent(self) -> bool:
        """Whether this failure is final by policy: the address policy or the URL check refused
        the request, so it is not tried again (an operator changes the policy or the URL; a
        host's DNS records may change too, but the policy does not wait for that), as the
        store's errors say theirs (`dispatchers.model`). Network errors and timeouts are not. An
        answer is not an error: what a status means is decided in `dispatchers.outcomes`."""
        return self.refused is not None


class _Attempt:
    """The running attempt of a thread: its deadline and the connection it uses."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.connection: Any = None
        self.cut_off = False
        self.refused: str | None = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


_current = threading.local()  # .attempt: the _Attempt of this thread, if one is running


class _Watchdog:
    """Cuts off the attempts still running at their deadline (one thread for all workers)."""

    def __init__(self, tick_s: float = 0.05) -> None:
        self._tick_s = tick_s
        self._lock = threading.Lock()
        self._running: set[_Attempt] = set()
        self._thread: threading.Thread | None = None

    def watch(self, attempt: _Attempt) -> None:
        with self._lock:
            self._running.add(attempt)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="http-deadlines", daemon=True
                )
                self._thread.start()

    def forget(self, attempt: _Attempt) -> None:
        with self._lock:
            self._running.discard(attempt)

    def _run(self) -> None:
        while True:
            time.sleep(self._tick_s)
            now = time.monotonic()
            with self._lock:
                late = [a for a in self._running if a.deadline <= now]
                self._running.difference_update(late)
            for attempt in late:
                attempt.cut_off = True
                sock = getattr(attempt.connection, "sock", None)
                if sock is not None:
                    # The plain socket's shutdown, also under TLS: it ends a blocked read.
                    with contextlib.suppress(OSError):
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _CheckedConnect:
    """Mixed into urllib3's connections: resolve, refuse, connect to an accepted address."""

    policy: ClassVar[AddressPolicy] = STRICT
    host: str
    port: int
    timeout: Any
    socket_options: Any
    _dns_host: str

    def _new_conn(self) -> socket.socket:
        try:
            infos = socket.getaddrinfo(self._dns_host, self.port, 0, socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise self._failure(f"cannot resolve {self.host}: {e}") from e
        attempt: _Attempt | None = getattr(_current, "attempt", None)
        refused: list[str] = []
        last_error: OSError | None = None
        for family, kind, proto, _, address in infos:
            ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])  # no IPv6 zone
            reason = self.policy.refusal(ip, host=self.host)
            if reason is not None:
                refused.append(f"{ip} is {reason}")
                continue
            sock = socket.socket(family, kind, proto)
            try:
                for level, option, value in self.socket_options or ():
                    sock.setsockopt(level, option, value)
                timeout = _seconds(self.timeout)
                if attempt is not None:
                    left = attempt.remaining()
                    if left <= 0:
                        raise TimeoutError("the attempt's total timeout ran out")
                    timeout = left if timeout is None else min(timeout, left)
                sock.settimeout(timeout)
                sock.connect(address)
            except OSError as e:
                sock.close()
                last_error = e
                continue
            return sock
        if refused and last_error is None:
            message = f"refused to connect to {self.host}: " + "; ".join(refused)
            if attempt is not None:
                attempt.refused = message
            raise self._failure(message)
        raise self._failure(f"cannot connect to {self.host}: {last_error}")

    def request(self, *args: Any, **kwargs: Any) -> None:
        attempt: _Attempt | None = getattr(_current, "attempt", None)
        if attempt is not None:
            attempt.connection = self  # what the watchdog cuts off
        super().request(*args, **kwargs)  # type: ignore[misc]

    def _failure(self, message: str) -> NewConnectionError:
        return NewConnectionError(cast(HTTPConnection, self), message)


def _seconds(timeout: Any) -> float | None:
    return timeout if isinstance(timeout, int | float) else None


def _adapter(*, policy: AddressPolicy) -> HTTPAdapter:
    checked_http = type(
        "CheckedHTTPConnection", (_CheckedConnect, HTTPConnection), {"policy": policy}
    )
    checked_https = type(
        "CheckedHTTPSConnection", (_CheckedConnect, HTTPSConnection), {"policy": policy}
    )
    http_pool = type("CheckedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": checked_http})
    https_pool = type("CheckedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": checked_https})
    # One request at a time per thread: one connection per host, many hosts cached.
    adapter = HTTPAdapter(pool_connections=32, pool_maxsize=1, max_retries=0)
    adapter.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}
    return adapter


class HttpSender:
    def __init__(
        self,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        total_timeout_s: float,
        user_agent: str,
        policy: AddressPolicy = STRICT,
    ) -> None:
        self._timeouts = (connect_timeout_s, read_timeout_s)
        self._total_timeout_s = total_timeout_s
        self._watchdog = _Watchdog()
        self._user_agent = user_agent
        self._policy = policy
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxies or .netrc from the environment
            adapter = _adapter(policy=self._policy)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = self._user_agent
            self._local.session = session
        return session

    def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> HttpResult:
        started = time.monotonic()
        attempt = _Attempt(started + self._total_timeout_s)
        _current.attempt = attempt
        self._watchdog.watch(attempt)
        try:
            try:
                check_url(url)
            except UrlError as e:
                attempt.refused = f"the URL can never be delivered to: {e}"
                raise
            with self._session().post(
                url,
                data=body,
                headers=headers,
                timeout=self._timeouts,
                allow_redirects=False,
                stream=True,
                verify=True,
            ) as response:
                head = response.raw.read(MAX_BODY_BYTES, decode_content=True) or b""
                if attempt.cut_off:  # what was read ends where the socket was shut: not an answer
                    return self._cut_off(started)
                return HttpResult(
                    status_code=response.status_code,
                    headers=dict(response.headers),
                    body=head.decode("utf-8", errors="replace"),
                    error=None,
                    duration_ms=_elapsed_ms(started),
                )
        except (
            requests.RequestException,
            UrlError,
            urllib3.exceptions.HTTPError,
            OSError,
            # http.client's own refusals of a request (a header value that is not Latin-1 raises
            # UnicodeEncodeError): the attempt failed, the worker carries on.
            ValueError,
        ) as e:
            if attempt.cut_off:
                return self._cut_off(started)
            return HttpResult(
                status_code=None,
                headers=None,
                body=None,
                error=f"RefusedByPolicy: {attempt.refused}"
                if attempt.refused
                else f"{type(e).__name__}: {e}",
                duration_ms=_elapsed_ms(started),
                refused=attempt.refused,
            )
        finally:
            self._watchdog.forget(attempt)
            _current.attempt = None

    def _cut_off(self, started: float) -> HttpResult:
        return HttpResult(
            status_code=None,
            headers=None,
            body=None,
            error=f"TotalTimeout: no complete answer within {self._total_timeout_s:g} s",
            duration_ms=_elapsed_ms(started),
        )


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
