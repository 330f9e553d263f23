"""Errors answered before a request reaches the API's handlers, in the API's own error body.

aiohttp's HTTP parser refuses some requests itself: a request line or header field over 8,190
bytes (a long query, a path of percent-encoded non-ASCII characters), a byte not allowed in a
URL, a malformed header. Its answer is a plain-text ``400`` that never passes the API's error
middleware, so it carries no error code (schemathesis found one: a non-ASCII call sid and a long
junk ``PageSize``). :class:`ApiRunner` is the ``AppRunner`` of the API: its connections answer
those errors with the coded body every other error has (``20001``; ``20500`` for a 5xx), in XML,
the default format (the request's path and headers were never read, so neither a ``.json``
suffix nor an ``Accept`` header can be seen).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from rcmlrouter.api.render import render_error
from rcmlrouter.errors import ApiError

MAX_DETAIL = 120


def protocol_error(status: int, message: str | None) -> ApiError:
    """The coded error for what aiohttp's parser said (its first line, without the echo of the
    offending bytes that follows a colon)."""
    detail = (message or "").split("\n", 1)[0].split(":", 1)[0].strip()
    text = f"malformed HTTP request: {detail[:MAX_DETAIL]}" if detail else "malformed HTTP request"
    if status >= 500:
        return ApiError(status, 20500, "Internal server error")
    return ApiError(status, 20001, text)


class _CodedErrorHandler(RequestHandler):
    """A connection whose parser-level errors get the API's error body."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; raises if bytes went out
        coded = render_error(request, protocol_error(status, message))
        coded.force_close()  # as aiohttp's own answer: the stream cannot be trusted after it
        return coded


class _CodedErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _CodedErrorHandler(self, loop=asyncio.get_running_loop(), **self._handler_kwargs)

    def __init__(self, server: web.Server, **kwargs: Any) -> None:
        super().__init__(server.request_handler, request_factory=server.request_factory, **kwargs)
        self._handler_kwargs = kwargs


class ApiRunner(web.AppRunner):
    """``web.AppRunner`` for the API (no access log, no signal handling), every error coded."""

    def __init__(self, app: web.Application) -> None:
        super().__init__(app, access_log=None, handle_signals=False)

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # the app's start-up hooks run here
        return _CodedErrorServer(plain, access_log=None)
