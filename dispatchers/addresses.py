"""Which addresses a webhook may be sent to. Pure.

A subscription's URL is chosen by whoever creates it; without a check, a dispatcher inside a cluster
could be made to POST to the cloud's metadata service, to the Kubernetes API, or to anything else on
the private network (server-side request forgery). Refused, unless private networks are allowed
(a local demo, an on-premises receiver): loopback, private (RFC 1918, unique-local), link-local,
shared (100.64/10, carrier-grade NAT), multicast, reserved and unspecified addresses. The cloud
metadata endpoints are refused always, even when private networks are allowed.

The check is made on the address about to be connected to (see `dispatchers.http`), after DNS
resolution, so a name that resolves to a private address, or that changes between check and use
(DNS rebinding), is caught.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task metadata
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
        "fd00:ec2::254",  # AWS over IPv6
    )
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class UrlError(ValueError):
    """A subscription URL that can never be delivered to."""


def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why a webhook may not be sent to `address`, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA:
        return "a cloud metadata address"
    if allow_private:
        return None
    for reason, hit in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        (
            "shared (carrier-grade NAT)",
            isinstance(address, ipaddress.IPv4Address) and address in _SHARED,
        ),
    ):
        if hit:
            return f"a {reason} address"
    return None


def check_url(url: str) -> str:
    """The URL, if it can be a webhook target: http or https, with a host, no credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UrlError(f"only http and https URLs are delivered to, not {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise UrlError("the URL has no host")
    if parts.username or parts.password:
        raise UrlError("the URL must not carry credentials (they would be logged and shown)")
    try:
        _ = parts.port
    except ValueError as e:
        raise UrlError(f"bad port: {e}") from e
    return url
