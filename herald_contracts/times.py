"""RFC 3339 timestamps, as every record of the contracts carries them.

Kubernetes writes its times as RFC 3339 (`metav1.Time`: seconds, `MicroTime`: microseconds), and
CloudEvents 1.0 requires `time` to be RFC 3339. A stage that takes a time from a record checks it
here, where the record enters, so that a malformed one is refused with a clear reason instead of
failing later (a Postgres `timestamptz` column refuses it, a consumer's SDK cannot parse it).

Valid means: the RFC 3339 `date-time` grammar (checked by `rfc3339-validator`, the checker
`jsonschema` uses for the `date-time` format), and a time Python and Postgres can both represent
(years 1 to 9999, as written and as the UTC instant it names: `9999-12-31T23:59:59-01:00` is in
the year 10000 in UTC, which Postgres stores but psycopg cannot read back, so a dispatcher that stored
it could never claim its deliveries again; a leap second `:60` is refused, since neither can).
"""

from __future__ import annotations

from datetime import UTC, datetime

from rfc3339_validator import validate_rfc3339  # type: ignore[import-untyped]

from herald_contracts.errors import ContractError


def parse_time(text: object, *, field: str) -> datetime:
    """The timezone-aware datetime of an RFC 3339 string; ContractError naming `field` otherwise."""
    if not isinstance(text, str) or not validate_rfc3339(text):
        raise ContractError(f"{field} must be an RFC 3339 date-time, not {_shown(text)}")
    try:
        parsed = datetime.fromisoformat(text)
        parsed.astimezone(UTC)  # OverflowError: its instant is outside years 1 to 9999 in UTC
    except (ValueError, OverflowError) as e:
        raise ContractError(f"{field} {_shown(text)} is out of range: {e}") from e
    return parsed


def checked_time(text: object, *, field: str) -> str:
    """`text` itself if it is a valid RFC 3339 date-time; ContractError naming `field` otherwise."""
    parse_time(text, field=field)
    return str(text)


def is_time(text: object) -> bool:
    """Whether `text` is a valid RFC 3339 date-time (see the module docstring)."""
    try:
        parse_time(text, field="time")
    except ContractError:
        return False
    return True


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
