"""A loopback TCP server that answers HTTP byte for byte, for the HTTP client's fault tests.

``handler(reader, writer, connection_number)`` writes whatever bytes the test wants: interim
responses in their own segments, truncated bodies, resets, endless headers. Request heads are
recorded in ``heads``; ``read_request`` reads one request (head and ``Content-Length`` body).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable

from yarl import URL

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]
OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: 11\r\n\r\n"
    b"<Response/>"
)


class RawServer:
    """``async with RawServer(handler) as server:``; ``server.url("/voice")``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def url(self, path: str = "/voice") -> URL:
        return URL(f"http://127.0.0.1:{self.port}{path}")

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        body = b""
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                body = await reader.readexactly(int(line.split(b":")[1]))
        self.bodies.append(body)
        return head

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await self.handler(reader, writer, self.connections)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


async def send_segments(writer: asyncio.StreamWriter, *segments: bytes, gap: float = 0.05) -> None:
    """Write each segment on its own, ``gap`` seconds apart (separate TCP segments/reads)."""
    for segment in segments:
        writer.write(segment)
        await writer.drain()
        await asyncio.sleep(gap)


def reset(writer: asyncio.StreamWriter) -> None:
    """Abort the connection with an RST (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
