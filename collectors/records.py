"""Turn one watch event into the raw record the contract describes. Pure: no I/O, no clock."""

from __future__ import annotations

from typing import Any

from herald_contracts import RawRecord, WatchType


def to_raw_record(
    *, cluster: str, watch_type: str, event: dict[str, Any], collected_at: str
) -> RawRecord:
    """The record for one ADDED/MODIFIED/DELETED watch event, `metadata.managedFields` removed.

    The event is copied, never changed in place, so the caller's object stays as the API gave it.
    """
    obj = dict(event)
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        obj["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return RawRecord(
        cluster=cluster, watch_type=WatchType(watch_type), collected_at=collected_at, object=obj
    )
