"""Where a SIP URI is sent (RFC 3263, without NAPTR/SRV): transport, host and port.

``;transport=`` chooses udp, tcp or tls (a ``sips:`` URI: tls); the port defaults to 5060 (5061
for TLS). An IP literal is used as is; a host name is resolved with A/AAAA through the loop's
``getaddrinfo`` and cached for :data:`TTL` seconds (``getaddrinfo`` gives no record TTL), at
most :data:`MAX_ENTRIES` names.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import time
from collections.abc import Callable

from rcmlrouter.errors import SipError
from rcmlrouter.sip.transport import TRANSPORTS, Source
from rcmlrouter.sip.uri import SipUri, bare_host

TTL = 30.0
MAX_ENTRIES = 1024


def uri_destination(uri: SipUri) -> Source:
    """(transport, host, port) of a ``sip:``/``sips:`` URI; the host may still be a name.
    Raises :class:`SipError` 416 for tel URIs, 503 for an unsupported transport."""
    if uri.scheme == "tel" or not uri.host:
        raise SipError(f"cannot send to {uri} without a proxy", sip_status=416)
    transport = uri.transport
    if transport not in TRANSPORTS:
        raise SipError(f"unsupported SIP transport {transport!r}", sip_status=503)
    default_port = 5061 if transport == "tls" or uri.scheme == "sips" else 5060
    return transport, bare_host(uri.host), uri.port or default_port


@functools.lru_cache(maxsize=4096)
def is_ip_literal(host: str) -> bool:
    """Whether ``host`` is an IPv4 or IPv6 address (bracketed or not). Cached: every request
    we send asks it of its next hop, and ``ipaddress`` parsing was ~5 % of an API call's CPU."""
    try:
        ipaddress.ip_address(bare_host(host))
    except ValueError:
        return False
    return True


class Resolver:
    """A/AAAA lookups with a small TTL cache; addresses in ``getaddrinfo``'s preference order."""

    def __init__(
        self,
        *,
        ttl: float = TTL,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._cache: dict[str, tuple[float, list[str]]] = {}

    def __len__(self) -> int:
        return len(self._cache)

    def cached(self, host: str) -> list[str] | None:
        """The addresses of ``host`` without a lookup: itself for a literal, else the cache."""
        if is_ip_literal(host):
            return [bare_host(host)]
        entry = self._cache.get(host.lower())
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._cache[host.lower()]
            return None
        return entry[1]

    async def resolve(self, host: str) -> list[str]:
        """The addresses of ``host``; :class:`SipError` 503 when the name does not resolve."""
        hit = self.cached(host)
        if hit is not None:
            return hit
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None)
        except OSError as exc:  # socket.gaierror included
            raise SipError(f"cannot resolve {host}: {exc}", sip_status=503) from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise SipError(f"no address for {host}", sip_status=503)
        self._store(host.lower(), addresses)
        return addresses

    def _store(self, key: str, addresses: list[str]) -> None:
        self._cache.pop(key, None)
        while len(self._cache) >= self.max_entries:
            del self._cache[next(iter(self._cache))]  # the oldest entry
        self._cache[key] = (self._clock() + self.ttl, addresses)


__all__ = ["MAX_ENTRIES", "TTL", "Resolver", "is_ip_literal", "uri_destination"]
