"""Headers a subscription adds to its webhooks (an API key or a bearer token a receiver's gateway
wants). Pure.

`Name: value` on the command line. Names are HTTP tokens; values hold no line breaks. The headers
the delivery itself sets (content, Standard Webhooks signature, hop-by-hop) cannot be replaced.
Values are sealed at rest like secrets (`dispatchers.sealing`) and never shown in full.
"""

from __future__ import annotations

import re

RESERVED = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "host",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "expect",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
MAX_HEADERS = 20
MAX_VALUE = 4096


class HeaderError(ValueError):
    """A header that cannot be sent; the message never holds its value."""


def parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name:
        raise HeaderError("a header is 'Name: value'")
    if not _TOKEN.match(name):
        raise HeaderError(f"{name!r} is not a valid header name")
    if name.lower() in RESERVED:
        raise HeaderError(f"{name!r} is set by the delivery itself")
    if not value:
        raise HeaderError(f"header {name!r} has no value")
    if any(c in value for c in "\r\n\0"):
        raise HeaderError(f"the value of header {name!r} holds a line break")
    if len(value) > MAX_VALUE:
        raise HeaderError(f"the value of header {name!r} is over {MAX_VALUE} characters")
    return name, value


def parse_headers(texts: list[str]) -> tuple[tuple[str, str], ...]:
    headers = [parse_header(t) for t in texts]
    names = [n.lower() for n, _ in headers]
    for name in names:
        if names.count(name) > 1:
            raise HeaderError(f"header {name!r} is given twice")
    if len(headers) > MAX_HEADERS:
        raise HeaderError(f"at most {MAX_HEADERS} headers")
    return tuple(headers)


def redact_value(value: str) -> str:
    """Enough to tell two values apart, never enough to use one."""
    return f"...{value[-4:]}" if len(value) >= 16 else "..."
