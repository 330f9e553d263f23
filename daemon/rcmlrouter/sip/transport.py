"""UDP and TCP transports: the only socket code of the SIP stack.

Incoming bytes are framed (TCP: by Content-Length), parsed, and handed to a
:class:`MessageReceiver` with their source ``(transport, host, port)``. Incoming requests get
``received``/``rport`` on their top Via (RFC 3581). Works on uvloop and the default loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from typing import Protocol, cast

from rcmlrouter.errors import SipError, SipParseError
from rcmlrouter.sip.message import SipMessage, SipRequest, SipResponse, frame_length, parse_message
from rcmlrouter.sip.uri import Via, bare_host, format_host, parse_hostport

Source = tuple[str, str, int]
TRANSPORTS = ("udp", "tcp")


class MessageReceiver(Protocol):
    def shed(self, data: bytes, source: Source) -> bool:
        """Before parsing: True when the receiver dealt with ``data`` itself (overload)."""
        ...

    def on_message(self, message: SipRequest | SipResponse, source: Source) -> None: ...

    def on_bad_message(self, data: bytes, source: Source, error: SipParseError) -> None: ...

    def on_send_failed(self, destination: Source) -> None: ...


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


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: Transports) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if data.strip(b"\r\n\x00 ") == b"":
            return  # keep-alive
        self.owner.deliver(data, ("udp", str(addr[0]), int(str(addr[1]))), stream=False)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors on UDP are not actionable per datagram


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, owner: Transports) -> None:
        self.owner = owner
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.peer: Source = ("tcp", "", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        peer = transport.get_extra_info("peername")
        self.peer = ("tcp", str(peer[0]), int(peer[1]))
        self.owner.connections[self.peer] = self

    def connection_lost(self, exc: Exception | None) -> None:
        if self.owner.connections.get(self.peer) is self:
            del self.owner.connections[self.peer]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.buffer:
            stripped = len(self.buffer) - len(self.buffer.lstrip(b"\r\n"))
            del self.buffer[:stripped]
            try:
                size = frame_length(self.buffer)
            except SipParseError as exc:
                self.owner.receiver.on_bad_message(bytes(self.buffer[:2048]), self.peer, exc)
                self.close()
                return
            if size is None:
                return
            frame = bytes(self.buffer[:size])
            del self.buffer[:size]
            self.owner.deliver(frame, self.peer, stream=True)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self.buffer.clear()
        if self.transport is not None:
            self.transport.close()


class Transports:
    """Every listening socket and TCP connection of one endpoint."""

    def __init__(self, receiver: MessageReceiver, advertise: str | None = None) -> None:
        self.receiver = receiver
        self.advertise = advertise  # host for Via/Contact instead of the bound address
        self.connections: dict[Source, _TcpProtocol] = {}
        self.addresses: list[Source] = []
        self._udp: dict[int, asyncio.DatagramTransport] = {}
        self._servers: list[asyncio.Server] = []
        self._connecting: dict[Source, list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, listen: list[str]) -> None:
        loop = asyncio.get_running_loop()
        for spec in listen:
            transport, host, port = parse_listen(spec)
            try:
                if transport == "udp":
                    udp, _ = await loop.create_datagram_endpoint(
                        lambda: _UdpProtocol(self), local_addr=(host, port), family=_family(host)
                    )
                    self._udp[_family(host)] = udp
                    _enlarge_buffers(udp)
                    bound = udp.get_extra_info("sockname")
                else:
                    server = await loop.create_server(lambda: _TcpProtocol(self), host, port)
                    self._servers.append(server)
                    bound = server.sockets[0].getsockname()
            except OSError as exc:
                raise SipError(f"cannot listen on {spec}: {exc}") from exc
            self.addresses.append((transport, host, int(bound[1])))

    async def stop(self) -> None:
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

    def send(self, message: SipMessage, destination: Source) -> None:
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
        key: Source = ("tcp", host, port)
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
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _TcpProtocol(self), key[1], key[2]), 10.0
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


__all__ = ["MessageReceiver", "SipResponse", "Source", "Transports", "parse_listen", "via_value"]
