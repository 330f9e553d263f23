"""RTP (RFC 3550): header pack/parse and the per-call UDP endpoint (with symmetric RTP).

Besides the SIP transports (``sip/transport.py``, ``sip/udp.py``) this is the only module that owns
sockets. Each call gets one :class:`RtpEndpoint` bound to an even port from the configured range;
the odd port above it is bound too and kept (RTCP reserved; incoming RTCP is read and dropped).
:func:`bind_pair` binds the two sockets synchronously (a few microseconds, so the port pool can try
port after port without a trip through the event loop, and the error keeps its errno: uvloop's
``create_datagram_endpoint(local_addr=…)`` reports a failed ``socket()`` for lack of file
descriptors as "could not bind"); :meth:`RtpEndpoint.attach` then hands them to the loop.

Symmetric RTP: until the first valid RTP packet arrives we send to the address in the remote SDP;
then we latch to that packet's source address (NAT-friendly) and keep it until the SDP changes.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

RTP_VERSION: Final = 2
HEADER = struct.Struct("!BBHII")
HEADER_SIZE: Final = HEADER.size


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One parsed RTP packet (CSRCs and header extensions are skipped, padding removed)."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: bytes


def pack_header(
    payload_type: int, sequence: int, timestamp: int, ssrc: int, marker: bool = False
) -> bytes:
    """The 12-byte fixed header (version 2, no padding, extension or CSRC)."""
    second = (0x80 if marker else 0) | (payload_type & 0x7F)
    return HEADER.pack(0x80, second, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)


def pack(packet: RtpPacket) -> bytes:
    header = pack_header(
        packet.payload_type, packet.sequence, packet.timestamp, packet.ssrc, packet.marker
    )
    return header + packet.payload


def parse(data: bytes) -> RtpPacket | None:
    """Parse an RTP packet; ``None`` for anything that is not valid RTP version 2."""
    if len(data) < HEADER_SIZE:
        return None
    first, second, sequence, timestamp, ssrc = HEADER.unpack_from(data)
    if first >> 6 != RTP_VERSION:
        return None
    offset = HEADER_SIZE + 4 * (first & 0x0F)
    if first & 0x10:  # header extension: 16-bit profile, 16-bit length in words
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
    end = len(data)
    if first & 0x20:  # padding: the last byte counts the padding bytes
        end -= data[-1]
    if offset > end:
        return None
    payload_type = second & 0x7F
    if 72 <= payload_type <= 76:  # RTCP sent to the RTP port (RFC 5761 range): not ours
        return None
    return RtpPacket(payload_type, sequence, timestamp, ssrc, bool(second & 0x80), data[offset:end])


Address = tuple[str, int]


def ignore_packet(packet: RtpPacket) -> None:
    pass


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: RtpEndpoint) -> None:
        self.endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        packet = parse(data)
        if packet is not None:
            self.endpoint.received(packet, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable and the like
        self.endpoint.errors += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.endpoint.socket_closed()


class _DropProtocol(asyncio.DatagramProtocol):
    """The RTCP port: bound so nobody else takes it; what arrives is dropped."""

    def __init__(self, endpoint: RtpEndpoint) -> None:
        self.endpoint = endpoint

    def connection_lost(self, exc: Exception | None) -> None:
        self.endpoint.socket_closed()


@dataclass(slots=True)
class BoundPair:
    """Two bound, non-blocking UDP sockets: RTP on ``port`` (even), RTCP on ``port + 1``."""

    port: int
    rtp: socket.socket
    rtcp: socket.socket

    def close(self) -> None:
        self.rtp.close()
        self.rtcp.close()


def bind_pair(local_ip: str, port: int) -> BoundPair:
    """Bind ``port`` and ``port + 1`` on ``local_ip`` (an IP literal). Raises OSError with the
    errno of the failing call (EADDRINUSE: another process holds one of them)."""
    family = socket.AF_INET6 if ":" in local_ip else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for each in (port, port + 1):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sockets.append(sock)
            sock.setblocking(False)
            sock.bind((local_ip, each))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return BoundPair(port, sockets[0], sockets[1])


class RtpEndpoint:
    """One call's RTP socket (and the reserved RTCP socket); sends to the latched address."""

    def __init__(self, remote: Address) -> None:
        self.remote = remote
        self.latched: Address | None = None
        self.on_packet: Callable[[RtpPacket], None] = ignore_packet
        self.packets_received = 0
        self.packets_sent = 0
        self.errors = 0
        self._rtp: asyncio.DatagramTransport | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self._open_sockets = 0
        self._on_closed: Callable[[], None] | None = None

    @classmethod
    async def open(cls, local_ip: str, port: int, remote: Address) -> RtpEndpoint:
        """Bind ``port`` (RTP) and ``port + 1`` (RTCP) on ``local_ip``; ``on_packet`` receives
        what arrives. Raises OSError."""
        return await cls.attach(bind_pair(local_ip, port), remote)

    @classmethod
    async def attach(cls, pair: BoundPair, remote: Address) -> RtpEndpoint:
        """The endpoint on sockets :func:`bind_pair` bound (they are closed if this fails)."""
        endpoint = cls(remote)
        loop = asyncio.get_running_loop()
        try:
            rtp, _ = await loop.create_datagram_endpoint(
                lambda: _RtpProtocol(endpoint), sock=pair.rtp
            )
        except BaseException:
            pair.close()
            raise
        try:
            rtcp, _ = await loop.create_datagram_endpoint(
                lambda: _DropProtocol(endpoint), sock=pair.rtcp
            )
        except BaseException:
            rtp.close()
            pair.rtcp.close()
            raise
        endpoint._rtp, endpoint._rtcp = rtp, rtcp
        endpoint._open_sockets = 2
        return endpoint

    def socket_closed(self) -> None:
        """A transport is closing its socket (its protocol's ``connection_lost``, which both
        asyncio and uvloop call just before they close it: ``on_closed`` waits a turn)."""
        self._open_sockets -= 1
        if self._open_sockets == 0 and self._on_closed is not None:
            asyncio.get_running_loop().call_soon(self._closed)

    def _closed(self) -> None:
        on_closed, self._on_closed = self._on_closed, None
        if on_closed is not None:
            on_closed()

    def when_closed(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once both sockets are closed: at once if they are, else when the
        transports close them (an iteration of the loop after :meth:`close`). The port pool
        takes a port back only then, so it never hands out a port we still hold."""
        if self._open_sockets <= 0:
            callback()
        else:
            self._on_closed = callback

    @property
    def destination(self) -> Address:
        return self.latched or self.remote

    @property
    def local_port(self) -> int:
        assert self._rtp is not None
        return int(self._rtp.get_extra_info("sockname")[1])

    def set_remote(self, remote: Address) -> None:
        """A new SDP address (re-INVITE): send there until the next latch."""
        if remote != self.remote:
            self.remote = remote
            self.latched = None

    def received(self, packet: RtpPacket, source: Address) -> None:
        self.packets_received += 1
        if self.latched is None:
            self.latched = source
        self.on_packet(packet)

    def send(self, data: bytes) -> None:
        if self._rtp is not None and self.destination[1]:
            self._rtp.sendto(data, self.destination)
            self.packets_sent += 1

    def close(self) -> None:
        for transport in (self._rtp, self._rtcp):
            if transport is not None:
                transport.close()
        self._rtp = self._rtcp = None
