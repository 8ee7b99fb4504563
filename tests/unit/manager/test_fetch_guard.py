"""What a chat may make the server fetch: public addresses only, unless a network is allowed;
and which links in a chat message are .torrent links. Pure checks (no connection is made:
the resolver below answers as DNS would)."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from manager.fetch.addresses import AddressGuard, AddressRefused, GuardedResolver
from manager.sources import find_torrent_urls, is_http_url

LOCAL = ["127.0.0.1", "127.8.9.10", "::1", "0.0.0.0", "::", "10.1.2.3", "172.16.0.1",
         "192.168.1.20", "169.254.169.254", "100.64.0.1", "fe80::1%eth0", "fd00::1",
         "::ffff:127.0.0.1", "::ffff:10.0.0.1", "224.0.0.1", "ff02::1", "255.255.255.255",
         "not an address"]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", LOCAL)
def test_private_local_and_special_addresses_are_refused(address: str) -> None:
    assert not AddressGuard().permits(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert AddressGuard().permits(address)


def test_an_allowed_network_passes_and_only_it() -> None:
    guard = AddressGuard((ipaddress.ip_network("127.0.0.1/32"),))
    assert guard.permits("127.0.0.1")
    assert guard.permits("::ffff:127.0.0.1")  # the same address, IPv4-mapped
    assert not guard.permits("127.0.0.2")
    assert not guard.permits("::1")


def test_a_literal_address_is_checked_and_a_name_left_to_resolution() -> None:
    guard = AddressGuard()
    with pytest.raises(AddressRefused):
        guard.check_literal("::1")
    guard.check_literal("tracker.example")  # checked when it is resolved


class _Dns(AbstractResolver):
    """Answers as DNS would for a name, without asking anyone."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=address, port=port, family=family, proto=0,
                              flags=0) for address in self.addresses]

    async def close(self) -> None:
        return None


async def test_a_name_that_resolves_to_loopback_is_refused() -> None:
    resolver = GuardedResolver(AddressGuard(), _Dns("127.0.0.1", "::1"))
    with pytest.raises(AddressRefused, match=r"tracker\.example is at 127\.0\.0\.1"):
        await resolver.resolve("tracker.example", 80)


async def test_only_the_permitted_addresses_of_a_name_are_connected_to() -> None:
    """A name with a private and a public address (a rebinding trick) keeps the public one."""
    resolver = GuardedResolver(AddressGuard(), _Dns("10.0.0.7", "8.8.8.8"))
    assert [r["host"] for r in await resolver.resolve("tracker.example", 80)] == ["8.8.8.8"]


def test_torrent_links_are_found_in_a_message_other_links_are_not() -> None:
    text = ("new episode: https://tracker.example/dl/123.torrent?passkey=abc, and "
            "(http://other.example/x.TORRENT). See https://tracker.example/details/123 or "
            "ftp://files.example/y.torrent; again https://tracker.example/dl/123.torrent?passkey=abc")
    assert find_torrent_urls(text) == ["https://tracker.example/dl/123.torrent?passkey=abc",
                                       "http://other.example/x.TORRENT"]
    assert find_torrent_urls("no links here") == []


@pytest.mark.parametrize(("text", "expected"), [
    ("https://tracker.example/download.php?id=5", True), (" HTTP://x.example/a ", True),
    ("magnet:?xt=urn:btih:" + "a" * 40, False), ("ftp://x.example/a.torrent", False),
    ("/home/me/a.torrent", False), ("httpx://a", False)])
def test_which_sources_are_fetched(text: str, expected: bool) -> None:
    assert is_http_url(text) is expected
