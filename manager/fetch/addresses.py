"""Which addresses a fetch made for a chat may reach: public ones, and the networks a setting
allows (a Jackett on this machine: ``127.0.0.1/32``).

A chat must not make the server fetch from its own network (its loopback services, the LAN,
a cloud's metadata address). The check is made where the connection is made: a URL's literal
address before each request (every redirect's too), and a host name's addresses as they are
resolved for the connection itself (:class:`GuardedResolver`), so a name that resolves to a
public address when checked and to a private one when connecting (DNS rebinding) finds no
gap.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = ["AddressGuard", "AddressRefused", "GuardedResolver", "IpNetwork"]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressRefused(OSError):
    """A fetch would reach an address it may not (aiohttp carries it as a connector error)."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} is at {address}, a private or local address")
        self.host = host
        self.address = address


@dataclass(frozen=True)
class AddressGuard:
    """Public addresses pass; others only inside ``allowed``."""

    allowed: tuple[IpNetwork, ...] = ()

    def permits(self, address: str) -> bool:
        """Whether ``address`` (an IP address, IPv6 without brackets) may be reached."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        plain = mapped or ip
        if any(plain in network for network in self.allowed if plain.version == network.version):
            return True
        return plain.is_global and not plain.is_multicast

    def check_literal(self, host: str) -> None:
        """Refuse ``host`` when it is an IP address that may not be reached (a name is
        checked as it is resolved).

        Raises:
            AddressRefused: it is such an address.
        """
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return
        if not self.permits(host):
            raise AddressRefused(host, host)


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses the guard permits.

    Parameters:
        guard: what may be reached.
        inner: the resolver that asks the system (aiohttp's threaded one by default).
    """

    def __init__(self, guard: AddressGuard, inner: AbstractResolver) -> None:
        self._guard = guard
        self._inner = inner

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        """The permitted addresses of ``host``.

        Raises:
            AddressRefused: it has some, and none is permitted.
        """
        found = await self._inner.resolve(host, port, family)
        permitted = [result for result in found if self._guard.permits(result["host"])]
        if found and not permitted:
            raise AddressRefused(host, found[0]["host"])
        return permitted

    async def close(self) -> None:
        await self._inner.close()

