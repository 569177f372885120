"""`MetadataSource` on the official kubernetes client: lists and watches of one resource that carry
only each object's metadata (`PartialObjectMetadata`), for the owner caches.

The client has no typed call for this: it asks through `ApiClient.param_serialize` and `call_api`
(the generated client's public request path; `response.response` is the unread urllib3 stream, as
`_preload_content=False` gives in `collectors.kube`) with the Accept header
the API server negotiates (`application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1` for a
list, `as=PartialObjectMetadata` for a watch, with plain JSON as the fallback a server without it
answers), reading the raw JSON as `collectors.kube` does. A Pod's spec and status never travel.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from collectors.errors import ExpiredError, KubeError
from collectors.kube import stream_lines
from collectors.owners import Resource
from collectors.watching import EventPage, WatchEvent

LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json"
WATCH_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json"


class KubeMetadataSource:
    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        namespace: str | None,
        connect_timeout_s: float,
        read_timeout_s: float,
        watch_read_margin_s: float,
    ) -> None:
        self._api = api_client
        self._namespace = namespace
        self._connect_timeout_s = connect_timeout_s
        self._timeouts = (connect_timeout_s, read_timeout_s)
        self._watch_read_margin_s = watch_read_margin_s
        self._responses: set[urllib3.BaseHTTPResponse] = set()
        self._interrupted = False
        self._lock = threading.Lock()

    def interrupt(self) -> None:
        """Break every open watch now and refuse every request from now on (for the stop)."""
        with self._lock:
            self._interrupted = True
            responses = list(self._responses)
        for response in responses:
            response.shutdown()

    def _path(self, resource: Resource) -> str:
        group_version = resource.group_version
        base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        if self._namespace is None:
            return f"{base}/{resource.value}"
        return f"{base}/namespaces/{self._namespace}/{resource.value}"

    def _call(
        self,
        resource: Resource,
        *,
        accept: str,
        timeouts: tuple[float, float],
        query: list[tuple[str, Any]],
    ) -> urllib3.BaseHTTPResponse:
        with self._lock:
            if self._interrupted:
                raise KubeError("interrupted: the watch is stopping")
        try:
            request = self._api.param_serialize(
                method="GET",
                resource_path=self._path(resource),
                query_params=query,
                header_params={"Accept": accept},
                auth_settings=["BearerToken"],
            )
            response = self._api.call_api(*request, _request_timeout=timeouts)
            if not 200 <= response.status <= 299:
                response.read()  # type: ignore[no-untyped-call]
                raise ApiException.from_response(http_resp=response, body=None, data=None)
        except ApiException as e:
            error = ExpiredError if e.status == 410 else KubeError
            raise error(f"{resource.value}: {e.status} {e.reason}", status=e.status) from e
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise KubeError(f"API server unreachable: {e}") from e
        raw: urllib3.BaseHTTPResponse = response.response  # the stream, not read yet
        return raw

    def list_page(self, resource: Resource, *, limit: int, continue_token: str | None) -> EventPage:
        query: list[tuple[str, Any]] = [("limit", limit)]
        if continue_token:
            query.append(("continue", continue_token))
        response = self._call(resource, accept=LIST_ACCEPT, timeouts=self._timeouts, query=query)
        try:
            body = json.loads(response.data)
        except (ValueError, urllib3.exceptions.HTTPError, OSError) as e:
            raise KubeError(f"{resource.value}: unreadable list response: {e}") from e
        metadata = (body.get("metadata") or {}) if isinstance(body, dict) else None
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(metadata, dict) or not isinstance(items, list | None):
            raise KubeError(f"{resource.value}: unreadable list response: not a list")
        return EventPage(
            items=list(items or []),
            resource_version=str(metadata.get("resourceVersion", "")),
            continue_token=metadata.get("continue") or None,
        )

    def watch(
        self, resource: Resource, *, resource_version: str, timeout_s: int
    ) -> Iterator[WatchEvent]:
        response = self._call(
            resource,
            accept=WATCH_ACCEPT,
            timeouts=(self._connect_timeout_s, timeout_s + self._watch_read_margin_s),
            query=[
                ("watch", "true"),
                ("resourceVersion", resource_version),
                ("allowWatchBookmarks", "true"),
                ("timeoutSeconds", timeout_s),
            ],
        )
        with self._lock:
            self._responses.add(response)
            if self._interrupted:
                response.shutdown()
        try:
            for line in stream_lines(response):
                try:
                    event = json.loads(line)
                except ValueError as e:
                    raise KubeError(f"{resource.value}: undecodable watch line") from e
                if isinstance(event, dict):
                    yield WatchEvent(type=str(event.get("type")), object=event.get("object"))
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise KubeError(f"{resource.value}: watch stream broke: {e}") from e
        finally:
            with self._lock:
                self._responses.discard(response)
            response.release_conn()
