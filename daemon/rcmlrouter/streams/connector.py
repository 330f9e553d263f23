"""The WebSocket client of media streams: connecting to an agent, and the open socket.

picows, chosen by measurement on this workload (README, "Media streams": aiohttp's client,
``websockets`` and ``picows`` at 200 streams × 50 messages/s each way; picows costs about half
the CPU of aiohttp's client and has no task per socket). :class:`StreamConnector` connects
through :func:`~rcmlrouter.streams.tcp.connect_checked`: every address is checked against
``[webhooks] deny_networks`` after DNS resolution, and the connection goes only to the addresses
checked; redirects are not followed. ``wss://`` verifies the certificate and the host name (the
system's CA store); ``ws://`` is refused unless ``[streams] allow_insecure``.

:class:`AgentSocket` never blocks its caller: :meth:`AgentSocket.send` writes at once while the
connection takes it and queues while it pushes back (bounded; when a slow agent lets the queue
fill up, the oldest media messages are dropped, never marks, dtmf or stop). The agent's messages
(fragments reassembled, at most ``max_message`` bytes: a larger one closes the socket with
1009) go to :attr:`AgentSocket.on_frame`; :attr:`AgentSocket.closed` resolves when the
connection ends.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from picows import (
    WSCloseCode,
    WSFrame,
    WSHandshakeError,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_connect,
)
from yarl import URL

from rcmlrouter.httpclient.addresses import AddressBook
from rcmlrouter.httpclient.failures import EgressDeniedError, HttpFailure
from rcmlrouter.streams.tcp import connect_checked

CONNECT_TIMEOUT_CODE: Final = 31901  # Stream - WebSocket - Connection Timeout
CONNECT_REFUSED_CODE: Final = 31902  # Stream - WebSocket - Connection Refused
HANDSHAKE_CODE: Final = 31920  # Stream - WebSocket - Handshake Error
CLOSE_CODE: Final = 31921  # Stream - WebSocket - Close Error (dropped mid-stream)
SCHEME_CODE: Final = 31922  # Stream - WebSocket - URL Schema Not Supported
URL_CODE: Final = 31923  # Stream - WebSocket - Malformed URL (or denied by deny_networks)
PROTOCOL_CODE: Final = 31924  # Stream - WebSocket - Protocol Error
CLOSE_WAIT: Final = 2.0  # seconds a closing handshake may take
PING_IDLE: Final = 10.0  # seconds without a frame from the agent before we ping it
PING_REPLY: Final = 10.0  # seconds the pong may take; then the socket counts as dropped
TOO_BIG: Final = 1009  # close code: message too big


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
        tls: ssl.SSLContext | None = None,
        ping_idle: float = PING_IDLE,
        ping_reply: float = PING_REPLY,
    ) -> None:
        self.book = book
        self.allow_insecure = allow_insecure
        self.connect_timeout = connect_timeout
        self.max_message = max_message
        self.send_queue = send_queue
        # verifies the chain and the host name (the system's CAs unless ``tls`` is given)
        self._tls = tls or ssl.create_default_context()
        self.ping_idle, self.ping_reply = ping_idle, ping_reply

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

    async def connect(
        self, url: str, headers: Mapping[str, str], on_frame: Callable[[Frame], None]
    ) -> AgentSocket:
        """Connect and complete the handshake within ``connect_timeout`` (StreamConnectError);
        the agent's messages go to ``on_frame`` from the first one on."""
        self.check_url(url)
        parsed = URL(url)
        host, port = parsed.host or "", parsed.port or (443 if parsed.scheme == "wss" else 80)
        agent = AgentSocket(self.send_queue, self.max_message, on_frame)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await ws_connect(
                    lambda: agent,
                    url,
                    ssl_context=self._tls if parsed.scheme == "wss" else None,
                    websocket_handshake_timeout=self.connect_timeout,
                    max_frame_size=max(self.max_message, 1 << 16),
                    extra_headers=dict(headers),
                    max_redirects=0,
                    socket_factory=lambda _url: connect_checked(self.book, host, port),
                    logger_name="rcmlrouter.streams.picows",
                    # a connection that died silently (no FIN: a crashed host, a partition)
                    # is found within PING_IDLE + PING_REPLY and ends as a dropped socket
                    enable_auto_ping=True,
                    auto_ping_idle_timeout=self.ping_idle,
                    auto_ping_reply_timeout=self.ping_reply,
                )
        except TimeoutError as exc:
            raise StreamConnectError(
                f"no WebSocket connection within {self.connect_timeout} s", CONNECT_TIMEOUT_CODE
            ) from exc
        except EgressDeniedError as exc:
            raise StreamConnectError(str(exc), URL_CODE) from exc
        except WSHandshakeError as exc:
            status = exc.response.status if exc.response is not None else None
            raise StreamConnectError(
                f"WebSocket handshake failed: HTTP {status or '?'} ({exc})", HANDSHAKE_CODE
            ) from exc
        except ssl.SSLError as exc:
            raise StreamConnectError(f"TLS failed: {exc}", HANDSHAKE_CODE) from exc
        except (HttpFailure, OSError) as exc:
            raise StreamConnectError(f"connection failed: {exc}", CONNECT_REFUSED_CODE) from exc
        return agent

    async def close(self) -> None:
        """Nothing is pooled: each stream owns its connection."""


