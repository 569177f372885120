from __future__ import annotations

import ipaddress

import pytest

from dispatchers.addresses import UrlError, check_url, refusal


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
        ("100.64.0.1", "shared"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("::ffff:10.0.0.1", "private"),
        ("169.254.169.254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("fd00:ec2::254", "metadata"),
    ],
)
def test_internal_addresses_are_refused(address: str, reason: str) -> None:
    found = refusal(ipaddress.ip_address(address), allow_private=False)
    assert found is not None
    assert reason in found


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), allow_private=False) is None


def test_allowing_private_networks_still_refuses_cloud_metadata() -> None:
    assert refusal(ipaddress.ip_address("127.0.0.1"), allow_private=True) is None
    assert refusal(ipaddress.ip_address("10.0.0.1"), allow_private=True) is None
    assert "metadata" in str(refusal(ipaddress.ip_address("169.254.169.254"), allow_private=True))


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
