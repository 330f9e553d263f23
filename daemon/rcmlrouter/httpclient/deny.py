"""``[webhooks] deny_networks``: the networks no outbound request may reach.

A tenant must not point a VoiceUrl (or a fallback, a StatusCallback, an ``<Sms action>``, a
``<Play>`` file, a redirect target) at the services of the network the daemon runs in. The client
checks every connection it opens against one :class:`DenyList`, after DNS resolution
(:mod:`rcmlrouter.httpclient.addresses`): IP literals are checked as they are, a host name's
denied addresses are dropped, and a name that resolves only to denied addresses is refused. The
client connects only to the addresses it checked, so a name cannot be resolved once for the
check and again for the connection (DNS rebinding). Redirects go through the same path.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["DenyList", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


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
    """Networks no request may reach; IPv4-mapped IPv6 addresses are checked as IPv4."""

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
