"""The address policy (`dispatchers.addresses`): pure, no resolution, no connection."""

from __future__ import annotations

import ipaddress
import subprocess
import sys

import pytest

from dispatchers.addresses import (
    STRICT,
    AddressPolicy,
    PolicyError,
    UrlError,
    check_target,
    check_url,
)
from dispatchers.settings import DispatcherSettings, SettingsError


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.10.10", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "shared"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
        ("169.254.169.254", "metadata"),
        ("::ffff:169.254.169.254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("fd00:ec2::254", "metadata"),
    ],
)
def test_internal_addresses_are_refused_by_default(address: str, reason: str) -> None:
    found = STRICT.refusal(_ip(address), host="hooks.example.com")
    assert found is not None
    assert reason in found


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "::ffff:8.8.8.8"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert STRICT.refusal(_ip(address)) is None


IN_CLUSTER = AddressPolicy.parse("10.42.0.0/16, fd00:42::/32, hooks.team.svc.cluster.local")


@pytest.mark.parametrize(
    ("address", "host", "allowed"),
    [
        pytest.param("10.42.7.1", "anything.example.com", True, id="in-a-listed-cidr"),
        pytest.param("10.43.0.1", "anything.example.com", False, id="outside-the-listed-cidr"),
        pytest.param("::ffff:10.42.0.9", None, True, id="ipv4-mapped-in-a-listed-cidr"),
        pytest.param("fd00:42::1", None, True, id="ipv6-in-a-listed-cidr"),
        pytest.param("fd00:43::1", None, False, id="ipv6-outside-the-listed-cidr"),
        pytest.param("10.99.0.1", "hooks.team.svc.cluster.local", True, id="listed-host"),
        pytest.param("10.99.0.1", "HOOKS.team.svc.cluster.local.", True, id="listed-host-any-case"),
        pytest.param("10.99.0.1", "other.team.svc.cluster.local", False, id="unlisted-host"),
        pytest.param("127.0.0.1", "hooks.team.svc.cluster.local", False, id="host-never-loopback"),
        pytest.param(
            "169.254.3.4", "hooks.team.svc.cluster.local", False, id="host-never-link-local"
        ),
        pytest.param("8.8.8.8", None, True, id="public-needs-no-listing"),
    ],
)
def test_listed_networks_and_hosts_open_private_receivers_only(
    address: str, host: str | None, allowed: bool
) -> None:
    assert (IN_CLUSTER.refusal(_ip(address), host=host) is None) is allowed


def test_a_wildcard_host_opens_every_name_under_it_not_the_name_itself() -> None:
    policy = AddressPolicy.parse("*.svc.cluster.local")
    private = _ip("10.0.0.5")
    assert policy.refusal(private, host="hooks.team.svc.cluster.local") is None
    assert policy.refusal(private, host="svc.cluster.local") is not None
    assert policy.refusal(private, host="evil-svc.cluster.local") is not None


def test_loopback_opens_only_for_a_listed_cidr_holding_it() -> None:
    assert AddressPolicy.parse("127.0.0.1/32").refusal(_ip("127.0.0.1")) is None
    assert AddressPolicy.parse("127.0.0.1").refusal(_ip("127.0.0.2")) is not None
    assert AddressPolicy.parse("::1").refusal(_ip("::1")) is None


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(AddressPolicy(all_private=True), id="every-private-network"),
        pytest.param(AddressPolicy.parse("0.0.0.0/0, ::/0"), id="everything-listed"),
        pytest.param(AddressPolicy.parse("169.254.0.0/15"), id="link-local-inside-a-wider-cidr"),
    ],
)
@pytest.mark.parametrize(
    "address", ["169.254.169.254", "fd00:ec2::254", "169.254.1.1", "0.0.0.0", "224.0.0.1"]
)
def test_no_setting_opens_metadata_link_local_unspecified_or_multicast(
    policy: AddressPolicy, address: str
) -> None:
    assert policy.refusal(_ip(address), host="hooks.example.com") is not None


