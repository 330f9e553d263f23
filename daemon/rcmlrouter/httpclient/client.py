"""The daemon's HTTP/1.1 keep-alive client: RCML fetches, status callbacks, ``<Play>`` files.

It does what these requests need, at a fraction of the CPU of the general clients (README,
"Webhook client"):

- ``GET``/``POST`` with a ready body over pooled keep-alive connections (plain TCP, or TLS with
  the default verified context), one request per connection at a time, at most ``limit``
  connections in all; idle ones kept at most ``keepalive_timeout`` seconds, at most
  ``max_idle`` of them (:mod:`~rcmlrouter.httpclient.pool`);
- responses parsed within limits (:mod:`~rcmlrouter.httpclient.exchange`); gzip / deflate
  decoded; at most ``max_body`` bytes kept;
- redirects (301/302/303/307/308) followed as browsers and aiohttp do (303, and 301/302 of a
  POST, become a GET without body), at most ``max_redirects``; a ``Location`` in raw UTF-8 is
  percent-encoded once;
- connect, between-reads and total timeouts;
- a request is sent again only when not one byte came back and the server closed the connection
  (or reset a reused one: the idle keep-alive race), and only once, on a new connection: a
  response cut short after some bytes is a failure, never a resend. The fetcher adds no retry
  of its own beyond a URL's explicit ``#rc=`` policy;
- user:password in the URL sent as Basic authorization;
- ``webhooks.deny_networks`` applied before any connection, after DNS
  (:mod:`~rcmlrouter.httpclient.addresses`); redirects go through the same check.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

from yarl import URL

from rcmlrouter.httpclient.addresses import AddressBook, Lookup
from rcmlrouter.httpclient.connection import Connection
from rcmlrouter.httpclient.deny import DenyList
from rcmlrouter.httpclient.exchange import DEFAULT_PORTS, Exchange, decode_body, request_head
from rcmlrouter.httpclient.failures import (
    ConnectFailed,
    ConnectionReset,
    ConnectTimedOut,
    Disconnected,
    MalformedResponse,
    ReadTimedOut,
    TlsFailed,
    TooLarge,
    TooManyRedirects,
)
from rcmlrouter.httpclient.pool import IdlePool, Key

__all__ = ["HttpClient", "HttpResponse"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    url: str  # the final URL (after redirects)
    content_type: str  # media type, lower case, without parameters ("" when absent)
    body: bytes
    fields: list[tuple[bytes, bytes]] = field(default_factory=list)  # the header fields

    def header(self, name: str) -> str | None:
        """The first header field called ``name`` (any case), or None."""
        wanted = name.lower().encode("latin-1")
        for key, value in self.fields:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None


class HttpClient:
    """Pooled keep-alive HTTP/1.1 client. Create and use inside the running loop."""

    def __init__(
        self,
        *,
        limit: int = 200,
        keepalive_timeout: float = 4.0,
        max_idle: int | None = None,
        deny: DenyList | None = None,
        lookup: Lookup | None = None,
        dns_ttl: float = 60.0,
        dns_entries: int = 1024,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._limit = asyncio.Semaphore(limit)
        self._addresses = AddressBook(deny, lookup, ttl=dns_ttl, max_entries=dns_entries)
        self._ssl = ssl_context
        self.idle: IdlePool[Connection] = IdlePool(keepalive_timeout, max_idle or limit)

    @property
    def addresses(self) -> AddressBook:
        """The deny-list-checked DNS cache (the media streams' WebSocket client shares it)."""
        return self._addresses

    @property
    def dns_cached(self) -> int:
        """Host names in the DNS cache (at most ``dns_entries``)."""
        return len(self._addresses)

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
    ) -> HttpResponse:
        """Send ``method url`` and follow redirects; raise an ``HttpFailure`` subclass."""
        deadline = self._loop.time() + total if total else float("inf")
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
                url = _redirect_target(url, exchange.location)
                if exchange.status == 303 or (exchange.status in (301, 302) and method == "POST"):
                    method, body = "GET", None
                    headers = {k: v for k, v in headers.items() if k != "Content-Type"}
                continue
            return _response(exchange, url, max_body, discard)

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
        key = (scheme, host, url.port or DEFAULT_PORTS.get(scheme, 80))
        head = request_head(method, url, headers, body)
        async with self._limit:
            for attempt in (0, 1):
                exchange = Exchange(max_body, discard)
                connection = self.idle.take(key) if attempt == 0 else None
                reused = connection is not None
                if connection is None:
                    connection = await self._connect(key, connect, deadline)
                try:
                    await connection.exchange(head, body, exchange, read, deadline)
                except Disconnected as exc:
                    connection.close()
                    if attempt == 0 and _may_resend(exc, connection, reused):
                        continue  # once more, on a new connection
                    raise
                except BaseException:
                    connection.close()
                    raise
                reusable = exchange.keep_alive and exchange.complete and not exchange.oversize
                if reusable and not connection.closed:
                    self.idle.put(key, connection)
                else:
                    connection.close()
                return exchange
        raise AssertionError("unreachable")  # pragma: no cover

    async def _connect(self, key: Key, connect: float | None, deadline: float) -> Connection:
        scheme, host, port = key
        remaining = deadline - self._loop.time()
        if remaining <= 0:
            raise ReadTimedOut("timed out before connecting")
        limit = min(connect, remaining) if connect else remaining
        try:
            async with asyncio.timeout(None if limit == float("inf") else limit):
                error: Exception | None = None
                for address in await self._addresses.addresses(host, port):
                    try:
                        return await self._open(scheme, host, address, port)
                    except ssl.SSLError as exc:
                        raise TlsFailed(f"TLS error ({exc})") from exc
                    except OSError as exc:
                        error = exc
                raise ConnectFailed(f"cannot connect to {host}:{port} ({error})") from error
        except TimeoutError as exc:
            if connect and limit == connect:
                raise ConnectTimedOut(f"connect timeout ({host}:{port})") from exc
            raise ReadTimedOut("timed out while connecting") from exc

    async def _open(self, scheme: str, host: str, address: str, port: int) -> Connection:
        """Open a connection to a checked ``address`` (the one place a socket is opened)."""
        tls = scheme == "https"
        _, protocol = await self._loop.create_connection(
            lambda: Connection(self._loop),
            address,
            port,
            ssl=self._tls() if tls else None,
            server_hostname=host if tls else None,
        )
        return protocol

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def close(self) -> None:
        self.idle.close()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


