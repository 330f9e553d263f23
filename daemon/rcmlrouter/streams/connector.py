"""The WebSocket client of media streams: connecting to an agent, and the open socket.

aiohttp's WebSocket client, chosen by measurement on this workload (README, "Media streams":
aiohttp, ``websockets`` and ``picows`` at 200 streams × 50 messages/s each way). One
:class:`StreamConnector` per process holds one ``aiohttp.ClientSession`` whose resolver is the
webhook client's :class:`~rcmlrouter.httpclient.addresses.AddressBook`: every address is checked
against ``[webhooks] deny_networks`` after DNS resolution and the connection goes only to the
addresses checked. ``wss://`` verifies the certificate and host name (the system's CA store);
``ws://`` is refused unless ``[streams] allow_insecure``.

:class:`AgentSocket` never blocks its caller: :meth:`AgentSocket.send` queues (bounded; when a
slow agent lets it fill up, the oldest media messages are dropped, never marks, dtmf or stop) and
one writer task sends. :meth:`AgentSocket.receive` yields the agent's frames until the socket
closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Final, Literal

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from rcmlrouter.httpclient.addresses import AddressBook
from rcmlrouter.httpclient.failures import EgressDeniedError, HttpFailure

CONNECT_TIMEOUT_CODE: Final = 31901  # Stream - WebSocket - Connection Timeout
CONNECT_REFUSED_CODE: Final = 31902  # Stream - WebSocket - Connection Refused
HANDSHAKE_CODE: Final = 31920  # Stream - WebSocket - Handshake Error
CLOSE_CODE: Final = 31921  # Stream - WebSocket - Close Error (dropped mid-stream)
SCHEME_CODE: Final = 31922  # Stream - WebSocket - URL Schema Not Supported
URL_CODE: Final = 31923  # Stream - WebSocket - Malformed URL (or denied by deny_networks)
PROTOCOL_CODE: Final = 31924  # Stream - WebSocket - Protocol Error
CLOSE_WAIT: Final = 2.0  # seconds a closing handshake may take
_FAMILY: Final = {4: 2, 6: 10}  # AF_INET, AF_INET6 (Linux; only transports import socket)


class StreamConnectError(Exception):
    """The agent could not be reached; ``error_code`` is Twilio's (319xx)."""

    def __init__(self, message: str, error_code: int) -> None:
        self.error_code = error_code
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Frame:
    """One message from the agent: text (UTF-8 bytes) or ``binary``."""

    data: bytes
    binary: bool = False


@dataclass(frozen=True, slots=True)
class Closed:
    """How the socket ended: ``by_agent`` (a close frame from the agent or the connection
    dropped) with ``code``; ``error`` says what went wrong when it was not a clean close."""

    by_agent: bool
    code: int | None
    error: str | None = None


class _CheckedResolver(AbstractResolver):
    """aiohttp's resolver seam over the webhook client's deny-list-checked address book."""

    def __init__(self, book: AddressBook) -> None:
        self.book = book

    async def resolve(self, host: str, port: int = 0, family: object = 0) -> list[ResolveResult]:
        try:
            addresses = await self.book.addresses(host, port)
        except EgressDeniedError:
            raise
        except HttpFailure as exc:
            raise OSError(str(exc)) from exc
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=_FAMILY[ipaddress.ip_address(address.partition("%")[0]).version],
                proto=0,
                flags=0,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        return None


