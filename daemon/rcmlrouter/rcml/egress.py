"""Webhook egress control: ``[webhooks] deny_networks``, enforced after DNS resolution.

A tenant must not point a VoiceUrl (or a fallback, a StatusCallback, an ``<Sms action>``, a
``<Play>`` file, a redirect target) at the services of the network the daemon runs in. Every
request of the shared webhook session passes two checks:

- :class:`DenyingResolver` wraps aiohttp's resolver: the addresses a host name resolves to are
  filtered, and a name that resolves only to denied addresses is refused. The connector connects
  to what the resolver returns, so a name cannot be resolved once for a check and again for the
  connection (DNS rebinding).
- :func:`deny_literal_middleware` (an aiohttp client middleware: it runs for every request,
  redirects included) refuses a URL whose host is a denied IP literal, which the connector never
  hands to the resolver.

Both raise :class:`EgressDeniedError` before any connection is attempted; the fetcher turns it
into a connection failure (``ErrorCode`` 11205: fallback and notification).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_middlewares import ClientHandlerType, ClientMiddlewareType

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class EgressDeniedError(aiohttp.ClientConnectionError):
    """A webhook host is, or resolves only to, addresses in ``webhooks.deny_networks``."""


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "::1"]`` → networks; ValueError names the first bad entry."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"not a network (CIDR): {cidr!r}") from exc
    return tuple(networks)


class DenyList:
    """Networks no webhook may reach; IPv4-mapped IPv6 addresses are checked as IPv4."""

    def __init__(self, networks: Sequence[Network]) -> None:
        self.networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def denies(self, host: str) -> bool:
        """True when ``host`` (an address, maybe with a ``%scope``) is in a denied network."""
        address = _address(host)
        if address is None:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def _address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").partition("%")[0])
    except ValueError:
        return None


class DenyingResolver(AbstractResolver):
    """Resolve with ``resolver`` (default: aiohttp's ``ThreadedResolver``, ``getaddrinfo``, which
    holds nothing to close); drop denied addresses, refuse the host if none is left."""

    def __init__(self, deny: DenyList, resolver: AbstractResolver | None = None) -> None:
        self._deny = deny
        self._resolver = resolver if resolver is not None else aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        allowed = [result for result in results if not self._deny.denies(result["host"])]
        if not allowed:
            addresses = ", ".join(sorted({result["host"] for result in results}))
            raise EgressDeniedError(
                f"{host} resolves only to denied addresses ({addresses}): webhooks.deny_networks"
            )
        return allowed

    async def close(self) -> None:
        await self._resolver.close()


def deny_literal_middleware(deny: DenyList) -> ClientMiddlewareType:
    """A client middleware refusing requests (and redirects) to a denied IP-literal host."""

    async def middleware(
        request: aiohttp.ClientRequest, handler: ClientHandlerType
    ) -> aiohttp.ClientResponse:
        host = request.url.host or ""
        if deny.denies(host):
            raise EgressDeniedError(f"{host} is in webhooks.deny_networks")
        return await handler(request)

    return middleware
