"""Errors of the contracts package, and the first decoding step every record shares."""

from __future__ import annotations

import json
from typing import Any


class ContractError(ValueError):
    """Bytes that do not decode into a record of the contract; the message says why."""


def load_json_object(data: bytes | None) -> dict[str, Any]:
    """A record's value as a JSON object, or ContractError saying why it is not one."""
    if data is None:
        raise ContractError("record has no value (tombstone)")
    try:
        payload = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ContractError(f"record is not JSON: {e}") from e
    if not isinstance(payload, dict):
        raise ContractError("record is not a JSON object")
    return payload
