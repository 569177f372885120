"""The raw-event contract: what collectors write to the raw topic and processors read.

A record is one watch event of one core/v1 Event, with the cluster it came from. The object is kept
exactly as the API server returned it, except `metadata.managedFields` (noise, and large). The key
puts all Events about one involved object on one partition, so they stay in order.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from herald_contracts.errors import ContractError, load_json_object
from herald_contracts.times import checked_time

JsonObject = dict[str, Any]


class WatchType(enum.StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True)
class RawRecord:
    cluster: str
    watch_type: WatchType
    collected_at: str
    """RFC 3339 UTC time at which the collector received the watch event."""
    object: JsonObject
    """The core/v1 Event as the API returned it, without metadata.managedFields."""

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
    return RawRecord(cluster=cluster, watch_type=watch_type, collected_at=collected_at, object=obj)
