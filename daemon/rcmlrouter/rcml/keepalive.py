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
- ``webhooks.deny_networks`` applied like the aiohttp session does: IP literals checked here,
  host names resolved by the same :class:`~rcmlrouter.rcml.egress.DenyingResolver` (cached for
  ``dns_ttl`` seconds) before a connection is made.

Failures are :class:`HttpFailure` subclasses; :mod:`rcmlrouter.rcml.fetch` maps them to Twilio
error codes exactly as it maps aiohttp's exceptions.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import ssl
import zlib
from dataclasses import dataclass

import httptools
from aiohttp.abc import AbstractResolver
from yarl import URL

from rcmlrouter.rcml.egress import DenyList, EgressDeniedError

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
_DEFAULT_PORTS = {"http": 80, "https": 443}


class HttpFailure(Exception):
    """A webhook request failed below HTTP (connection, timeout, protocol)."""


class ConnectFailed(HttpFailure):
    """The connection could not be made (refused, unreachable, DNS failure)."""


class ConnectTimedOut(HttpFailure):
    """The connection was not made within the connect timeout."""


class ReadTimedOut(HttpFailure):
    """The response did not arrive (or stalled) within the read or total timeout."""


class Disconnected(HttpFailure):
    """The server closed the connection before the response was complete."""


class MalformedResponse(HttpFailure):
    """The bytes received are not an HTTP/1.x response."""


class TlsFailed(HttpFailure):
    """The TLS handshake failed (certificate, protocol)."""


class TooManyRedirects(HttpFailure):
    """More than ``max_redirects`` redirects."""


class TooLarge(HttpFailure):
    """The body is larger than ``max_body`` (only raised when the body is kept)."""


@dataclass(frozen=True, slots=True)
class LaneResponse:
    status: int
    url: str  # the final URL (after redirects)
    content_type: str  # media type, lower case, without parameters ("" when absent)
    body: bytes


