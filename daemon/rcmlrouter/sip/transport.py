"""UDP and TCP transports: the only socket code of the SIP stack.

Incoming bytes are framed (TCP: by Content-Length), parsed, and handed to a
:class:`MessageReceiver` with their source ``(transport, host, port)``. Incoming requests get
``received``/``rport`` on their top Via (RFC 3581). Works on uvloop and the default loop.

TCP and TLS (``tls:HOST:PORT``, an ``ssl.SSLContext`` from :mod:`rcmlrouter.sip.tls`) share one
stream protocol (``sip/stream.py``). :class:`StreamLimits` bounds them: accepted connections per
source address and in total (over either: closed at once), a connection idle for
``idle_timeout`` seconds is closed unless a call still uses it, and one holding a partial
message for ``header_timeout`` seconds (slowloris) is closed. A closed accepted connection is
reported to the receiver (``on_connection_closed``).

Transport errors reach the receiver as ``on_send_failed(destination)`` (its client transactions
to there fail at once, RFC 3261 §18.4): a TCP/TLS connection that cannot be made, and on Linux an
ICMP "port / host / network unreachable" for a UDP datagram we sent (``IP_RECVERR``: the kernel
queues the error with the datagram's destination; see ``sip/icmp.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import sys
from collections.abc import Callable
from typing import Protocol

from rcmlrouter.errors import SipError, SipParseError
from rcmlrouter.sip.icmp import recverr_option, unreachable_error
from rcmlrouter.sip.message import SentResponse, SipMessage, SipRequest, SipResponse
from rcmlrouter.sip.stream import Source, StreamLimits, StreamProtocol, StreamStats
from rcmlrouter.sip.uri import Via, bare_host, format_host, parse_hostport
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


def stamp_received(request: SipRequest, host: str, port: int) -> None:
    """RFC 3581: add ``received`` (and fill ``rport``) on the top Via."""
    via = request.top_via
    rport_asked = "rport" in via.params
    if bare_host(via.host) == host and not rport_asked:
        return  # nothing to add: the Via (and every memoised parse) stays as it is
    params = dict(via.params)
    params["received"] = host
    if rport_asked:
        params["rport"] = str(port)
    for index, (name, _) in enumerate(request.headers):
        if name == "Via":
            request.headers[index] = ("Via", str(Via(via.transport, via.host, via.port, params)))
            return


UDP_BUFFER_BYTES = 4 * 1024 * 1024
ERROR_QUEUE_READS = 64  # ICMP reports read per wake-up (the kernel caps the queue anyway)
SO_MEMINFO = 55  # Linux: struct of u32; [0] is the receive queue's allocated bytes


def _enlarge_buffers(udp: asyncio.DatagramTransport) -> None:
    """Bursts of INVITEs overflow the default receive buffer; ask for more (capped by the
    kernel's rmem_max/wmem_max)."""
    sock = udp.get_extra_info("socket")
    if sock is None:
        return
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER_BYTES)


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _udp_socket(host: str, port: int) -> socket.socket:
    """A bound, non-blocking UDP socket; on Linux with its ICMP error queue on (sip/icmp.py)."""
    sock = socket.socket(_family(host), socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, port))
        if sys.platform == "linux":
            sock.setsockopt(*recverr_option(_family(host) == socket.AF_INET6), 1)
    except OSError:
        sock.close()
        raise
    return sock


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: Transports, sock: socket.socket) -> None:
        self.owner = owner
        self.sock = sock

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if data.strip(b"\r\n\x00 ") == b"":
            return  # keep-alive
        self.owner.deliver(data, ("udp", str(addr[0]), int(str(addr[1]))), stream=False)

    def error_received(self, exc: Exception) -> None:
        """A queued ICMP error surfaced (asyncio and uvloop both report it here): read the
        queue, which also stops the socket polling as in error, and fail the transactions to
        each unreachable destination (RFC 3261 §18.4)."""
        for _ in range(ERROR_QUEUE_READS):
            try:
                _, ancillary, _, address = self.sock.recvmsg(1, 1024, socket.MSG_ERRQUEUE)
            except OSError:  # empty (EAGAIN), or no error queue on this platform
                return
            if unreachable_error(ancillary) is not None and address:
                self.owner.receiver.on_send_failed(("udp", str(address[0]), int(address[1])))


