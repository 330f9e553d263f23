"""What can go wrong below HTTP in :mod:`rcmlrouter.httpclient`; users map these to their own
errors (:mod:`rcmlrouter.rcml.fetch_errors`: Twilio error codes; ``<Play>``: ``MediaError``)."""

from __future__ import annotations

__all__ = [
    "ConnectFailed",
    "ConnectTimedOut",
    "ConnectionReset",
    "Disconnected",
    "EgressDeniedError",
    "HeadTooLarge",
    "HttpFailure",
    "MalformedResponse",
    "ReadTimedOut",
    "TlsFailed",
    "TooLarge",
    "TooManyRedirects",
]


class HttpFailure(Exception):
    """A request failed below HTTP (connection, timeout, protocol)."""


class EgressDeniedError(HttpFailure):
    """The host is, or resolves only to, addresses in ``webhooks.deny_networks``."""


class ConnectFailed(HttpFailure):
    """The connection could not be made (refused, unreachable, DNS failure)."""


class ConnectTimedOut(HttpFailure):
    """The connection was not made within the connect timeout."""


class ReadTimedOut(HttpFailure):
    """The response did not arrive (or stalled) within the read or total timeout."""


class Disconnected(HttpFailure):
    """The server closed the connection before the response was complete."""


class ConnectionReset(Disconnected):
    """The connection was reset (RST) or failed with a socket error before the response was
    complete: a connection failure (11205), not a protocol one."""


class MalformedResponse(HttpFailure):
    """The bytes received are not an acceptable HTTP/1.x response."""


class HeadTooLarge(MalformedResponse):
    """A response header line or the whole head is over the client's limits."""


class TlsFailed(HttpFailure):
    """The TLS handshake failed (certificate, protocol)."""


class TooManyRedirects(HttpFailure):
    """More than ``max_redirects`` redirects."""


class TooLarge(HttpFailure):
    """The body is larger than ``max_body`` (only raised when the body is kept)."""
