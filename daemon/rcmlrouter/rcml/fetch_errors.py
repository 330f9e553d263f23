"""Webhook transport failures → :class:`~rcmlrouter.errors.FetchError`, one mapping for both HTTP
clients (aiohttp and :mod:`rcmlrouter.rcml.keepalive`). The ``error_code`` goes to the fallback
URL as ``ErrorCode``:

======  ========================================================================================
11200   the server answered with a status other than 2xx (``http_status`` is set); bad URL/method
11205   connection failure: refused, DNS failure, connect timeout, read/total timeout
11206   protocol failure: TLS, more than ``max_redirects`` redirects, malformed or truncated
        response, body larger than ``max_body`` (Twilio has no dedicated "too large" code; a
        response we refuse to read is treated as a violation of the webhook protocol)
12300   the content type is not ``text/xml`` or ``application/xml``
12100   the body is not a valid RCML document (:class:`~rcmlrouter.errors.RcmlParseError`)
======  ========================================================================================
"""

from __future__ import annotations

import aiohttp

from rcmlrouter.errors import FetchError
from rcmlrouter.rcml.egress import EgressDeniedError
from rcmlrouter.rcml.http1 import (
    ConnectFailed,
    ConnectionReset,
    ConnectTimedOut,
    Disconnected,
    HttpFailure,
    ReadTimedOut,
    TlsFailed,
    TooManyRedirects,
)

__all__ = ["STALE", "TRANSPORT_ERRORS", "HttpStatusError", "translate"]


class HttpStatusError(Exception):
    """Internal: the server answered a status other than 2xx."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"HTTP status {status}")


TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, HttpStatusError, HttpFailure)
# Retry token of a connection the server closed without answering. A pooled keep-alive connection
# the server has just timed out fails this way; aiohttp retries only idempotent methods, so a POST
# webhook gets one extra attempt here, whatever the retry policy.
STALE = "stale"


def translate(exc: BaseException, method: str, url: str) -> tuple[FetchError, str | None]:
    """Map a transport exception to a FetchError and its retry token (None: only ``all``)."""
    what = f"{method} {url}"
    if isinstance(exc, HttpStatusError):
        token = {4: "4xx", 5: "5xx"}.get(exc.status // 100)
        message = f"{what} answered HTTP {exc.status}"
        return FetchError(message, 11200, url, http_status=exc.status), token
    if isinstance(exc, EgressDeniedError):
        return FetchError(f"{what} refused: {exc}", 11205, url), None
    if isinstance(exc, HttpFailure):
        return _translate_lane(exc, what, url)
    if isinstance(exc, aiohttp.ClientSSLError):
        return FetchError(f"{what} failed: TLS error ({exc})", 11206, url), None
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return FetchError(f"{what} failed: connect timeout", 11205, url), "ct"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return FetchError(f"{what} failed: cannot connect ({exc})", 11205, url), "ct"
    if isinstance(exc, TimeoutError):
        return FetchError(f"{what} failed: timed out waiting for the response", 11205, url), "rt"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return FetchError(f"{what} failed: too many redirects", 11206, url), None
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return FetchError(f"{what} failed: malformed response ({exc})", 11206, url), None
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientConnectionResetError):
        return FetchError(f"{what} failed: server closed the connection", 11206, url), STALE
    if isinstance(exc, aiohttp.RedirectClientError):
        return FetchError(f"{what} failed: bad redirect ({exc!r})", 11206, url), None
    if isinstance(exc, aiohttp.ClientConnectionError):
        return FetchError(f"{what} failed: connection error ({exc!r})", 11205, url), None
    return FetchError(f"{what} failed: {exc!r}", 11200, url), None


def _translate_lane(exc: HttpFailure, what: str, url: str) -> tuple[FetchError, str | None]:
    """The same codes and retry tokens for the keep-alive client's failures."""
    if isinstance(exc, ConnectTimedOut):
        return FetchError(f"{what} failed: connect timeout", 11205, url), "ct"
    if isinstance(exc, ConnectFailed):
        return FetchError(f"{what} failed: {exc}", 11205, url), "ct"
    if isinstance(exc, ReadTimedOut):
        return FetchError(f"{what} failed: timed out waiting for the response", 11205, url), "rt"
    if isinstance(exc, TlsFailed):
        return FetchError(f"{what} failed: {exc}", 11206, url), None
    if isinstance(exc, TooManyRedirects):
        return FetchError(f"{what} failed: too many redirects", 11206, url), None
    if isinstance(exc, ConnectionReset):  # aiohttp: ClientOSError, a connection error
        return FetchError(f"{what} failed: {exc}", 11205, url), None
    if isinstance(exc, Disconnected):
        return FetchError(f"{what} failed: server closed the connection", 11206, url), STALE
    return FetchError(f"{what} failed: {exc}", 11206, url), None
