"""RTP (RFC 3550): header pack/parse and the per-call UDP endpoint (with symmetric RTP).

Besides ``sip/transport.py`` this is the only module that owns sockets. Each call gets one
:class:`RtpEndpoint` bound to an even port from the configured range; the odd port above it is
bound too and kept (RTCP reserved; incoming RTCP is read and dropped).

Symmetric RTP: until the first valid RTP packet arrives we send to the address in the remote SDP;
then we latch to that packet's source address (NAT-friendly) and keep it until the SDP changes.
"""

from __future__ import annotations

import asyncio
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


class _DropProtocol(asyncio.DatagramProtocol):
    """The RTCP port: bound so nobody else takes it; what arrives is dropped."""


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

    @classmethod
    async def open(cls, local_ip: str, port: int, remote: Address) -> RtpEndpoint:
        """Bind ``port`` (RTP) and ``port + 1`` (RTCP) on ``local_ip``; ``on_packet`` receives
        what arrives. Raises OSError."""
        endpoint = cls(remote)
        loop = asyncio.get_running_loop()
        rtp, _ = await loop.create_datagram_endpoint(
            lambda: _RtpProtocol(endpoint), local_addr=(local_ip, port)
        )
        try:
            rtcp, _ = await loop.create_datagram_endpoint(
                _DropProtocol, local_addr=(local_ip, port + 1)
            )
        except OSError:
            rtp.close()
            raise
        endpoint._rtp, endpoint._rtcp = rtp, rtcp
        return endpoint

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