class Transports:
    """Every listening socket and TCP connection of one endpoint."""

    def __init__(self, receiver: MessageReceiver, advertise: str | None = None) -> None:
        self.receiver = receiver
        self.advertise = advertise  # host for Via/Contact instead of the bound address
        self.connections: dict[Source, StreamProtocol] = {}
        self.addresses: list[Source] = []
        self._udp: dict[int, asyncio.DatagramTransport] = {}
        self._servers: list[asyncio.Server] = []
        self._connecting: dict[Source, list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # set before start(): a pre-parse hook (True: handled, e.g. the source guard),
        # connection limits, TLS contexts for tls: listeners and connections we open
        self.screen: Callable[[bytes, Source], bool] | None = None
        self.limits = StreamLimits()
        self.tls_server: ssl.SSLContext | None = None
        self.tls_client: ssl.SSLContext | None = None
        self.stream_stats = StreamStats()
        self._per_host: dict[str, int] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def admit(self, connection: StreamProtocol) -> bool:
        """An accepted connection: within max_connections and max_per_source?"""
        host = connection.peer[1]
        count = self._per_host.get(host, 0)
        limits, stats = self.limits, self.stream_stats
        if (limits.max_per_source and count >= limits.max_per_source) or (
            limits.max_connections and stats.connections >= limits.max_connections
        ):
            stats.refused += 1
            return False
        self._per_host[host] = count + 1
        stats.connections += 1
        return True

    def release(self, connection: StreamProtocol) -> None:
        host = connection.peer[1]
        count = self._per_host.get(host, 1) - 1
        if count > 0:
            self._per_host[host] = count
        else:
            self._per_host.pop(host, None)
        self.stream_stats.connections -= 1
        self.receiver.on_connection_closed(connection.peer)

    def _sweep(self) -> None:
        """Close idle connections (unless a call uses them) and slowloris ones."""
        now, limits, stats = self.now(), self.limits, self.stream_stats
        for connection in list(self.connections.values()):
            if (
                limits.header_timeout
                and connection.buffer
                and now - connection.partial_since > limits.header_timeout
            ):
                stats.slow_closed += 1
                connection.close()
            elif (
                limits.idle_timeout
                and now - connection.last_active > limits.idle_timeout
                and not (connection.inbound and self.receiver.connection_in_use(connection.peer))
            ):
                stats.idle_closed += 1
                connection.close()
        self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        timeouts = [t for t in (self.limits.idle_timeout, self.limits.header_timeout) if t > 0]
        if timeouts:
            interval = min(1.0, max(0.05, min(timeouts) / 4))
            self._sweeper = asyncio.get_running_loop().call_later(interval, self._sweep)

    async def start(self, listen: list[str]) -> None:
        loop = asyncio.get_running_loop()
        self._schedule_sweep()
        for spec in listen:
            transport, host, port = parse_listen(spec)
            try:
                if transport == "udp":
                    sock = _udp_socket(host, port)
                    udp, _ = await loop.create_datagram_endpoint(
                        functools.partial(_UdpProtocol, self, sock),
                        sock=sock,
                    )
                    self._udp[_family(host)] = udp
                    _enlarge_buffers(udp)
                    bound = udp.get_extra_info("sockname")
                else:
                    server = await loop.create_server(
                        functools.partial(StreamProtocol, self, transport, inbound=True),
                        host,
                        port,
                        ssl=self._server_context(transport, spec),
                    )
                    self._servers.append(server)
                    bound = server.sockets[0].getsockname()
            except OSError as exc:
                raise SipError(f"cannot listen on {spec}: {exc}") from exc
            self.addresses.append((transport, host, int(bound[1])))

    def _server_context(self, transport: str, spec: str) -> ssl.SSLContext | None:
        if transport != "tls":
            return None
        if self.tls_server is None:
            raise SipError(f"{spec}: a tls listener needs a certificate (sip.tls_cert)")
        return self.tls_server

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for udp in self._udp.values():
            udp.close()
        for server in self._servers:
            server.close()
        for connection in list(self.connections.values()):
            connection.close()
        for server in self._servers:
            await server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        self._udp.clear()
        self._servers.clear()

    def udp_backlog(self) -> int:
        """Bytes waiting in the UDP sockets' receive buffers (Linux ``SO_MEMINFO``; 0 where
        the kernel cannot tell)."""
        queued = 0
        for udp in self._udp.values():
            sock = udp.get_extra_info("socket")
            if sock is None:
                continue
            try:
                queued += int.from_bytes(sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 36)[:4],
                                         sys.byteorder)  # fmt: skip
            except OSError:
                return 0
        return queued

    def local_address(self, transport: str, peer_host: str) -> tuple[str, int]:
        """Our (host, port) to put in Via/Contact for traffic to ``peer_host``."""
        family = _family(peer_host)
        fallback: tuple[str, int] | None = None
        for kind, host, port in self.addresses:
            if kind == transport:
                if self.advertise:
                    return self.advertise, port
                if _family(host) == family:
                    return host, port
                fallback = fallback or (host, port)
        if fallback is None:
            raise SipError(f"no {transport} listener", sip_status=503)
        return fallback

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
            udp = self._udp.get(_family(host)) or next(iter(self._udp.values()), None)
            if udp is None or udp.is_closing():
                self.receiver.on_send_failed(destination)
                return
            udp.sendto(data, (host, port))
            return
        key: Source = ("tls" if transport == "tls" else "tcp", host, port)
        connection = self.connections.get(key)
        if connection is not None:
            connection.write(data)
        elif key in self._connecting:
            self._connecting[key].append(data)
        else:
            self._connecting[key] = [data]
            task = asyncio.get_running_loop().create_task(self._connect(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _connect(self, key: Source) -> None:
        loop = asyncio.get_running_loop()
        tls = key[0] == "tls"
        if tls and self.tls_client is None:
            self.tls_client = ssl.create_default_context()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(
                    lambda: StreamProtocol(self, key[0]),
                    key[1],
                    key[2],
                    ssl=self.tls_client if tls else None,
                ),
                10.0,
            )
        except (OSError, TimeoutError):
            self._connecting.pop(key, None)
            self.receiver.on_send_failed(key)
            return
        self.connections[key] = protocol
        for data in self._connecting.pop(key, []):
            protocol.write(data)


def via_value(transport: str, host: str, port: int, branch: str) -> str:
    return f"SIP/2.0/{transport.upper()} {format_host(host)}:{port};branch={branch};rport"


__all__ = [
    "MessageReceiver",
    "SipResponse",
    "Source",
    "StreamLimits",
    "StreamProtocol",
    "StreamStats",
    "Transports",
    "parse_listen",
    "via_value",
]
