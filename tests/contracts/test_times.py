"""RFC 3339 checks where records enter, and the schema tests' format checks really running."""

from __future__ import annotations

from datetime import UTC, datetime

import jsonschema
import pytest

from herald_contracts import ContractError, checked_time, is_time, parse_time
from tests.support import validate


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("2026-08-20T09:16:53Z", id="seconds-utc"),
        pytest.param("2026-08-20T09:16:53.123456Z", id="microtime"),
        pytest.param("2026-08-20T09:16:53.123456789Z", id="nanoseconds-go-rfc3339nano"),
        pytest.param("2026-08-20T11:16:53+02:00", id="offset"),
    ],
)
def test_rfc3339_times_as_kubernetes_and_go_write_them_are_accepted(text: str) -> None:
    assert is_time(text)
    assert checked_time(text, field="t") == text


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("2026-08-20", id="date-only"),
        pytest.param("2026-08-20T09:16:53", id="no-offset"),
        pytest.param("2026-08-20 09:16:53Z", id="space-separator"),
        pytest.param("0000-01-01T00:00:00Z", id="year-zero-postgres-refuses"),
        pytest.param("2026-12-31T23:59:60Z", id="leap-second-python-refuses"),
        # Valid as written, but the instant is in the year 10000 (or 0) in UTC: Postgres stores it
        # and psycopg cannot read it back (the dispatcher's claims failed for good).
        pytest.param("9999-12-31T23:59:59-01:00", id="year-10000-in-utc"),
        pytest.param("0001-01-01T00:00:00+01:00", id="year-zero-in-utc"),
        pytest.param("2026-02-30T00:00:00Z", id="no-such-day"),
        pytest.param("", id="empty"),
        pytest.param(None, id="null"),
        pytest.param(1767225600, id="epoch-number"),
    ],
)
def test_anything_else_is_refused_naming_the_field(value: object) -> None:
    assert not is_time(value)
    with pytest.raises(ContractError, match=r"^collected_at"):
        parse_time(value, field="collected_at")


def test_parsed_times_keep_their_offset() -> None:
    assert parse_time("2026-08-20T11:16:53+02:00", field="t") == datetime(
        2026, 8, 20, 9, 16, 53, tzinfo=UTC
    )


def test_schema_tests_check_date_time_formats() -> None:
    """The schemas' `format: date-time` is enforced in tests (it needs rfc3339-validator)."""
    record = {
        "cluster": "c",
        "watch_type": "ADDED",
        "collected_at": "2026-08-20T09:16:53Z",
        "object": {
            "metadata": {"name": "e", "namespace": "n", "uid": "u", "resourceVersion": "1"},
            "involvedObject": {},
        },
    }
    validate("kube-event-record.v1.schema.json", record)
    with pytest.raises(jsonschema.ValidationError, match="date-time"):
        validate("kube-event-record.v1.schema.json", {**record, "collected_at": "yesterday"})