class AgentSocket(WSListener):
    """One stream's connection (picows calls the ``on_ws_*`` methods)."""

    def __init__(self, limit: int, max_message: int, on_frame: Callable[[Frame], None]) -> None:
        super().__init__()
        self.limit = limit
        self.max_message = max_message
        self.dropped = 0
        self.closing = False
        self.too_big = False
        self.on_frame = on_frame
        self.transport: WSTransport | None = None
        self.closed: asyncio.Future[Closed] = asyncio.get_running_loop().create_future()
        self._queue: deque[tuple[bytes, bool]] = deque()  # (message, droppable) while paused
        self._paused = False
        self._parts: bytearray | None = None
        self._parts_binary = False
        self._agent_code: int | None = None

    # -- sending --------------------------------------------------------------------------

    def send(self, text: str, *, droppable: bool = False) -> bool:
        """Send ``text`` now, or queue it while the connection pushes back; False when a media
        message had to be dropped (or the socket is closing)."""
        transport = self.transport
        if self.closing or transport is None or transport.is_disconnected:
            return False
        data = text.encode()
        if not self._paused and not self._queue:
            transport.send(WSMsgType.TEXT, data)
            return True
        kept = True
        if len(self._queue) >= self.limit:
            kept = self._drop_oldest_media()
            if not kept and droppable:
                self.dropped += 1
                return False
        self._queue.append((data, droppable))
        return kept

    def _drop_oldest_media(self) -> bool:
        for index, (_data, droppable) in enumerate(self._queue):
            if droppable:
                del self._queue[index]
                self.dropped += 1
                return False
        return True  # only control messages queued: keep them all (they are few)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        transport, queue = self.transport, self._queue
        while queue and not self._paused and transport is not None:
            transport.send(WSMsgType.TEXT, queue.popleft()[0])

    # -- receiving ------------------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
            if frame.fin and self._parts is None:
                if frame.payload_size > self.max_message:
                    self._refuse_too_big(transport)
                else:
                    self.on_frame(Frame(frame.get_payload_as_bytes(), kind is WSMsgType.BINARY))
                return
            self._parts, self._parts_binary = bytearray(), kind is WSMsgType.BINARY
        elif kind is WSMsgType.CLOSE:
            self._agent_code = frame.get_close_code().value
            if not transport.is_close_frame_sent:
                transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        elif kind is not WSMsgType.CONTINUATION or self._parts is None:
            return  # PING (picows answers it), PONG, a stray continuation
        self._parts += frame.get_payload_as_memoryview()
        if len(self._parts) > self.max_message:
            self._refuse_too_big(transport)
        elif frame.fin:
            data, self._parts = bytes(self._parts), None
            self.on_frame(Frame(data, self._parts_binary))

    def _refuse_too_big(self, transport: WSTransport) -> None:
        self.too_big = True
        self._parts = None
        transport.send_close(WSCloseCode.MESSAGE_TOO_BIG)
        transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.closed.done():
            return
        code = TOO_BIG if self.too_big else self._agent_code
        error = None if code is not None else "no close frame"
        self.closed.set_result(Closed(not self.closing, code, error))

    # -- closing --------------------------------------------------------------------------

    async def close(self, code: int = 1000) -> None:
        """Send what is queued (``stop`` last; media dropped), then the closing handshake
        (bounded by :data:`CLOSE_WAIT`)."""
        transport = self.transport
        if self.closing or transport is None:
            return
        self.closing = True
        for data, droppable in self._queue:
            if not droppable and not transport.is_disconnected:
                transport.send(WSMsgType.TEXT, data)
        self._queue.clear()
        if transport.is_disconnected:
            return
        transport.send_close(WSCloseCode(code))
        try:
            async with asyncio.timeout(CLOSE_WAIT):
                await transport.wait_disconnected()
        except TimeoutError:
            transport.disconnect(graceful=False)

    def abort(self) -> None:
        """Drop the connection without a handshake."""
        self.closing = True
        if self.transport is not None:
            self.transport.disconnect(graceful=False)
