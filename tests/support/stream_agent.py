"""A media-stream agent for tests: a `websockets` server on loopback speaking Twilio's Media
Streams protocol from the agent's side.

It records every message it receives (parsed JSON, with arrival time) and the handshake's
headers. ``behaviour`` is an ``async (agent, ws)`` run for each connection after the handshake
(the default reads until the socket closes); helpers send media, marks, clear. ``thread=True``
runs it on its own loop in a background thread, for tests that drive the real daemon.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve

from rcmlrouter.media import g711

Behaviour = Callable[["StreamAgent", ServerConnection], Awaitable[None]]


@dataclass
class Received:
    at: float
    message: dict[str, Any]


@dataclass
class StreamAgent:
    behaviour: Behaviour | None = None
    max_size: int | None = 16 * 1024 * 1024
    received: list[Received] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    connections: int = 0
    server: Server | None = None
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/agent"

    async def start(self) -> StreamAgent:
        self.server = await serve(
            self._handle, "127.0.0.1", 0, max_size=self.max_size, close_timeout=1
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def start_thread(self) -> StreamAgent:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def stop_thread(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self.stop(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        self.paths.append(ws.request.path)
        with contextlib.suppress(Exception):
            await (self.behaviour or read_all)(self, ws)

    # -- what arrived --------------------------------------------------------------------

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r.message for r in self.received if r.message.get("event") == name]

    def record(self, raw: str | bytes) -> dict[str, Any]:
        message = json.loads(raw)
        self.received.append(Received(time.monotonic(), message))
        return message

    async def wait_for(self, name: str, count: int = 1, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.events(name)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.events(name))} {name!r} messages, not {count}")
            await asyncio.sleep(0.01)

    def inbound_audio(self) -> np.ndarray:
        payload = b"".join(
            base64.b64decode(m["media"]["payload"])
            for m in self.events("media")
            if m["media"]["track"] == "inbound"
        )
        return g711.decode(payload, "PCMU")


async def read_all(agent: StreamAgent, ws: ServerConnection) -> None:
    async for raw in ws:
        agent.record(raw)


def media_message(stream_sid: str, ulaw: bytes) -> str:
    payload = base64.b64encode(ulaw).decode()
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark_message(stream_sid: str, name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    return json.dumps({"event": "clear", "streamSid": stream_sid})


def tone_ulaw(frequency: float, seconds: float, amplitude: float = 0.5) -> bytes:
    t = np.arange(round(seconds * 8000)) / 8000
    samples = np.round(amplitude * 32767 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
    return g711.encode(samples, "PCMU")
