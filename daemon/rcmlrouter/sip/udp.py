"""The UDP sockets of the SIP transports, one per address family.

Each socket is bound by us (not by the event loop) so that, on Linux, its ICMP error queue can
be turned on first (``IP_RECVERR``; ``sip/icmp.py`` says what one entry means): an ICMP "port /
host / network unreachable" for a datagram we sent then reaches the receiver as
``on_send_failed(destination)`` and the transactions to there fail at once (RFC 3261 §18.4).
The receive and send buffers are enlarged for bursts of INVITEs, and :meth:`UdpSockets.backlog`
tells the overload signal (``sip/overload.py``) how many bytes wait in the receive buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import sys
from typing import Protocol

from rcmlrouter.sip.icmp import recverr_option, unreachable_error
from rcmlrouter.sip.stream import Source

UDP_BUFFER_BYTES = 4 * 1024 * 1024
ERROR_QUEUE_READS = 64  # ICMP reports read per wake-up (the kernel caps the queue anyway)
SO_MEMINFO = 55  # Linux: struct of u32; [0] is the receive queue's allocated bytes


class SendFailures(Protocol):
    def on_send_failed(self, destination: Source) -> None: ...


class DatagramOwner(Protocol):
    """What a UDP socket's protocol needs from the transports that own it."""

    @property
    def receiver(self) -> SendFailures: ...

    def deliver(self, data: bytes, source: Source, *, stream: bool) -> None: ...


def family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _enlarge_buffers(udp: asyncio.DatagramTransport) -> None:
    """Bursts of INVITEs overflow the default receive buffer; ask for more (capped by the
    kernel's rmem_max/wmem_max)."""
    sock = udp.get_extra_info("socket")
    if sock is None:
        return
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER_BYTES)


def _udp_socket(host: str, port: int) -> socket.socket:
    """A bound, non-blocking UDP socket; on Linux with its ICMP error queue on (sip/icmp.py)."""
    sock = socket.socket(family(host), socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, port))
        if sys.platform == "linux":
            sock.setsockopt(*recverr_option(family(host) == socket.AF_INET6), 1)
    except OSError:
        sock.close()
        raise
    return sock


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: DatagramOwner, sock: socket.socket) -> None:
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


class UdpSockets:
    """The bound UDP sockets, by address family."""

    def __init__(self) -> None:
        self._by_family: dict[int, asyncio.DatagramTransport] = {}

    async def listen(self, owner: DatagramOwner, host: str, port: int) -> int:
        """Bind ``host:port`` (0: any port); returns the bound port."""
        sock = _udp_socket(host, port)
        udp, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            functools.partial(_UdpProtocol, owner, sock),
            sock=sock,
        )
        self._by_family[family(host)] = udp
        _enlarge_buffers(udp)
        return int(udp.get_extra_info("sockname")[1])

    def for_host(self, host: str) -> asyncio.DatagramTransport | None:
        """The socket to send to ``host`` from: its family's, else any."""
        return self._by_family.get(family(host)) or next(iter(self._by_family.values()), None)

    def close(self) -> None:
        for udp in self._by_family.values():
            udp.close()
        self._by_family.clear()

    def backlog(self) -> int:
        """Bytes waiting in the UDP sockets' receive buffers (Linux ``SO_MEMINFO``; 0 where
        the kernel cannot tell)."""
        queued = 0
        for udp in self._by_family.values():
            sock = udp.get_extra_info("socket")
            if sock is None:
                continue
            try:
                queued += int.from_bytes(sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 36)[:4],
                                         sys.byteorder)  # fmt: skip
            except OSError:
                return 0
        return queued


__all__ = ["DatagramOwner", "UdpSockets", "family"]