class _Exchange:
    """What one response is being parsed into (httptools' callback target)."""

    __slots__ = (
        "_parser",
        "body",
        "complete",
        "content_encoding",
        "content_type",
        "delimited",
        "discard",
        "headers_done",
        "keep_alive",
        "location",
        "max_body",
        "oversize",
        "size",
        "status",
    )

    def __init__(self, max_body: int, discard: bool) -> None:
        self.body: list[bytes] = []
        self.complete = False
        self.content_encoding = b""
        self.content_type = b""
        self.delimited = False  # Content-Length or chunked: the body's end is known
        self.discard = discard
        self.headers_done = False
        self.keep_alive = True
        self.location = b""
        self.max_body = max_body
        self.oversize = False
        self.size = 0
        self.status = 0
        self._parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)

    def feed(self, data: bytes) -> None:
        if self._parser is None:
            raise httptools.HttpParserError("the exchange is over")
        self._parser.feed_data(data)

    def release(self) -> None:
        """Drop the parser: it refers back to this object (a cycle only the GC would free)."""
        self._parser = None

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"content-type":
            self.content_type = value
        elif lower == b"location":
            self.location = value
        elif lower == b"content-encoding":
            self.content_encoding = value.strip().lower()
        elif lower in (b"content-length", b"transfer-encoding"):
            self.delimited = True

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        self.status = parser.get_status_code()
        self.keep_alive = parser.should_keep_alive()
        self.headers_done = True

    def on_body(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_body:
            self.oversize = True
        elif not self.discard:
            self.body.append(data)

    def on_message_complete(self) -> None:
        self.complete = True


class _Connection(asyncio.Protocol):
    """One pooled connection; one exchange at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._exchange: _Exchange | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._received = False
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        exchange = self._exchange
        if exchange is None:
            self.close()  # bytes nobody asked for: this connection cannot be trusted
            return
        self._received = True
        self._last_read = self._loop.time()
        try:
            exchange.feed(data)
        except httptools.HttpParserUpgrade:
            self._finish(MalformedResponse("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._finish(MalformedResponse(f"malformed response ({exc})"))
        else:
            if exchange.complete or (exchange.oversize and not exchange.discard):
                self._finish(None)
            elif exchange.oversize:
                self._finish(None)  # a discarded body: stop reading, never reuse

    def eof_received(self) -> bool | None:
        exchange = self._exchange
        if exchange is not None and exchange.headers_done and not exchange.delimited:
            exchange.complete = True  # a body delimited by the connection's end
        self._lost()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()

    def _lost(self) -> None:
        self.closed = True
        exchange = self._exchange
        if exchange is not None and exchange.complete:
            self._finish(None)
        elif exchange is not None:
            stale = not self._received
            self._finish(Disconnected("the server closed the connection" + (" (stale)" * stale)))

    def _finish(self, error: Exception | None) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    async def exchange(
        self, head: bytes, body: bytes | None, exchange: _Exchange, read: float, deadline: float
    ) -> bool:
        """Send a request and parse its response into ``exchange``; False when nothing came back
        on a reused connection (stale: the caller may retry on a new one)."""
        assert self.transport is not None
        loop = self._loop
        self._exchange = exchange
        self._received = False
        self._last_read = loop.time()
        self._waiter = waiter = loop.create_future()
        self.transport.write(head + body if body else head)
        self._timer = loop.call_at(
            min(self._last_read + read, deadline), self._check_timeout, read, deadline
        )
        try:
            await waiter
        except Disconnected:
            if not self._received:
                return False
            raise
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            exchange.release()
            self._exchange = None
            self._waiter = None
        return True

    def _check_timeout(self, read: float, deadline: float) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        now = self._loop.time()
        due = min(self._last_read + read, deadline)
        if now >= due:
            self.close()
            waiter.set_exception(ReadTimedOut("timed out waiting for the response"))
            return
        self._timer = self._loop.call_at(due, self._check_timeout, read, deadline)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


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
        self._idle: dict[_Key, collections.deque[_Connection]] = {}
        self._closed = False

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
                if url.scheme not in _DEFAULT_PORTS or not url.host:
                    raise MalformedResponse(f"bad redirect location {str(url)!r}")
                if exchange.status == 303 or (exchange.status in (301, 302) and method == "POST"):
                    method, body = "GET", None
                    headers = {k: v for k, v in headers.items() if k != "Content-Type"}
                continue
            if exchange.oversize and not discard:
                raise TooLarge(f"more than {max_body} bytes")
            content = b"" if discard else b"".join(exchange.body)
            if exchange.content_encoding and not discard:
                content = _decode(content, exchange.content_encoding, max_body)
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
    ) -> _Exchange:
        scheme, host = url.scheme, url.host or ""
        port = url.port or _DEFAULT_PORTS.get(scheme, 80)
        key = (scheme, host, port)
        head = _head(method, url, headers, body)
        async with self._limit:
            for attempt in (0, 1):
                exchange = _Exchange(max_body, discard)
                connection = self._pooled(key) if attempt == 0 else None
                reused = connection is not None
                if connection is None:
                    connection = await self._connect(key, connect, deadline)
                try:
                    answered = await connection.exchange(head, body, exchange, read, deadline)
                except BaseException:
                    connection.close()
                    raise
                if not answered:
                    connection.close()
                    if reused:
                        continue
                    raise Disconnected("the server closed the connection without answering")
                reusable = exchange.keep_alive and exchange.complete and not exchange.oversize
                if reusable and not connection.closed:
                    connection.idle_since = self._loop.time()
                    self._idle.setdefault(key, collections.deque()).append(connection)
                else:
                    connection.close()
                return exchange
        raise AssertionError("unreachable")  # pragma: no cover

    def _pooled(self, key: _Key) -> _Connection | None:
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

    async def _connect(self, key: _Key, connect: float | None, deadline: float) -> _Connection:
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
                            lambda: _Connection(self._loop),
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
                infos = await self._loop.getaddrinfo(host, port, type=1)  # SOCK_STREAM
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
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()


def _is_literal(host: str) -> bool:
    if ":" in host:
        return True  # yarl gives IPv6 hosts without brackets
    parts = host.split(".")
    return len(parts) == 4 and all(part.isdigit() for part in parts)


def _head(method: str, url: URL, headers: dict[str, str], body: bytes | None) -> bytes:
    host = url.raw_host or ""
    if ":" in host:
        host = f"[{host}]"
    if url.explicit_port is not None and url.explicit_port != _DEFAULT_PORTS.get(url.scheme):
        host = f"{host}:{url.explicit_port}"
    lines = [f"{method} {url.raw_path_qs or '/'} HTTP/1.1", f"Host: {host}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    if url.user is not None:
        credentials = f"{url.user}:{url.password or ''}".encode()
        lines.append("Authorization: Basic " + base64.b64encode(credentials).decode("ascii"))
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    elif method == "POST":
        lines.append("Content-Length: 0")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def _decode(content: bytes, encoding: bytes, max_body: int) -> bytes:
    """Decode a compressed body; more than ``max_body`` decoded bytes is :class:`TooLarge`."""
    if encoding in (b"gzip", b"x-gzip", b"deflate"):
        try:
            decoded = zlib.decompressobj(47).decompress(content, max_body + 1)  # gzip or zlib
        except zlib.error as exc:
            if encoding != b"deflate":
                raise MalformedResponse(f"bad {encoding.decode()} body ({exc})") from exc
            try:
                decoded = zlib.decompressobj(-15).decompress(content, max_body + 1)  # raw
            except zlib.error as raw_exc:
                raise MalformedResponse(f"bad deflate body ({raw_exc})") from raw_exc
        if len(decoded) > max_body:
            raise TooLarge(f"more than {max_body} bytes once decoded")
        return decoded
    if encoding == b"identity":
        return content
    raise MalformedResponse(f"unsupported Content-Encoding {encoding.decode('latin-1')!r}")
