"""Where to connect: a host's addresses, resolved, cached (bounded) and checked against the
deny list (:mod:`rcmlrouter.httpclient.deny`) before any connection is attempted.

The cache keeps at most ``max_entries`` names for ``ttl`` seconds each; an expired entry is
resolved again, and when the cache is full the least recently used name is forgotten. Failed
look-ups are not cached.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from rcmlrouter.httpclient.deny import DenyList
from rcmlrouter.httpclient.failures import ConnectFailed, EgressDeniedError

__all__ = ["AddressBook", "Lookup", "is_ip_literal"]

Lookup = Callable[[str, int], Awaitable[list[str]]]
"""``await lookup(host, port)`` → the host's addresses (a stand-in for ``getaddrinfo``)."""


class AddressBook:
    """Resolves host names (``getaddrinfo`` unless ``lookup`` is given) and applies ``deny``."""

    def __init__(
        self,
        deny: DenyList | None = None,
        lookup: Lookup | None = None,
        *,
        ttl: float = 60.0,
        max_entries: int = 1024,
    ) -> None:
        self._deny = deny if deny else None
        self._lookup = lookup
        self._ttl = ttl
        self._max_entries = max_entries
        self._cache: OrderedDict[tuple[str, int], tuple[float, list[str]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    async def addresses(self, host: str, port: int) -> list[str]:
        """The allowed addresses of ``host``; ``EgressDeniedError`` or ``ConnectFailed``."""
        if is_ip_literal(host):
            if self._deny is not None and self._deny.denies(host):
                raise EgressDeniedError(f"{host} is in webhooks.deny_networks")
            return [host]
        key = (host, port)
        loop = asyncio.get_running_loop()
        now = loop.time()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(key)
            return cached[1]
        addresses = self._allowed(host, await self._resolve(loop, host, port))
        self._cache[key] = (now + self._ttl, addresses)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return addresses

    async def _resolve(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[str]:
        try:
            if self._lookup is not None:
                return await self._lookup(host, port)
            # type 1 = SOCK_STREAM (only transports import the socket module: test_layers)
            infos = await loop.getaddrinfo(host, port, type=1)
        except OSError as exc:
            raise ConnectFailed(f"cannot resolve {host} ({exc})") from exc
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    def _allowed(self, host: str, addresses: list[str]) -> list[str]:
        if not addresses:
            raise ConnectFailed(f"cannot resolve {host} (no address)")
        if self._deny is None:
            return addresses
        allowed = [address for address in addresses if not self._deny.denies(address)]
        if not allowed:
            listed = ", ".join(sorted(set(addresses)))
            raise EgressDeniedError(
                f"{host} resolves only to denied addresses ({listed}): webhooks.deny_networks"
            )
        return allowed


def is_ip_literal(host: str) -> bool:
    if ":" in host:
        return True  # yarl gives IPv6 hosts without brackets
    parts = host.split(".")
    return len(parts) == 4 and all(part.isdigit() for part in parts)