def _may_resend(exc: Disconnected, connection: Connection, reused: bool) -> bool:
    """Only a request that got no byte back: closed by the server (a reused connection: the idle
    keep-alive race), or reset while it sat in the pool. A reset fresh connection is a refusal."""
    return connection.received_nothing and (reused or not isinstance(exc, ConnectionReset))


def _redirect_target(url: URL, location: bytes) -> URL:
    """Resolve ``Location``; raw UTF-8 is percent-encoded once (RFC 3986 §2.5, as browsers do)."""
    try:
        text = location.decode("utf-8")
    except UnicodeDecodeError:
        text = location.decode("latin-1")
    try:
        target = url.join(URL(text.strip()))
    except ValueError as exc:
        raise MalformedResponse(f"bad redirect location ({exc})") from exc
    if target.scheme not in DEFAULT_PORTS or not target.host:
        raise MalformedResponse(f"bad redirect location {str(target)!r}")
    return target


def _response(exchange: Exchange, url: URL, max_body: int, discard: bool) -> HttpResponse:
    if exchange.oversize and not discard:
        raise TooLarge(f"more than {max_body} bytes")
    content = b"" if discard else b"".join(exchange.body)
    if exchange.content_encoding and not discard:
        content = decode_body(content, exchange.content_encoding, max_body)
    media_type = exchange.content_type.partition(b";")[0].strip().lower()
    return HttpResponse(
        exchange.status, str(url), media_type.decode("latin-1"), content, exchange.headers
    )
