"""A real aiohttp.web webhook server on 127.0.0.1 for the fetcher tests.

Every request is recorded (method, URL as the server saw it, query, form, headers) and its
signature is checked with an independent implementation of Twilio's algorithm.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import hmac
from collections import Counter
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

AUTH_TOKEN = "f00dfacef00dfacef00dfacef00dface"
SAY_OK = b"<Response><Say>primary</Say></Response>"
SAY_FALLBACK = b"<Response><Say>fallback</Say></Response>"


def twilio_signature(url: str, params: dict[str, str], token: str) -> str:
    """Twilio's algorithm written out independently of rcmlrouter.rcml.signing."""
    data = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass
class Received:
    path: str
    method: str
    url: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    signature_valid: bool


class WebhookServer:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.hits: Counter[str] = Counter()
        self.peers: set[object] = set()
        self.release = asyncio.Event()
        self.base = ""
        self._runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return self.base + path

    def received(self, path: str) -> list[Received]:
        return [request for request in self.requests if request.path == path]

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record])
        routes = [
            ("/rcml", self._rcml),
            ("/fallback", self._fallback),
            ("/relative/start", self._relative),
            ("/status/{code}", self._status),
            ("/flaky", self._flaky),
            ("/slow", self._slow),
            ("/text", self._text),
            ("/no-type", self._no_type),
            ("/badxml", self._bad_xml),
            ("/unknown-verb", self._unknown_verb),
            ("/huge", self._huge),
            ("/huge-chunked", self._huge_chunked),
            ("/gzip-bomb", self._gzip_bomb),
            ("/loop", self._loop),
            ("/chain/{n}", self._chain),
            ("/callback", self._callback),
        ]
        for path, handler in routes:
            app.router.add_route("*", path, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        form = {k: str(v) for k, v in (await request.post()).items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        expected = twilio_signature(str(request.url), form, AUTH_TOKEN)
        self.requests.append(
            Received(
                path=request.path,
                method=request.method,
                url=str(request.url),
                query=dict(request.query),
                form=form,
                headers=dict(request.headers),
                signature_valid=hmac.compare_digest(signature, expected)
                and request.headers.get("X-Restcomm-Signature") == signature,
            )
        )
        self.hits[request.path] += 1
        if request.transport is not None:
            self.peers.add(request.transport.get_extra_info("peername"))
        response: web.StreamResponse = await handler(request)
        return response

    @staticmethod
    def _xml(body: bytes, status: int = 200) -> web.Response:
        return web.Response(body=body, status=status, content_type="text/xml", charset="utf-8")

    async def _rcml(self, _request: web.Request) -> web.Response:
        return self._xml(SAY_OK)

    async def _fallback(self, _request: web.Request) -> web.Response:
        return web.Response(body=SAY_FALLBACK, content_type="application/xml")

    async def _relative(self, _request: web.Request) -> web.Response:
        return self._xml(
            b"<Response><Play>../audio/a.wav</Play><Redirect>next</Redirect></Response>"
        )

    async def _status(self, request: web.Request) -> web.Response:
        return self._xml(SAY_OK, status=int(request.match_info["code"]))

    async def _flaky(self, _request: web.Request) -> web.Response:
        return self._xml(SAY_OK, status=503 if self.hits["/flaky"] <= 2 else 200)

    async def _slow(self, _request: web.Request) -> web.Response:
        await asyncio.wait_for(self.release.wait(), timeout=5)
        return self._xml(SAY_OK)

    async def _text(self, _request: web.Request) -> web.Response:
        return web.Response(text="<Response/>", content_type="text/plain")

    async def _no_type(self, _request: web.Request) -> web.Response:
        response = web.Response(body=SAY_OK)
        response.headers.popall("Content-Type", None)
        return response

    async def _bad_xml(self, _request: web.Request) -> web.Response:
        return self._xml(b"<Response><Say>oops</Response>")

    async def _unknown_verb(self, _request: web.Request) -> web.Response:
        return self._xml(b"<Response><Conference>room</Conference></Response>")

    async def _huge(self, _request: web.Request) -> web.Response:
        padding = b" " * (1 << 20)
        return self._xml(b"<Response>" + padding + b"</Response>")

    async def _huge_chunked(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/xml"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"<Response>")
        for _ in range(40):
            await response.write(b" " * 32768)
        await response.write(b"</Response>")
        await response.write_eof()
        return response

    async def _gzip_bomb(self, _request: web.Request) -> web.Response:
        body = gzip.compress(b"<Response>" + b" " * (8 << 20) + b"</Response>")
        headers = {"Content-Encoding": "gzip", "Content-Type": "text/xml"}
        return web.Response(body=body, headers=headers)

    async def _loop(self, _request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def _chain(self, request: web.Request) -> web.Response:
        remaining = int(request.match_info["n"])
        if remaining == 0:
            return self._xml(SAY_OK)
        raise web.HTTPFound(f"/chain/{remaining - 1}")

    async def _callback(self, _request: web.Request) -> web.Response:
        return web.Response(status=204)
