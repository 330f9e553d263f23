"""Webhook transport failures → :class:`~rcmlrouter.errors.FetchError`. The ``error_code`` goes
to the fallback URL as ``ErrorCode``:

======  ========================================================================================
11200   the server answered with a status other than 2xx (``http_status`` is set); bad URL/method
11205   connection failure: refused, reset, DNS failure, ``deny_networks``, connect timeout,
        read/total timeout
11206   protocol failure: TLS, more than ``max_redirects`` redirects, malformed or truncated
        response, a response head over the client's limits, body larger than ``max_body``
        (Twilio has no dedicated "too large" code; a response we refuse to read is treated as a
        violation of the webhook protocol)
12300   the content type is not ``text/xml`` or ``application/xml``
12100   the body is not a valid RCML document (:class:`~rcmlrouter.errors.RcmlParseError`)
======  ========================================================================================

The second value of :func:`translate` is the failure's retry token for the URL-fragment retry
policy (``#rp=ct,rt,4xx,5xx,all``). No failure is retried without one: the client itself sends
a request again only when a reused connection closed before one byte came back.
"""

from __future__ import annotations

from rcmlrouter.errors import FetchError
from rcmlrouter.httpclient.failures import (
    ConnectFailed,
    ConnectionReset,
    ConnectTimedOut,
    Disconnected,
    EgressDeniedError,
    HttpFailure,
    ReadTimedOut,
    TooManyRedirects,
)

__all__ = ["TRANSPORT_ERRORS", "HttpStatusError", "translate"]


class HttpStatusError(Exception):
    """Internal: the server answered a status other than 2xx."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"HTTP status {status}")


TRANSPORT_ERRORS = (HttpFailure, HttpStatusError)


def translate(exc: BaseException, method: str, url: str) -> tuple[FetchError, str | None]:
    """Map a transport exception to a FetchError and its retry token (None: only ``all``)."""
    what = f"{method} {url}"
    if isinstance(exc, HttpStatusError):
        token = {4: "4xx", 5: "5xx"}.get(exc.status // 100)
        message = f"{what} answered HTTP {exc.status}"
        return FetchError(message, 11200, url, http_status=exc.status), token
    if isinstance(exc, EgressDeniedError):
        return FetchError(f"{what} refused: {exc}", 11205, url), None
    if isinstance(exc, ConnectTimedOut):
        return FetchError(f"{what} failed: connect timeout", 11205, url), "ct"
    if isinstance(exc, ConnectFailed):
        return FetchError(f"{what} failed: {exc}", 11205, url), "ct"
    if isinstance(exc, ReadTimedOut):
        return FetchError(f"{what} failed: timed out waiting for the response", 11205, url), "rt"
    if isinstance(exc, TooManyRedirects):
        return FetchError(f"{what} failed: too many redirects", 11206, url), None
    if isinstance(exc, ConnectionReset):
        return FetchError(f"{what} failed: {exc}", 11205, url), None
    if isinstance(exc, Disconnected):
        return FetchError(f"{what} failed: server closed the connection", 11206, url), None
    return FetchError(f"{what} failed: {exc}", 11206, url), None