class StreamConnector:
    """Opens agent sockets for every stream of the process."""

    def __init__(
        self,
        book: AddressBook,
        *,
        allow_insecure: bool = False,
        connect_timeout: float = 5.0,
        max_message: int = 1 << 20,
        send_queue: int = 500,
    ) -> None:
        self.book = book
        self.allow_insecure = allow_insecure
        self.connect_timeout = connect_timeout
        self.max_message = max_message
        self.send_queue = send_queue
        self._session: aiohttp.ClientSession | None = None

    def check_url(self, url: str) -> None:
        """Refuse what may not be connected to: StreamConnectError (31923, 31922)."""
        try:
            parsed = URL(url)
        except ValueError as exc:
            raise StreamConnectError(f"malformed stream URL {url!r}", URL_CODE) from exc
        if parsed.scheme not in ("ws", "wss") or not parsed.host:
            raise StreamConnectError(f"not a ws:// or wss:// URL: {url!r}", URL_CODE)
        if parsed.scheme == "ws" and not self.allow_insecure:
            raise StreamConnectError(
                "ws:// (no TLS) is refused; use wss:// or set [streams] allow_insecure",
                SCHEME_CODE,
            )

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=_CheckedResolver(self.book), limit=0, use_dns_cache=False
            )
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def connect(self, url: str, headers: Mapping[str, str]) -> AgentSocket:
        """Connect and complete the handshake within ``connect_timeout``."""
        self.check_url(url)
        parsed = URL(url)
        try:
            async with asyncio.timeout(self.connect_timeout):
                # IP literals never reach the resolver: check them (and warm the cache) here
                await self.book.addresses(parsed.host or "", parsed.port or 443)
                ws = await self._client().ws_connect(
                    url,
                    headers=dict(headers),
                    max_msg_size=self.max_message,
                    autoping=True,
                    decode_text=False,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CLOSE_WAIT),
                )
        except TimeoutError as exc:
            raise StreamConnectError(
                f"no WebSocket connection within {self.connect_timeout} s", CONNECT_TIMEOUT_CODE
            ) from exc
        except EgressDeniedError as exc:
            raise StreamConnectError(str(exc), URL_CODE) from exc
        except HttpFailure as exc:  # the name does not resolve
            raise StreamConnectError(str(exc), CONNECT_REFUSED_CODE) from exc
        except aiohttp.WSServerHandshakeError as exc:
            raise StreamConnectError(
                f"WebSocket handshake failed: HTTP {exc.status}", HANDSHAKE_CODE
            ) from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            raise StreamConnectError(f"TLS certificate refused: {exc}", HANDSHAKE_CODE) from exc
        except (aiohttp.ClientError, OSError) as exc:
            if isinstance(exc.__cause__, EgressDeniedError):
                raise StreamConnectError(str(exc.__cause__), URL_CODE) from exc
            raise StreamConnectError(f"connection failed: {exc}", CONNECT_REFUSED_CODE) from exc
        return AgentSocket(ws, self.send_queue)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class AgentSocket:
    """One open stream socket: a bounded send queue with one writer task, and the frames in."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse[Literal[False]], limit: int) -> None:
        self.ws = ws
        self.limit = limit
        self.dropped = 0
        self.closing = False
        self._queue: deque[tuple[str, bool]] = deque()  # (text, droppable)
        self._wakeup: asyncio.Future[None] | None = None
        self._writer = asyncio.create_task(self._write())
        self._closed_by_us = False

    def send(self, text: str, *, droppable: bool = False) -> bool:
        """Queue ``text``; False when a media message had to be dropped to make room (or the
        socket is closing)."""
        if self.closing:
            return False
        queue = self._queue
        kept = True
        if len(queue) >= self.limit:
            kept = self._drop_oldest_media()
            if not kept and droppable:
                self.dropped += 1
                return False
        queue.append((text, droppable))
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)
        return kept

    def _drop_oldest_media(self) -> bool:
        for index, (_text, droppable) in enumerate(self._queue):
            if droppable:
                del self._queue[index]
                self.dropped += 1
                return False
        return True  # only control messages queued: keep them all (they are few)

    async def _write(self) -> None:
        queue, ws = self._queue, self.ws
        try:
            while True:
                while queue:
                    text, _droppable = queue.popleft()
                    await ws.send_str(text)
                if self.closing:
                    return
                self._wakeup = asyncio.get_running_loop().create_future()
                await self._wakeup
                self._wakeup = None
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            return  # the socket went away: receive() reports how

    async def receive(self) -> AsyncIterator[Frame]:
        """The agent's frames, until the socket closes (then :meth:`closed` says how)."""
        ws = self.ws
        while True:
            message = await ws.receive()
            kind = message.type
            if kind is aiohttp.WSMsgType.TEXT:
                data = message.data
                yield Frame(data if isinstance(data, bytes) else data.encode())
            elif kind is aiohttp.WSMsgType.BINARY:
                yield Frame(message.data, binary=True)
            else:  # CLOSE, CLOSING, CLOSED, ERROR
                return

    def closed(self) -> Closed:
        ws = self.ws
        exception = ws.exception()
        error = None
        if exception is not None:
            error = f"{type(exception).__name__}: {exception}"
        return Closed(not self._closed_by_us, ws.close_code, error)

    async def close(self, code: int = 1000) -> None:
        """Send what is queued (``stop`` last), then the closing handshake (bounded)."""
        if not self.closing:
            self.closing = True
            self._closed_by_us = True
            wakeup = self._wakeup
            if wakeup is not None and not wakeup.done():
                wakeup.set_result(None)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(CLOSE_WAIT):
                await asyncio.shield(self._writer)
        self._writer.cancel()
        with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
            await self.ws.close(code=code)

    def abort(self) -> None:
        """Drop the connection without a handshake (the call is gone)."""
        self._writer.cancel()
        self._closed_by_us = True
        self.closing = True
