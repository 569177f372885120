"""The HTTP sender: one `requests.Session` per worker thread, redirects never followed.

An attempt's result is what the receiver said (status, headers, the first 4 KiB of the body) or why
nothing was said (the error); deciding what it means is `dispatchers.outcomes`' job.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

MAX_BODY_BYTES = 4096


@dataclass(frozen=True)
class HttpResult:
    status_code: int | None
    headers: dict[str, str] | None
    body: str | None
    error: str | None
    duration_ms: int


class HttpSender:
    def __init__(self, *, connect_timeout_s: float, read_timeout_s: float, user_agent: str) -> None:
        self._timeouts = (connect_timeout_s, read_timeout_s)
        self._user_agent = user_agent
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # One request at a time per thread: one connection per host, many hosts cached.
            adapter = HTTPAdapter(pool_connections=32, pool_maxsize=1, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = self._user_agent
            self._local.session = session
        return session

    def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> HttpResult:
        started = time.monotonic()
        try:
            with self._session().post(
                url,
                data=body,
                headers=headers,
                timeout=self._timeouts,
                allow_redirects=False,
                stream=True,
            ) as response:
                head = response.raw.read(MAX_BODY_BYTES, decode_content=True) or b""
                return HttpResult(
                    status_code=response.status_code,
                    headers=dict(response.headers),
                    body=head.decode("utf-8", errors="replace"),
                    error=None,
                    duration_ms=_elapsed_ms(started),
                )
        except requests.RequestException as e:
            return HttpResult(
                status_code=None,
                headers=None,
                body=None,
                error=f"{type(e).__name__}: {e}",
                duration_ms=_elapsed_ms(started),
            )


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
