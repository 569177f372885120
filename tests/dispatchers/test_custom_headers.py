"""A subscription's own headers: what may be added, and how their values are shown."""

from __future__ import annotations

import pytest

from dispatchers.custom_headers import HeaderError, parse_header, parse_headers, redact_value


def test_a_header_is_name_colon_value_trimmed() -> None:
    assert parse_header("Authorization:  Bearer abc:def ") == ("Authorization", "Bearer abc:def")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Authorization", "'Name: value'"),
        (": value", "'Name: value'"),
        ("X Api Key: 1", "not a valid header name"),
        ("webhook-signature: v1,forged", "set by the delivery itself"),
        ("Content-Type: text/plain", "set by the delivery itself"),
        ("Host: internal.example", "set by the delivery itself"),
        ("X-Token:", "has no value"),
        ("X-Token: a\r\nX-Injected: 1", "line break"),
    ],
)
def test_headers_that_cannot_be_sent_are_refused(text: str, message: str) -> None:
    with pytest.raises(HeaderError, match=message) as error:
        parse_header(text)
    assert "forged" not in str(error.value)  # a value is never echoed


def test_a_header_given_twice_is_refused_whatever_its_case() -> None:
    with pytest.raises(HeaderError, match="given twice"):
        parse_headers(["X-Token: a", "x-token: b"])


def test_values_are_shown_by_their_last_characters_only_when_long() -> None:
    assert redact_value("Bearer 0123456789abcdef") == "...cdef"
    assert redact_value("short-token") == "..."