def test_every_private_network_opens_loopback_and_private_addresses() -> None:
    policy = AddressPolicy(all_private=True)
    assert policy.refusal(_ip("127.0.0.1")) is None
    assert policy.refusal(_ip("10.0.0.1")) is None
    assert policy.refusal(_ip("100.64.0.1")) is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param("10.0.0.1/8", "host bits set", id="cidr-with-host-bits"),
        pytest.param("10.0.0.0/33", "10.0.0.0/33", id="prefix-too-long"),
        pytest.param("10.0.0.300", "10.0.0.300", id="not-an-address"),
        pytest.param("169.254.0.0/16", "never delivered to", id="link-local-only"),
        pytest.param("169.254.169.254", "never delivered to", id="the-metadata-address"),
        pytest.param("224.0.0.0/4", "never delivered to", id="multicast-only"),
        pytest.param("8.8.8.0/24", "public", id="public-cidr"),
        pytest.param("localhost", "never opens loopback", id="localhost-by-name"),
        pytest.param("metadata.google.internal", "metadata", id="metadata-by-name"),
        pytest.param("hooks_team.local", "not a CIDR or a host name", id="bad-host-name"),
        pytest.param("a b", "not a CIDR or a host name", id="space"),
    ],
)
def test_a_bad_entry_is_refused_naming_it(raw: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as caught:
        AddressPolicy.parse(f"10.0.0.0/8,{raw}")
    assert raw.split("/", maxsplit=1)[0] in str(caught.value)


def test_the_setting_is_read_into_the_policy_and_checked_against_the_all_or_nothing_flag() -> None:
    base = {"HERALD_DATABASE_URL": "postgresql://x"}
    settings = DispatcherSettings.from_env(
        {**base, "HERALD_DISPATCHER_ALLOWED_PRIVATE_NETWORKS": "10.42.0.0/16, *.svc.cluster.local"}
    )
    assert settings.address_policy.networks == (ipaddress.ip_network("10.42.0.0/16"),)
    assert settings.address_policy.hosts == ("*.svc.cluster.local",)
    assert DispatcherSettings.from_env(base).address_policy == STRICT
    assert DispatcherSettings.from_env(
        {**base, "HERALD_ALLOW_PRIVATE_NETWORKS": "true"}
    ).address_policy == AddressPolicy(all_private=True)
    with pytest.raises(SettingsError, match="HERALD_ALLOW_PRIVATE_NETWORKS"):
        DispatcherSettings.from_env(
            {
                **base,
                "HERALD_ALLOW_PRIVATE_NETWORKS": "true",
                "HERALD_DISPATCHER_ALLOWED_PRIVATE_NETWORKS": "10.0.0.0/8",
            }
        )


def test_a_bad_entry_stops_the_dispatcher_naming_the_setting_and_the_entry() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dispatchers", "migrate"],
        env={
            "HERALD_DATABASE_URL": "postgresql://127.0.0.1:1/x",
            "HERALD_DISPATCHER_ALLOWED_PRIVATE_NETWORKS": "10.0.0.0/8,169.254.0.0/16",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "HERALD_DISPATCHER_ALLOWED_PRIVATE_NETWORKS" in result.stderr
    assert "169.254.0.0/16" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("example.com/hook", "only http and https"),
        ("https:///hook", "no host"),
        ("https://user:pw@example.com/hook", "credentials"),
        ("https://example.com:99999/hook", "bad port"),
    ],
)
def test_urls_that_can_never_be_delivered_to_are_rejected(url: str, message: str) -> None:
    with pytest.raises(UrlError, match=message):
        check_url(url)


def test_http_and_https_urls_are_accepted() -> None:
    assert (
        check_url("https://hooks.example.com/herald?x=1") == "https://hooks.example.com/herald?x=1"
    )
    assert check_url("http://10.0.0.5:8080/") == "http://10.0.0.5:8080/"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("http://169.254.169.254/latest/meta-data/", "metadata", id="metadata"),
        pytest.param("http://[fd00:ec2::254]/", "metadata", id="metadata-ipv6"),
        pytest.param("http://[::ffff:169.254.169.254]/", "metadata", id="metadata-ipv4-mapped"),
        pytest.param("http://2852039166/", "metadata", id="metadata-as-a-decimal-number"),
        pytest.param("http://0xa9fea9fe/", "metadata", id="metadata-as-a-hex-number"),
        pytest.param("http://metadata.google.internal/", "metadata", id="metadata-by-name"),
        pytest.param("http://0.0.0.0:8080/", "unspecified", id="unspecified"),
        pytest.param("http://127.0.0.1:9103/", "loopback", id="loopback-not-listed"),
        pytest.param("http://localhost:9103/", "loopback", id="localhost"),
        pytest.param("http://api.localhost/", "loopback", id="under-localhost"),
        pytest.param("http://10.1.2.3/", "private", id="private-not-listed"),
    ],
)
def test_a_target_the_policy_refuses_whatever_it_resolves_to_is_rejected(
    url: str, message: str
) -> None:
    with pytest.raises(UrlError, match=message):
        check_target(url, IN_CLUSTER)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/h",
        "http://10.42.0.7:8080/h",  # a listed CIDR
        "http://internal.example.com/h",  # a name: judged when resolved, at each attempt
    ],
)
def test_a_target_the_policy_may_allow_is_accepted(url: str) -> None:
    assert check_target(url, IN_CLUSTER) == url
