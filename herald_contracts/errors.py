"""Errors of the contracts package, and the first decoding step every record shares."""

from __future__ import annotations

import json
from typing import Any


class ContractError(ValueError):
    """Bytes that do not decode into a record of the contract; the message says why."""


def load_json_object(data: bytes | None) -> dict[str, Any]:
    """A record's value as a JSON object, or ContractError saying why it is not one.

    Only what every consumer can read passes: UTF-8 (RFC 8259 section 8.1; `json.loads` would also
    take UTF-16 and UTF-32), no NaN or Infinity (not JSON numbers), integers Python parses (at most
    `sys.get_int_max_str_digits()` digits) and nesting it can follow."""
    if data is None:
        raise ContractError("record has no value (tombstone)")
    try:
        payload = json.loads(data.decode("utf-8"), parse_constant=_not_a_number)
    except ContractError:
        raise
    except UnicodeDecodeError as e:
        raise ContractError(f"record is not UTF-8: {e}") from e
    except json.JSONDecodeError as e:
        raise ContractError(f"record is not JSON: {e}") from e
    except RecursionError as e:
        raise ContractError("record is not JSON Herald can read: nested too deeply") from e
    except ValueError as e:  # an integer longer than sys.get_int_max_str_digits()
        raise ContractError(f"record is not JSON Herald can read: {e}") from e
    if not isinstance(payload, dict):
        raise ContractError("record is not a JSON object")
    return payload


def _not_a_number(name: str) -> Any:
    raise ContractError(f"record is not JSON: {name} is not a JSON number")
