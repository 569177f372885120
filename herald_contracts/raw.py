"""The raw-event contract: what collectors write to the raw topic and processors read.

A record is one watch event of one core/v1 Event, with the cluster it came from. The object is kept
exactly as the API server returned it, except `metadata.managedFields` (noise, and large). The key
puts all Events about one involved object on one partition, so they stay in order.

Optional, added within v1 (records written before lack them, and decode): what the collector
resolved of the involved object from its caches (`collectors.owners`): `owners` (the controllers
above it, nearest first), `workload` (the top of that chain, when it is a workload), `application`
(the Argo CD application managing it) and `labels` (selected labels along the chain). Absent when
the collector did not resolve the object (a kind it does not cache, resolution off, not cached yet).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

from herald_contracts.errors import ContractError, load_json_object
from herald_contracts.times import checked_time

JsonObject = dict[str, Any]


class WatchType(enum.StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True)
class OwnerRef:
    """An object of an owner chain: a controller reference, or the involved object itself."""

    kind: str
    api_version: str
    name: str
    uid: str


@dataclass(frozen=True)
class AppRef:
    """The Argo CD application that manages an object."""

    name: str
    namespace: str | None
    """Set when Argo CD named it (`<namespace>_<name>`: an application outside its own namespace)."""
    found_by: str
    """`annotation` (argocd.argoproj.io/tracking-id) or `label` (app.kubernetes.io/instance)."""


@dataclass(frozen=True)
class Ownership:
    """What the collector resolved of an Event's involved object."""

    owners: tuple[OwnerRef, ...] = ()
    workload: OwnerRef | None = None
    application: AppRef | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RawRecord:
    cluster: str
    watch_type: WatchType
    collected_at: str
    """RFC 3339 UTC time at which the collector received the watch event."""
    object: JsonObject
    """The core/v1 Event as the API returned it, without metadata.managedFields."""
    ownership: Ownership | None = None
    """What the collector resolved of the involved object; None when it did not."""

    @property
    def key(self) -> str:
        return raw_key(self.cluster, self.object)


def raw_key(cluster: str, event: JsonObject) -> str:
    """`<cluster>/<involvedObject.namespace>/<involvedObject.kind>/<involvedObject.name>`.

    Missing parts are empty strings, so a malformed Event still gets a stable key.
    """
    involved = event.get("involvedObject") or {}
    if not isinstance(involved, dict):
        involved = {}
    parts = (involved.get("namespace"), involved.get("kind"), involved.get("name"))
    return "/".join([cluster, *(p if isinstance(p, str) else "" for p in parts)])


def encode_raw_record(record: RawRecord) -> bytes:
    payload = {
        "cluster": record.cluster,
        "watch_type": record.watch_type.value,
        "collected_at": record.collected_at,
        "object": record.object,
    }
    if record.ownership is not None:
        payload.update(_encode_ownership(record.ownership))
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def decode_raw_record(data: bytes | None) -> RawRecord:
    """Parse one raw-topic value; raise ContractError naming what is wrong."""
    payload = load_json_object(data)
    cluster = payload.get("cluster")
    if not isinstance(cluster, str) or not cluster:
        raise ContractError("raw record: 'cluster' must be a non-empty string")
    try:
        watch_type = WatchType(str(payload.get("watch_type")))
    except ValueError as e:
        raise ContractError(
            f"raw record: 'watch_type' must be one of ADDED, MODIFIED, DELETED, "
            f"not {payload.get('watch_type')!r}"
        ) from e
    collected_at = checked_time(payload.get("collected_at"), field="raw record: 'collected_at'")
    obj = payload.get("object")
    if not isinstance(obj, dict):
        raise ContractError("raw record: 'object' must be a JSON object")
    metadata = obj.get("metadata")
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("uid"), str)
        or not metadata["uid"]
    ):
        raise ContractError("raw record: 'object' is not a core/v1 Event: no metadata.uid")
    if not isinstance(obj.get("involvedObject"), dict):
        raise ContractError("raw record: 'object' is not a core/v1 Event: no involvedObject")
    return RawRecord(
        cluster=cluster,
        watch_type=watch_type,
        collected_at=collected_at,
        object=obj,
        ownership=_decode_ownership(payload),
    )


def _encode_ownership(ownership: Ownership) -> JsonObject:
    encoded: JsonObject = {"owners": [_encode_ref(ref) for ref in ownership.owners]}
    if ownership.workload is not None:
        encoded["workload"] = _encode_ref(ownership.workload)
    if ownership.application is not None:
        app = ownership.application
        encoded["application"] = {
            "name": app.name,
            "namespace": app.namespace,
            "found_by": app.found_by,
        }
    if ownership.labels:
        encoded["labels"] = dict(ownership.labels)
    return encoded


def _encode_ref(ref: OwnerRef) -> JsonObject:
    return {"kind": ref.kind, "apiVersion": ref.api_version, "name": ref.name, "uid": ref.uid}


def _decode_ownership(payload: JsonObject) -> Ownership | None:
    """`owners` marks a resolved record; `workload`, `application` and `labels` go with it."""
    if "owners" not in payload:
        return None
    owners = payload["owners"]
    if not isinstance(owners, list):
        raise ContractError("raw record: 'owners' must be an array")
    workload = payload.get("workload")
    app = payload.get("application")
    labels = payload.get("labels", {})
    if app is not None and not (
        isinstance(app, dict)
        and _is_text(app.get("name"))
        and (app.get("namespace") is None or _is_text(app.get("namespace")))
        and isinstance(app.get("found_by"), str)
    ):
        raise ContractError("raw record: 'application' must be {name, namespace, found_by}")
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise ContractError("raw record: 'labels' must map strings to strings")
    return Ownership(
        owners=tuple(_decode_ref(ref, "owners[]") for ref in owners),
        workload=None if workload is None else _decode_ref(workload, "workload"),
        application=None
        if app is None
        else AppRef(name=app["name"], namespace=app.get("namespace"), found_by=app["found_by"]),
        labels=labels,
    )


def _decode_ref(ref: object, where: str) -> OwnerRef:
    if not isinstance(ref, dict) or not all(
        _is_text(ref.get(k)) for k in ("kind", "apiVersion", "name", "uid")
    ):
        raise ContractError(f"raw record: '{where}' must be {{kind, apiVersion, name, uid}}")
    return OwnerRef(
        kind=ref["kind"], api_version=ref["apiVersion"], name=ref["name"], uid=ref["uid"]
    )


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value)
