"""`EventSource` on the official kubernetes client, speaking raw JSON.

Raw JSON (`_preload_content=False`) because the contract keeps each Event exactly as the API server
returned it, which the client's model classes would not. The watch is read line by line here rather
than through `kubernetes.watch.Watch`, whose 410 handling retries with the same expired
resourceVersion and which stops tracking resourceVersions when not deserializing; the loop in
`collectors.watching` owns resourceVersions and relists instead.

Timeouts: every request has the connect timeout; a list has the read timeout (the longest silence
while it answers). A watch is silent by design for as long as nothing changes (a real API server
sends no bookmarks for Events), until the server ends it at its `timeoutSeconds`: its read timeout
is that timeout plus `watch_read_margin_s`, so a quiet watch ends cleanly, and only a connection
that stays silent past the server's own timeout counts as dead.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from collectors.errors import ExpiredError, KubeError, SettingsError
from collectors.watching import EventPage, WatchEvent


class KubeEventSource:
    def __init__(
        self,
        api: client.CoreV1Api,
        *,
        namespace: str | None,
        connect_timeout_s: float,
        read_timeout_s: float,
        watch_read_margin_s: float,
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._connect_timeout_s = connect_timeout_s
        self._timeouts = (connect_timeout_s, read_timeout_s)
        self._watch_read_margin_s = watch_read_margin_s
        self._response: urllib3.BaseHTTPResponse | None = None
        self._interrupted = False
        self._lock = threading.Lock()

    @property
    def server(self) -> str:
        """The API server's URL: checkpoints are only valid against the server they came from."""
        return str(self._api.api_client.configuration.host)

    def interrupt(self) -> None:
        """Break an open watch stream now, and refuse every request from now on (KubeError), from
        another thread, to stop promptly. For good: a watch the loop opens just after this (it was
        still listing) would otherwise wait out its whole timeout, 5 minutes by default."""
        with self._lock:
            self._interrupted = True
            response = self._response
        if response is not None:
            response.shutdown()

    @classmethod
    def connect(
        cls,
        *,
        kubeconfig: Path | None,
        context: str | None,
        namespace: str | None,
        connect_timeout_s: float,
        read_timeout_s: float,
        watch_read_margin_s: float,
    ) -> KubeEventSource:
        """Build the client from a kubeconfig, or in-cluster config when there is none."""
        return cls(
            client.CoreV1Api(api_client(kubeconfig=kubeconfig, context=context)),
            namespace=namespace,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            watch_read_margin_s=watch_read_margin_s,
        )

    def _call(self, *, timeouts: tuple[float, float], **kwargs: Any) -> urllib3.BaseHTTPResponse:
        with self._lock:
            if self._interrupted:
                raise KubeError("interrupted: the watch is stopping")
        try:
            if self._namespace is None:
                response = self._api.list_event_for_all_namespaces(
                    _preload_content=False, _request_timeout=timeouts, **kwargs
                )
            else:
                response = self._api.list_namespaced_event(
                    self._namespace, _preload_content=False, _request_timeout=timeouts, **kwargs
                )
        except ApiException as e:
            error = ExpiredError if e.status == 410 else KubeError
            raise error(f"{e.status} {e.reason}", status=e.status) from e
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise KubeError(f"API server unreachable: {e}") from e
        return response  # type: ignore[return-value]  # _preload_content=False: the raw response

    def list_page(self, *, limit: int, continue_token: str | None) -> EventPage:
        kwargs: dict[str, Any] = {"limit": limit}
        if continue_token:
            kwargs["_continue"] = continue_token
        response = self._call(timeouts=self._timeouts, **kwargs)
        try:
            body = json.loads(response.data)
        except (ValueError, urllib3.exceptions.HTTPError, OSError) as e:  # JSON, or not UTF-8
            raise KubeError(f"unreadable list response: {e}") from e
        # A list that is not an EventList is the server's (or a proxy's) fault, not one Event's:
        # retried with backoff like any API error. Its items are checked one by one by the loop.
        metadata = (body.get("metadata") or {}) if isinstance(body, dict) else None
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(metadata, dict) or not isinstance(items, list | None):
            raise KubeError(f"unreadable list response: not an EventList: {response.data[:200]!r}")
        return EventPage(
            items=list(items or []),
            resource_version=str(metadata.get("resourceVersion", "")),
            continue_token=metadata.get("continue") or None,
        )

    def current_resource_version(self) -> str:
        """The server's resourceVersion now: a list of at most one item, without a resourceVersion
        (a consistent read: from etcd, not a cache), carries it in its metadata."""
        page = self.list_page(limit=1, continue_token=None)
        if not page.resource_version:
            raise KubeError("unreadable list response: no resourceVersion")
        return page.resource_version

    def watch(self, *, resource_version: str, timeout_s: int) -> Iterator[WatchEvent]:
        response = self._call(
            timeouts=(self._connect_timeout_s, timeout_s + self._watch_read_margin_s),
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout_s,
        )
        with self._lock:
            self._response = response
            if self._interrupted:  # between the check in `_call` and now
                response.shutdown()
        try:
            for line in stream_lines(response):
                try:
                    event = json.loads(line)
                except ValueError as e:  # not JSON, or not UTF-8
                    # Most likely a stream cut mid-line: resumed from the last position.
                    raise KubeError(f"undecodable watch line: {line[:200]!r}") from e
                if isinstance(event, dict):
                    yield WatchEvent(type=str(event.get("type")), object=event.get("object"))
                else:
                    # Not a watch event at all: the loop sets it aside, and the stream goes on.
                    yield WatchEvent(type="", object=event)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise KubeError(f"watch stream broke: {e}") from e
        finally:
            with self._lock:
                self._response = None
            response.release_conn()


def api_client(*, kubeconfig: Path | None, context: str | None) -> client.ApiClient:
    """An API client from a kubeconfig, or in-cluster config when there is none; SettingsError
    when it cannot be loaded."""
    configuration = client.Configuration()
    try:
        if kubeconfig is None:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig), context=context, client_configuration=configuration
            )
    except (ConfigException, OSError, ValueError, yaml.YAMLError) as e:
        raise SettingsError(
            f"cannot load Kubernetes config ({kubeconfig or 'in-cluster'}): {e}"
        ) from e
    configuration.retries = False  # the watch loops own retries, with backoff and metrics
    # TCP keepalive with client-go's timings: a quiet watch sends nothing for a whole watch
    # timeout, and proxies and load balancers drop idle connections sooner (some at 4 min).
    configuration.keep_alive = True
    return client.ApiClient(configuration)


def stream_lines(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer
