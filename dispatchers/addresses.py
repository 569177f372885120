"""Which addresses a webhook may be sent to, and which URLs can never be delivered to. Pure.

A subscription's URL is chosen by whoever creates it; without a check, a dispatcher inside a cluster
could be made to POST to the cloud's metadata service, to the Kubernetes API, or to anything else on
the private network (server-side request forgery, OWASP's SSRF Prevention Cheat Sheet). The policy
(`AddressPolicy`) sorts an address into a kind and judges the kind:

- never delivered to, whatever the settings say: the cloud metadata endpoints (169.254.169.254,
  fd00:ec2::254 and friends), link-local (169.254/16, fe80::/10: where metadata and other node-local
  services live), unspecified and "this network" (0/8, ::: connecting to 0.0.0.0 reaches the host
  itself), multicast, broadcast and reserved addresses. No listing opens them: a CIDR that lies
  wholly inside them is a bad setting, and one that overlaps them (0.0.0.0/0) still leaves them out.
- loopback (127/8, ::1): only when a listed CIDR holds the address (`127.0.0.1/32`), or with every
  private network allowed (the local demo, the tests). A listed host name never opens it: a name
  whose DNS answer can change (or be spoofed) must not reach the dispatcher's own pod, its metrics
  port or a sidecar's admin port.
- private (RFC 1918, unique-local fc00::/7, and the other special-purpose ranges that are not
  global) and shared (100.64/10, carrier-grade NAT): when a listed CIDR holds the address, when the
  URL's host name is listed (`receiver.team.svc.cluster.local`, or `*.svc.cluster.local` for every
  name under it), or with every private network allowed.
- public: always.

This is Svix's model (its `whitelist_subnets` and whitelisted names), stricter in two places: a
listed name does not open loopback or link-local, and the metadata endpoints stay closed even when a
CIDR holding them is listed. An IPv4 address written as IPv6 (`::ffff:a.b.c.d`, or NAT64's
`64:ff9b::/96`) is judged as the IPv4 address it reaches.

The check is made on every address the host name resolves to, at connect time, on the address about
to be connected to (`dispatchers.http`), so a name that resolves to a private address, or that
changes between check and use (DNS rebinding), is caught. `check_target` judges a URL before any
resolution (`subscriptions create` and `update`): what can be told from the URL alone.
"""

from __future__ import annotations

import enum
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "HERALD_DISPATCHER_ALLOWED_PRIVATE_NETWORKS"

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
METADATA_HOSTS = frozenset({"metadata.google.internal"})
"""Names that resolve to a metadata endpoint wherever they resolve at all (GCP's)."""

_SHARED = ipaddress.ip_network("100.64.0.0/10")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_OPENABLE = tuple(
    ipaddress.ip_network(n)
    for n in (
        *("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "100.64.0.0/10"),
        *("fc00::/7", "::1/128"),
    )
)
"""Blocks a listed CIDR can open (a sample, enough to tell a wide entry from a useless one)."""
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class AddressKind(enum.StrEnum):
    METADATA = "cloud metadata"
    UNSPECIFIED = "unspecified"
    LINK_LOCAL = "link-local"
    MULTICAST = "multicast"
    RESERVED = "reserved"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    SHARED = "shared (carrier-grade NAT)"
    PUBLIC = "public"


NEVER = frozenset(
    {
        AddressKind.METADATA,
        AddressKind.UNSPECIFIED,
        AddressKind.LINK_LOCAL,
        AddressKind.MULTICAST,
        AddressKind.RESERVED,
    }
)
"""The kinds no setting opens."""


class UrlError(ValueError):
    """A subscription URL that can never be delivered to."""


class PolicyError(ValueError):
    """A bad entry in the list of allowed private networks and hosts."""


def kind_of(address: IPAddress) -> AddressKind:
    address = reached(address)
    if address in METADATA:
        return AddressKind.METADATA
    if address.is_unspecified or address in _THIS_NETWORK:
        return AddressKind.UNSPECIFIED
    for kind, hit in (
        (AddressKind.LINK_LOCAL, address.is_link_local),
        (AddressKind.MULTICAST, address.is_multicast),
        (AddressKind.LOOPBACK, address.is_loopback),
        (AddressKind.RESERVED, address.is_reserved),
        (AddressKind.SHARED, address in _SHARED),
    ):
        if hit:
            return kind
    return AddressKind.PUBLIC if address.is_global else AddressKind.PRIVATE


def reached(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv4-mapped or NAT64 IPv6 address reaches; else the address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


@dataclass(frozen=True)
class AddressPolicy:
    networks: tuple[IPNetwork, ...] = ()
    """Private (or loopback) networks whose addresses receivers may have."""
    hosts: tuple[str, ...] = ()
    """Host names (lower case; `*.` + a suffix for every name under it) that may resolve to
    private or shared addresses."""
    all_private: bool = False
    """Every loopback, private and shared address (HERALD_ALLOW_PRIVATE_NETWORKS)."""

    @classmethod
    def parse(cls, text: str, *, all_private: bool = False) -> AddressPolicy:
        """Comma-separated CIDRs (a bare address is one address) and host names."""
        networks: list[IPNetwork] = []
        hosts: list[str] = []
        for raw in text.split(","):
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                if raw.strip():
                    raise PolicyError(f"{raw.strip()!r} is not a CIDR or a host name")
                continue
            if ":" in entry or "/" in entry or _numeric(entry):
                networks.append(_network(entry))
            else:
                hosts.append(_host(entry))
        return cls(networks=tuple(networks), hosts=tuple(hosts), all_private=all_private)

    def refusal(self, address: IPAddress, *, host: str | None = None) -> str | None:
        """Why a webhook to `host` may not be sent to `address`, or None if it may."""
        kind = kind_of(address)
        if kind is AddressKind.PUBLIC:
            return None
        if kind in NEVER:
            return f"a {kind} address, never delivered to"
        if self.all_private or any(reached(address) in n for n in self.networks):
            return None
        if kind is AddressKind.LOOPBACK:
            return f"a loopback address, not in {SETTING} (a host name never opens loopback)"
        if host is not None and self.lists_host(host):
            return None
        return f"a {kind} address; neither it nor the host is in {SETTING}"

    def lists_host(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return any(
            name.endswith(entry[1:]) if entry.startswith("*.") else name == entry
            for entry in self.hosts
        )


STRICT = AddressPolicy()
"""Public receivers only: the default."""


def _numeric(entry: str) -> bool:
    return entry.replace(".", "").isdigit()


def _network(entry: str) -> IPNetwork:
    try:
        network = ipaddress.ip_network(entry)
    except ValueError as e:
        raise PolicyError(f"{entry!r} is not a CIDR: {e}") from e
    ends = {kind_of(network.network_address), kind_of(network.broadcast_address)}
    if ends <= NEVER and not any(
        network.overlaps(b) for b in _OPENABLE if b.version == network.version
    ):
        raise PolicyError(
            f"{entry!r} holds only addresses never delivered to ({', '.join(sorted(ends))})"
        )
    if ends == {AddressKind.PUBLIC}:
        raise PolicyError(f"{entry!r} is public: public addresses need no listing")
    return network


def _host(entry: str) -> str:
    name = entry.removeprefix("*.")
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise PolicyError(f"{entry!r} is not a CIDR or a host name")
    if labels[-1] == "localhost" or name in METADATA_HOSTS:
        raise PolicyError(
            f"{entry!r}: a host name never opens loopback or metadata addresses;"
            " list 127.0.0.1/32 or ::1/128 to reach a receiver on loopback"
        )
    return entry


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


def check_target(url: str, policy: AddressPolicy) -> str:
    """`check_url`, and the host judged by `policy` where the URL alone tells its address: a
    literal address (also the legacy IPv4 forms `2130706433` and `0x7f.1` that resolvers accept),
    `localhost` and the names under it (RFC 6761: always loopback), and the metadata host names.
    Other names are judged when they are resolved, at each attempt."""
    check_url(url)
    host = (urlsplit(url).hostname or "").rstrip(".")
    if host in METADATA_HOSTS:
        raise UrlError(f"{host} is a cloud metadata host, never delivered to")
    address = _literal(host)
    if address is None and (host == "localhost" or host.endswith(".localhost")):
        address = ipaddress.ip_address("127.0.0.1")
    if address is not None:
        reason = policy.refusal(address, host=host)
        if reason is not None:
            raise UrlError(f"{host} is {reason}")
    return url


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fx.]+", host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None
