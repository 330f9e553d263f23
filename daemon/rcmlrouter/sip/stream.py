"""One TCP or TLS connection of the SIP transports: framing by Content-Length, and the limits
that protect the listener (:class:`StreamLimits`: connections per source and in total, idle and
slowloris timeouts; ``sip/stream_limiter.py`` enforces them for the owner, ``Transports`` in
``sip/transport.py``). The sockets themselves are the event loop's; this module only speaks
``asyncio.Protocol``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol, cast

from rcmlrouter.errors import SipParseError
from rcmlrouter.sip.wire import frame_length

Source = tuple[str, str, int]  # (transport, host, port)


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Bounds on TCP/TLS connections (see the module docstring); 0 turns one off."""

    idle_timeout: float = 300.0
    header_timeout: float = 10.0
    max_connections: int = 4096
    max_per_source: int = 64


@dataclass(slots=True)
class StreamStats:
    connections: int = 0  # accepted connections open now
    refused: int = 0  # accepted and closed at once: over max_per_source or max_connections
    idle_closed: int = 0
    slow_closed: int = 0  # a partial message older than header_timeout
    framing_closed: int = 0  # unframeable: no or conflicting Content-Length, too large


class BadFrameSink(Protocol):
    def on_bad_message(self, data: bytes, source: Source, error: SipParseError) -> None: ...


class StreamOwner(Protocol):
    """What a connection needs from the transports that own it."""

    connections: dict[Source, StreamProtocol]
    stream_stats: StreamStats

    @property
    def receiver(self) -> BadFrameSink: ...

    def now(self) -> float: ...

    def admit(self, connection: StreamProtocol) -> bool: ...

    def release(self, connection: StreamProtocol) -> None: ...

    def deliver(self, data: bytes, source: Source, *, stream: bool) -> None: ...


class StreamProtocol(asyncio.Protocol):
    def __init__(self, owner: StreamOwner, kind: str = "tcp", *, inbound: bool = False) -> None:
        self.owner = owner
        self.kind = kind
        self.inbound = inbound
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.peer: Source = (kind, "", 0)
        self.last_active = 0.0
        self.partial_since = 0.0  # when the buffer last went from empty to holding bytes

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        peer = transport.get_extra_info("peername")
        self.peer = (self.kind, str(peer[0]), int(peer[1]))
        self.last_active = self.owner.now()
        if self.inbound and not self.owner.admit(self):
            self.transport.abort()
            return
        self.owner.connections[self.peer] = self

    def connection_lost(self, exc: Exception | None) -> None:
        if self.owner.connections.get(self.peer) is self:
            del self.owner.connections[self.peer]
            if self.inbound:
                self.owner.release(self)

    def data_received(self, data: bytes) -> None:
        self.last_active = now = self.owner.now()
        if not self.buffer:
            self.partial_since = now
        self.buffer += data
        if self._frames():  # a message ended in this chunk: what is left started now
            self.partial_since = now

    def _frames(self) -> bool:
        framed = False
        while self.buffer:
            stripped = len(self.buffer) - len(self.buffer.lstrip(b"\r\n"))
            del self.buffer[:stripped]
            try:
                size = frame_length(self.buffer)
            except SipParseError as exc:
                self.owner.stream_stats.framing_closed += 1
                head = bytes(self.buffer[: self.buffer.find(b"\r\n\r\n") + 1 or 2048])
                self.owner.receiver.on_bad_message(head, self.peer, exc)
                self.close()
                return framed
            if size is None:
                return framed
            frame = bytes(self.buffer[:size])
            del self.buffer[:size]
            framed = True
            self.owner.deliver(frame, self.peer, stream=True)
        return framed

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self.buffer.clear()
        if self.transport is not None:
            self.transport.close()


__all__ = ["Source", "StreamLimits", "StreamOwner", "StreamProtocol", "StreamStats"]
