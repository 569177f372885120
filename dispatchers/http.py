"""The HTTP sender: one `requests.Session` per worker thread, redirects never followed, TLS verified,
and the address connected to is the address checked (`dispatchers.addresses`).

The check lives in urllib3's connection classes: a connection resolves the host itself, refuses the
addresses `addresses.refusal` names, and connects to one it accepted, so nothing resolves the name
again between the check and the connection (DNS rebinding cannot slip through). TLS still verifies
the certificate against the host name of the URL.

An attempt's result is what the receiver said (status, headers, the first 4 KiB of the body) or why
nothing was said (the error); deciding what it means is `dispatchers.outcomes`' job.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from dispatchers.addresses import UrlError, check_url, refusal

MAX_BODY_BYTES = 4096


@dataclass(frozen=True)
class HttpResult:
    status_code: int | None
    headers: dict[str, str] | None
    body: str | None
    error: str | None
    duration_ms: int


class _CheckedConnect:
    """Mixed into urllib3's connections: resolve, refuse, connect to an accepted address."""

    allow_private: ClassVar[bool] = False
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
        refused: list[str] = []
        last_error: OSError | None = None
        for family, kind, proto, _, address in infos:
            ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])  # no IPv6 zone
            reason = refusal(ip, allow_private=self.allow_private)
            if reason is not None:
                refused.append(f"{ip} is {reason}")
                continue
            sock = socket.socket(family, kind, proto)
            try:
                for level, option, value in self.socket_options or ():
                    sock.setsockopt(level, option, value)
                sock.settimeout(_seconds(self.timeout))
                sock.connect(address)
            except OSError as e:
                sock.close()
                last_error = e
                continue
            return sock
        if refused and last_error is None:
            raise self._failure(f"refused to connect to {self.host}: " + "; ".join(refused))
        raise self._failure(f"cannot connect to {self.host}: {last_error}")

    def _failure(self, message: str) -> NewConnectionError:
        return NewConnectionError(cast(HTTPConnection, self), message)


def _seconds(timeout: Any) -> float | None:
    return timeout if isinstance(timeout, int | float) else None


def _adapter(*, allow_private: bool) -> HTTPAdapter:
    checked_http = type(
        "CheckedHTTPConnection", (_CheckedConnect, HTTPConnection), {"allow_private": allow_private}
    )
    checked_https = type(
        "CheckedHTTPSConnection",
        (_CheckedConnect, HTTPSConnection),
        {"allow_private": allow_private},
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
        user_agent: str,
        allow_private: bool = False,
    ) -> None:
        self._timeouts = (connect_timeout_s, read_timeout_s)
        self._user_agent = user_agent
        self._allow_private = allow_private
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxies or .netrc from the environment
            adapter = _adapter(allow_private=self._allow_private)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = self._user_agent
            self._local.session = session
        return session

    def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> HttpResult:
        started = time.monotonic()
        try:
            check_url(url)
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
                return HttpResult(
                    status_code=response.status_code,
                    headers=dict(response.headers),
                    body=head.decode("utf-8", errors="replace"),
                    error=None,
                    duration_ms=_elapsed_ms(started),
                )
        except (requests.RequestException, UrlError) as e:
            return HttpResult(
                status_code=None,
                headers=None,
                body=None,
                error=f"{type(e).__name__}: {e}",
                duration_ms=_elapsed_ms(started),
            )


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
