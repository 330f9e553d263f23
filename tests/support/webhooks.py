"""A real HTTP webhook server on loopback that records every request.

It runs an aiohttp server on its own event loop in a background thread, so tests written as
plain functions (driving SIPp subprocesses) can use it. Routes answer with a configured
:class:`Reply`; unknown paths answer 404.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from multidict import MultiDict

from support.ports import free_port


@dataclass
class Reply:
    body: str | bytes = "<Response><Hangup/></Response>"
    status: int = 200
    content_type: str = "text/xml"
    delay: float = 0.0
    segments: int = 1  # > 1: the body is written in that many parts, ``gap`` seconds apart
    gap: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str
    url: str
    params: dict[str, str]
    headers: dict[str, str]
    at: float = field(default_factory=time.time)


def rcml(*verbs: str) -> Reply:
    return Reply("<?xml version='1.0'?><Response>" + "".join(verbs) + "</Response>")


class WebhookServer:
    """``server.route("/voice", rcml("<Hangup/>"))``; ``server.requests("/voice")``."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._routes: dict[str, Reply | Callable[[Recorded], Reply]] = {}
        self._log: list[Recorded] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, reply: Reply | Callable[[Recorded], Reply]) -> str:
        self._routes[path] = reply
        return self.url(path)

    def requests(self, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self._log if path is None or r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.requests(path)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        return self.requests(path)

    def start(self) -> WebhookServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("webhook server did not start")
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # stop() cancels what a test left waiting (a Reply's delay) instead of waiting for it
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        params: MultiDict[str] = MultiDict(request.query)
        if request.method == "POST":
            params.extend(await request.post())  # type: ignore[arg-type]
        record = Recorded(
            request.method,
            request.path,
            str(request.url),
            {k: str(v) for k, v in params.items()},
            dict(request.headers),
        )
        with self._lock:
            self._log.append(record)
        handler = self._routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="not found")
        reply = handler(record) if callable(handler) else handler
        if reply.delay:
            await asyncio.sleep(reply.delay)
        body = reply.body.encode() if isinstance(reply.body, str) else reply.body
        if reply.segments > 1:
            return await self._slowly(request, reply, body)
        return web.Response(
            status=reply.status, body=body, headers={"Content-Type": reply.content_type}
        )

    @staticmethod
    async def _slowly(request: web.Request, reply: Reply, body: bytes) -> web.StreamResponse:
        """The body in ``reply.segments`` separate writes (TCP segments), ``reply.gap`` apart."""
        response = web.StreamResponse(status=reply.status)
        response.content_type = reply.content_type
        response.content_length = len(body)
        await response.prepare(request)
        size = -(-len(body) // reply.segments)
        for start in range(0, len(body), size):
            await response.write(body[start : start + size])
            await asyncio.sleep(reply.gap)
        await response.write_eof()
        return response
