"""A lean HTTP/1.1 keep-alive client for the webhook hot path (RCML fetches and status callbacks).

Every call costs one RCML fetch and up to three status callbacks, so the per-request cost of the
HTTP client is a large share of a call's CPU. aiohttp's ``ClientSession.request`` spends most of
its time in generic machinery (request/response objects, middlewares, cookie and redirect
bookkeeping, stream readers); measured on loopback (``tests/bench/webhook_client_bench.py``) this
client costs a fraction of that per request. It does only what a webhook needs:

- ``GET``/``POST`` with a ready body, over pooled keep-alive connections (plain TCP or TLS with
  the default verified context), one request per connection at a time, at most ``limit``
  connections in all, idle ones closed after ``keepalive_timeout``;
- responses parsed by ``httptools`` (llhttp, the parser uvicorn uses): ``Content-Length``,
  chunked and read-to-close bodies, ``Connection: close`` and HTTP/1.0 honoured, gzip/deflate
  decoded; at most ``max_body`` bytes kept;
- redirects (301/302/303/307/308) followed like aiohttp does (303, and 301/302 of a POST, become
  a GET without body), at most ``max_redirects``;
- connect, between-reads and total timeouts; a reused connection the server closed before
  answering is retried once on a new connection (the idle keep-alive race);
- user:password in the URL sent as Basic authorization;
- ``webhooks.deny_networks`` applied like the aiohttp session does, before any connection: IP
  literals checked, host names resolved (``getaddrinfo`` or the given aiohttp resolver, cached
  ``dns_ttl`` seconds) and their denied addresses dropped; we connect only to what we checked.

The wire protocol (one exchange on one connection) is :mod:`rcmlrouter.rcml.http1`; its failures
(:class:`HttpFailure` subclasses, re-exported here) are mapped to Twilio error codes by
:mod:`rcmlrouter.rcml.fetch_errors`, exactly as aiohttp's exceptions are.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver
from yarl import URL

from rcmlrouter.rcml.egress import DenyList, EgressDeniedError
from rcmlrouter.rcml.http1 import (
    DEFAULT_PORTS,
    ConnectFailed,
    Connection,
    ConnectTimedOut,
    Disconnected,
    Exchange,
    HttpFailure,
    MalformedResponse,
    ReadTimedOut,
    TlsFailed,
    TooLarge,
    TooManyRedirects,
    decode_body,
    request_head,
)

__all__ = [
    "ConnectFailed",
    "ConnectTimedOut",
    "Disconnected",
    "HttpFailure",
    "KeepAliveClient",
    "LaneResponse",
    "MalformedResponse",
    "ReadTimedOut",
    "TlsFailed",
    "TooLarge",
    "TooManyRedirects",
]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class LaneResponse:
    status: int
    url: str  # the final URL (after redirects)
    content_type: str  # media type, lower case, without parameters ("" when absent)
    body: bytes


_Key = tuple[str, str, int]  # scheme, host, port


class KeepAliveClient:
    """Pooled keep-alive HTTP/1.1 client for webhooks. Create and use inside the running loop."""

    def __init__(
        self,
        *,
        limit: int = 200,
        keepalive_timeout: float = 4.0,
        deny: DenyList | None = None,
        resolver: AbstractResolver | None = None,
        dns_ttl: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._limit = asyncio.Semaphore(limit)
        self._keepalive = keepalive_timeout
        self._deny = deny if deny else None
        self._resolver = resolver
        self._dns_ttl = dns_ttl
        self._dns: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._ssl = ssl_context
        self._idle: dict[_Key, collections.deque[Connection]] = {}

    async def request(
        self,
        method: str,
        url: URL,
        headers: dict[str, str],
        body: bytes | None,
        *,
        connect: float | None,
        read: float | None,
        total: float | None,
        max_body: int,
        max_redirects: int,
        discard: bool = False,
    ) -> LaneResponse:
        """Send ``method url`` and follow redirects; raise an :class:`HttpFailure` subclass."""
        loop = self._loop
        start = loop.time()
        deadline = start + total if total else float("inf")
        read_timeout = read if read else float("inf")
        redirects = 0
        while True:
            exchange = await self._exchange(
                method, url, headers, body, max_body, discard, connect, read_timeout, deadline
            )
            if exchange.status in _REDIRECTS and exchange.location:
                if redirects >= max_redirects:
                    raise TooManyRedirects(f"more than {max_redirects} redirects")
                redirects += 1
                try:
                    url = url.join(URL(exchange.location.decode("latin-1")))
                except ValueError as exc:
                    raise MalformedResponse(f"bad redirect location ({exc})") from exc
                if url.scheme not in DEFAULT_PORTS or not url.host:
                    raise MalformedResponse(f"bad redirect location {str(url)!r}")
                if exchange.status == 303 or (exchange.status in (301, 302) and method == "POST"):
                    method, body = "GET", None
                    headers = {k: v for k, v in headers.items() if k != "Content-Type"}
                continue
            if exchange.oversize and not discard:
                raise TooLarge(f"more than {max_body} bytes")
            content = b"" if discard else b"".join(exchange.body)
            if exchange.content_encoding and not discard:
                content = decode_body(content, exchange.content_encoding, max_body)
            media_type = exchange.content_type.partition(b";")[0].strip().lower()
            return LaneResponse(exchange.status, str(url), media_type.decode("latin-1"), content)

    async def _exchange(
        self,
        method: str,
        url: URL,
        headers: dict[str, str],
        body: bytes | None,
        max_body: int,
        discard: bool,
        connect: float | None,
        read: float,
        deadline: float,
    ) -> Exchange:
        scheme, host = url.scheme, url.host or ""
        port = url.port or DEFAULT_PORTS.get(scheme, 80)
        key = (scheme, host, port)
        head = request_head(method, url, headers, body)
        async with self._limit:
            for attempt in (0, 1):
                exchange = Exchange(max_body, discard)
                connection = self._pooled(key) if attempt == 0 else None
                reused = connection is not None
                if connection is None:
                    connection = await self._connect(key, connect, deadline)
                try:
                    await connection.exchange(head, body, exchange, read, deadline)
                except Disconnected:
                    connection.close()
                    if reused and connection.received_nothing:
                        continue  # the idle keep-alive race: send it again on a new connection
                    raise
                except BaseException:
                    connection.close()
                    raise
                reusable = exchange.keep_alive and exchange.complete and not exchange.oversize
                if reusable and not connection.closed:
                    connection.idle_since = self._loop.time()
                    self._idle.setdefault(key, collections.deque()).append(connection)
                else:
                    connection.close()
                return exchange
        raise AssertionError("unreachable")  # pragma: no cover

    def _pooled(self, key: _Key) -> Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        stale_before = self._loop.time() - self._keepalive
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            if connection.idle_since < stale_before:
                connection.close()
                # everything left of it is older still
                while idle:
                    idle.popleft().close()
                return None
            return connection
        return None

    async def _connect(self, key: _Key, connect: float | None, deadline: float) -> Connection:
        scheme, host, port = key
        remaining = deadline - self._loop.time()
        if remaining <= 0:
            raise ReadTimedOut("timed out before connecting")
        limit = min(connect, remaining) if connect else remaining
        try:
            async with asyncio.timeout(None if limit == float("inf") else limit):
                addresses = await self._addresses(host, port)
                error: Exception | None = None
                for address in addresses:
                    try:
                        _, protocol = await self._loop.create_connection(
                            lambda: Connection(self._loop),
                            address,
                            port,
                            ssl=self._tls() if scheme == "https" else None,
                            server_hostname=host if scheme == "https" else None,
                        )
                        return protocol
                    except ssl.SSLError as exc:
                        raise TlsFailed(f"TLS error ({exc})") from exc
                    except OSError as exc:
                        error = exc
                raise ConnectFailed(f"cannot connect to {host}:{port} ({error})") from error
        except TimeoutError as exc:
            if connect and limit == connect:
                raise ConnectTimedOut(f"connect timeout ({host}:{port})") from exc
            raise ReadTimedOut("timed out while connecting") from exc

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def _addresses(self, host: str, port: int) -> list[str]:
        if _is_literal(host):
            if self._deny is not None and self._deny.denies(host):
                raise EgressDeniedError(f"{host} is in webhooks.deny_networks")
            return [host]
        cached = self._dns.get((host, port))
        now = self._loop.time()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            if self._resolver is not None:
                results = await self._resolver.resolve(host, port)
                addresses = [result["host"] for result in results]
            else:
                # type 1 = SOCK_STREAM (only transports import the socket module: test_layers)
                infos = await self._loop.getaddrinfo(host, port, type=1)
                addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        except EgressDeniedError:
            raise
        except OSError as exc:
            raise ConnectFailed(f"cannot resolve {host} ({exc})") from exc
        if self._deny is not None:
            addresses = [address for address in addresses if not self._deny.denies(address)]
            if not addresses:
                raise EgressDeniedError(f"{host} resolves only to denied addresses")
        self._dns[(host, port)] = (now + self._dns_ttl, addresses)
        return addresses

    async def close(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()


def _is_literal(host: str) -> bool:
    if ":" in host:
        return True  # yarl gives IPv6 hosts without brackets
    parts = host.split(".")
    return len(parts) == 4 and all(part.isdigit() for part in parts)
