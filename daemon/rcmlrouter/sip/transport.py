"""The SIP transports: listeners (UDP, TCP, TLS), the way in and the way out of every message.

Incoming bytes are framed (TCP: by Content-Length, ``sip/stream.py``), parsed, and handed to a
:class:`MessageReceiver` with their source ``(transport, host, port)``; incoming requests get
``received``/``rport`` on their top Via (RFC 3581, ``sip/via.py``). Outgoing messages go out on
the UDP socket of the destination's family (``sip/udp.py``), on the open TCP/TLS connection to
the destination, or on one opened for them (``sip/connector.py``). Works on uvloop and the
default loop. The socket code of the SIP stack is here and in those two modules only.

TCP and TLS (``tls:HOST:PORT``, an ``ssl.SSLContext`` from :mod:`rcmlrouter.sip.tls`) share one
stream protocol (``sip/stream.py``); accepted connections are bounded by :class:`StreamLimits`
(``sip/stream_limiter.py``). A closed accepted connection is reported to the receiver
(``on_connection_closed``).

Transport errors reach the receiver as ``on_send_failed(destination)`` (its client transactions
to there fail at once, RFC 3261 §18.4): a TCP/TLS connection that cannot be made, and on Linux an
ICMP "port / host / network unreachable" for a UDP datagram we sent (``sip/udp.py``).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Callable
from typing import Protocol

from rcmlrouter.errors import SipError, SipParseError
from rcmlrouter.sip.connector import Connector
from rcmlrouter.sip.message import SentResponse, SipMessage, SipRequest, SipResponse
from rcmlrouter.sip.stream import Source, StreamLimits, StreamProtocol, StreamStats
from rcmlrouter.sip.stream_limiter import StreamLimiter
from rcmlrouter.sip.udp import UdpSockets, family
from rcmlrouter.sip.uri import bare_host, parse_hostport
from rcmlrouter.sip.via import stamp_received
from rcmlrouter.sip.wire import parse_message

TRANSPORTS = ("udp", "tcp", "tls")


class MessageReceiver(Protocol):
    def shed(self, data: bytes, source: Source) -> bool:
        """Before parsing: True when the receiver dealt with ``data`` itself (overload)."""
        ...

    def on_message(self, message: SipRequest | SipResponse, source: Source) -> None: ...

    def on_bad_message(self, data: bytes, source: Source, error: SipParseError) -> None: ...

    def on_send_failed(self, destination: Source) -> None: ...

    def on_connection_closed(self, source: Source) -> None:
        """An accepted TCP/TLS connection is gone (the peer, a limit or an error closed it)."""
        ...

    def connection_in_use(self, source: Source) -> bool:
        """True while a call needs the connection ``source`` (no idle close)."""
        ...


def parse_listen(spec: str) -> Source:
    """``udp:127.0.0.1:5060`` / ``tcp:[::1]:5060`` → ("udp", "127.0.0.1", 5060)."""
    transport, _, hostport = spec.partition(":")
    transport = transport.lower()
    zero_port = hostport.endswith(":0")
    try:
        host, port = parse_hostport(hostport[:-2] if zero_port else hostport)
    except SipParseError as exc:
        raise SipError(f"bad SIP listen address {spec!r}") from exc
    if transport not in TRANSPORTS:
        raise SipError(f"unsupported SIP transport in {spec!r}")
    if zero_port:
        port = 0
    return transport, bare_host(host), port if port is not None else 5060


class Transports:
    """Every listening socket and TCP/TLS connection of one endpoint."""

    def __init__(self, advertise: str | None = None) -> None:
        # who gets what arrives: set by the owner right after (it needs these transports)
        self.receiver: MessageReceiver
        self.advertise = advertise  # host for Via/Contact instead of the bound address
        self.connections: dict[Source, StreamProtocol] = {}
        self.addresses: list[Source] = []
        self.udp = UdpSockets()
        self._servers: list[asyncio.Server] = []
        # set before start(): a pre-parse hook (True: handled, e.g. the source guard),
        # connection limits (``limiter.limits``), TLS contexts for tls: listeners and for
        # connections we open (``connector.tls_client``)
        self.screen: Callable[[bytes, Source], bool] | None = None
        self.limiter = StreamLimiter()
        self.stream_stats: StreamStats = self.limiter.stats
        self.tls_server: ssl.SSLContext | None = None
        self.connector = Connector(self, self._send_failed)

    # --- StreamOwner: what a TCP/TLS connection asks of us ---------------------------------

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def admit(self, connection: StreamProtocol) -> bool:
        return self.limiter.admit(connection)

    def release(self, connection: StreamProtocol) -> None:
        self.limiter.release(connection)
        self.receiver.on_connection_closed(connection.peer)

    # --- listeners -------------------------------------------------------------------------

    async def start(self, listen: list[str]) -> None:
        loop = asyncio.get_running_loop()
        self.limiter.start(self.connections, self.receiver.connection_in_use)
        for spec in listen:
            transport, host, port = parse_listen(spec)
            try:
                if transport == "udp":
                    bound = await self.udp.listen(self, host, port)
                else:
                    server = await loop.create_server(
                        functools.partial(StreamProtocol, self, transport, inbound=True),
                        host,
                        port,
                        ssl=self._server_context(transport, spec),
                    )
                    self._servers.append(server)
                    bound = int(server.sockets[0].getsockname()[1])
            except OSError as exc:
                raise SipError(f"cannot listen on {spec}: {exc}") from exc
            self.addresses.append((transport, host, bound))

    def _server_context(self, transport: str, spec: str) -> ssl.SSLContext | None:
        if transport != "tls":
            return None
        if self.tls_server is None:
            raise SipError(f"{spec}: a tls listener needs a certificate (sip.tls_cert)")
        return self.tls_server

    async def stop(self) -> None:
        self.limiter.stop()
        self.udp.close()
        for server in self._servers:
            server.close()
        for connection in list(self.connections.values()):
            connection.close()
        for server in self._servers:
            await server.wait_closed()
        self.connector.stop()
        self._servers.clear()

    def udp_backlog(self) -> int:
        """Bytes waiting in the UDP receive buffers (the overload signal's second measure)."""
        return self.udp.backlog()

    def local_address(self, transport: str, peer_host: str) -> tuple[str, int]:
        """Our (host, port) to put in Via/Contact for traffic to ``peer_host``."""
        peer_family = family(peer_host)
        fallback: tuple[str, int] | None = None
        for kind, host, port in self.addresses:
            if kind == transport:
                if self.advertise:
                    return self.advertise, port
                if family(host) == peer_family:
                    return host, port
                fallback = fallback or (host, port)
        if fallback is None:
            raise SipError(f"no {transport} listener", sip_status=503)
        return fallback

    # --- in and out ------------------------------------------------------------------------

    def deliver(self, data: bytes, source: Source, *, stream: bool) -> None:
        if self.screen is not None and self.screen(data, source):
            return
        if self.receiver.shed(data, source):
            return
        try:
            message = parse_message(data, stream=stream)
            if isinstance(message, SipRequest):
                stamp_received(message, source[1], source[2])
        except SipParseError as exc:
            self.receiver.on_bad_message(data, source, exc)
            return
        self.receiver.on_message(message, source)

    def send(self, message: SipMessage | SentResponse, destination: Source) -> None:
        self.send_bytes(message.serialize(), destination)

    def send_bytes(self, data: bytes, destination: Source) -> None:
        transport, host, port = destination
        host = bare_host(host)
        if transport == "udp":
            udp = self.udp.for_host(host)
            if udp is None or udp.is_closing():
                self.receiver.on_send_failed(destination)
                return
            udp.sendto(data, (host, port))
            return
        key: Source = ("tls" if transport == "tls" else "tcp", host, port)
        connection = self.connections.get(key)
        if connection is not None:
            connection.write(data)
        else:
            self.connector.send(data, key)

    def _send_failed(self, destination: Source) -> None:
        self.receiver.on_send_failed(destination)


__all__ = [
    "TRANSPORTS",
    "MessageReceiver",
    "SipResponse",
    "Source",
    "StreamLimits",
    "StreamProtocol",
    "StreamStats",
    "Transports",
    "parse_listen",
]
