"""A loopback HTTP server that misbehaves on purpose, for the webhook fault tests.

Plain asyncio streams (not aiohttp.web) so that it can do what a well-behaved server never does:
reset the connection, hang, trickle the body, promise more body than it sends. It runs on an event
loop of its own thread, so synchronous SIPp-driven tests can use it. Every request is recorded
with its form parameters and arrival time.

=================  =================================================================================
path               behaviour
=================  =================================================================================
``/reset``         reads the request, then resets the connection (RST, no response)
``/hang``          reads the request, never answers (until the client gives up)
``/trickle``       200 text/xml with a Content-Length, then one byte every 0.2 s
``/status/404``    that status (any 3-digit code), text/plain
``/wrong-type``    200 with a valid RCML body as text/html
``/truncated``     200 text/xml, Content-Length 4096, 40 bytes of body, then close
``/rcml``          200 ``<Response><Hangup/></Response>``
``/callback``      200 empty (a StatusCallback receiver)
=================  =================================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from support.ports import free_port

HANGUP = b"<?xml version='1.0'?><Response><Hangup/></Response>"


@dataclass
class Hit:
    path: str
    params: dict[str, str]
    at: float = field(default_factory=time.monotonic)


class FaultServer:
    """``server.url("/hang")``; ``server.hits("/callback")``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port()
        self.base = f"http://{host}:{self.port}"
        self._hits: list[Hit] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str | None = None) -> list[Hit]:
        with self._lock:
            return [hit for hit in self._hits if path is None or hit.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Hit]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.hits(path)) < count:
            time.sleep(0.02)
        return self.hits(path)

    def start(self) -> FaultServer:
        async def listen() -> asyncio.Server:
            self._closing = asyncio.Event()
            return await asyncio.start_server(self._serve, self.host, self.port)

        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(listen(), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None and self._closing is not None
            self._server.close()
            self._closing.set()  # hanging handlers return
            for writer in list(self._writers):
                writer.transport.abort()
            await asyncio.sleep(0.05)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # -- the connection ----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    return
                path, params = request
                with self._lock:
                    self._hits.append(Hit(path, params))
                if not await self._answer(path, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]] | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        target = lines[0].split(" ")[1]
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        split = urlsplit(target)
        params = dict(parse_qsl(split.query)) | dict(parse_qsl(body.decode()))
        return split.path, params

    async def _answer(self, path: str, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is finished."""
        if path == "/reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # close with linger 0: RST
            return False
        if path == "/hang":
            assert self._closing is not None
            await self._closing.wait()
            return False
        if path == "/trickle":
            writer.write(_head(200, "text/xml", len(HANGUP)))
            for byte in HANGUP:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.2)
                if writer.is_closing():
                    break
            return False
        if path == "/truncated":
            writer.write(_head(200, "text/xml", 4096) + HANGUP[:40])
            await writer.drain()
            return False
        if path.startswith("/status/"):
            body = b"not what you wanted"
            writer.write(_head(int(path.rsplit("/", 1)[1]), "text/plain", len(body)) + body)
        elif path == "/wrong-type":
            writer.write(_head(200, "text/html", len(HANGUP)) + HANGUP)
        elif path == "/rcml":
            writer.write(_head(200, "text/xml", len(HANGUP)) + HANGUP)
        elif path == "/callback":
            writer.write(_head(200, "text/plain", 0))
        else:
            writer.write(_head(404, "text/plain", 0))
        await writer.drain()
        return True


def _head(status: int, content_type: str, length: int) -> bytes:
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n"
        "Connection: keep-alive\r\n\r\n"
    ).encode()
