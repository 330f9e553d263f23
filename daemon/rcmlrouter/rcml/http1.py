"""HTTP/1.1 on one connection, for :mod:`rcmlrouter.rcml.keepalive`: the request head, the
response parsed by ``httptools`` (llhttp), the asyncio protocol with its between-reads and total
timeouts, body decoding, and the failures the fetcher maps to Twilio error codes.

One :class:`Connection` carries one :class:`Exchange` at a time. A response body is complete at
its ``Content-Length``, at the chunked terminator, or (neither given) when the server closes the
connection; a body over ``max_body`` stops the exchange (and the connection is not reused). A
connection closed before the response is :class:`Disconnected` (:class:`ConnectionReset` after
a socket error); :attr:`Connection.received_nothing` then tells whether any byte came back.
"""

from __future__ import annotations

import asyncio
import base64
import zlib

import httptools
from yarl import URL

__all__ = [
    "DEFAULT_PORTS",
    "ConnectFailed",
    "ConnectTimedOut",
    "Connection",
    "ConnectionReset",
    "Disconnected",
    "Exchange",
    "HttpFailure",
    "MalformedResponse",
    "ReadTimedOut",
    "TlsFailed",
    "TooLarge",
    "TooManyRedirects",
    "decode_body",
    "request_head",
]

DEFAULT_PORTS = {"http": 80, "https": 443}


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


class ConnectionReset(Disconnected):
    """The connection was reset (RST) or failed with a socket error before the response was
    complete: a connection failure, as aiohttp reports it (11205), not a protocol one."""


class MalformedResponse(HttpFailure):
    """The bytes received are not an HTTP/1.x response."""


class TlsFailed(HttpFailure):
    """The TLS handshake failed (certificate, protocol)."""


class TooManyRedirects(HttpFailure):
    """More than ``max_redirects`` redirects."""


class TooLarge(HttpFailure):
    """The body is larger than ``max_body`` (only raised when the body is kept)."""


class Exchange:
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


class Connection(asyncio.Protocol):
    """One pooled connection; one exchange at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._exchange: Exchange | None = None
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
        self._lost(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(exc)

    def _lost(self, exc: Exception | None) -> None:
        self.closed = True
        exchange = self._exchange
        if exchange is not None and exchange.complete:
            self._finish(None)
        elif exchange is not None and isinstance(exc, OSError):
            self._finish(ConnectionReset(f"connection error ({exc!r})"))
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
        self, head: bytes, body: bytes | None, exchange: Exchange, read: float, deadline: float
    ) -> None:
        """Send a request and parse its response into ``exchange``. Raises an
        :class:`HttpFailure`; after a :class:`Disconnected`, :attr:`received_nothing` tells
        whether any byte came back (on a reused connection: stale, worth sending again)."""
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
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            exchange.release()
            self._exchange = None
            self._waiter = None

    @property
    def received_nothing(self) -> bool:
        """No byte of the last exchange's response arrived."""
        return not self._received

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


def request_head(method: str, url: URL, headers: dict[str, str], body: bytes | None) -> bytes:
    host = url.raw_host or ""
    if ":" in host:
        host = f"[{host}]"
    if url.explicit_port is not None and url.explicit_port != DEFAULT_PORTS.get(url.scheme):
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


def decode_body(content: bytes, encoding: bytes, max_body: int) -> bytes:
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
