"""The rcmlrouter exception tree.

Every error raised by rcmlrouter code derives from :class:`RcmlRouterError`. Foreign exceptions
(aiohttp, sqlite3, asyncpg, re2) are translated where they are caught, ``raise ... from exc``.
Errors know their wire form: SIP-facing errors carry ``sip_status`` and ``reason``; API errors carry
``http_status`` and a Restcomm error ``code``; RCML errors carry the Twilio ``error_code`` that is
sent to the fallback URL.

::

    RcmlRouterError
    ├── ConfigError                 bad configuration; lists every problem at once
    ├── StoreError                  the database failed or refused
    │   ├── NotFoundError           no such row
    │   ├── ConflictError           a uniqueness rule was violated
    │   └── StoreUnavailableError   the database cannot be reached (API/SIP answer 503)
    ├── InvalidNumberError          a phone number or SIP number is malformed (21421)
    │   └── InvalidPatternError     a regex number breaks the pattern rules (21505)
    ├── ApiError                    HTTP status + Restcomm code + message
    ├── SipError                    SIP status + Reason text
    │   ├── SipParseError           malformed SIP (400, or dropped when no response is possible)
    │   ├── RouteNotFoundError      no number matched (404)
    │   ├── AccountSuspendedError   the number's account is suspended or closed (403)
    │   └── OverloadError           too much in flight or draining (503 + Retry-After)
    └── RcmlError                   RCML could not be obtained or run
        ├── FetchError              the HTTP fetch failed (11200 / 11205 / 11206 / 12300)
        ├── RcmlParseError          the document is not valid RCML (12100)
        └── MediaError              audio not fetched, decoded or synthesised (11200 / 12300)
    StreamRefusedError              a media stream cannot start on this call (21220 / 31940)
"""

from __future__ import annotations


class RcmlRouterError(Exception):
    """Base of every rcmlrouter error."""


class ConfigError(RcmlRouterError):
    """The configuration is invalid. ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n  " + "\n  ".join(self.problems))


class StoreError(RcmlRouterError):
    """The store failed or refused an operation."""


class NotFoundError(StoreError):
    """The requested row does not exist."""


class ConflictError(StoreError):
    """A uniqueness rule was violated."""


class StoreUnavailableError(StoreError):
    """The database cannot be reached (connection lost, refused or timed out); retrying later
    may succeed. Answered 503 by the API and SIP."""


class InvalidNumberError(RcmlRouterError):
    """A phone number or SIP number string is malformed."""


class InvalidPatternError(InvalidNumberError):
    """A regex SIP number breaks the pattern rules of SPEC section 2.3."""


class ApiError(RcmlRouterError):
    """An API request failed; rendered as a Restcomm error body."""

    def __init__(self, http_status: int, code: int, message: str) -> None:
        self.http_status = http_status
        self.code = code
        self.message = message
        super().__init__(f"{http_status} {code}: {message}")


class SipError(RcmlRouterError):
    """A SIP-facing error: the request is answered with ``sip_status`` and a Reason header."""

    sip_status = 500
    default_reason = "Server Internal Error"

    def __init__(self, reason: str | None = None, sip_status: int | None = None) -> None:
        if sip_status is not None:
            self.sip_status = sip_status
        self.reason = reason or self.default_reason
        super().__init__(f"{self.sip_status} {self.reason}")


class SipParseError(SipError):
    """The message is malformed."""

    sip_status = 400
    default_reason = "Bad Request"


class RouteNotFoundError(SipError):
    """No provisioned number matches the dialed string."""

    sip_status = 404
    default_reason = "No number matches the dialed string"


class AccountSuspendedError(SipError):
    """The matched number belongs to an account that is not active."""

    sip_status = 403
    default_reason = "Account suspended"


class OverloadError(SipError):
    """Too many transactions in flight, or the daemon is draining."""

    sip_status = 503
    default_reason = "Service Unavailable"

    def __init__(self, reason: str | None = None, retry_after: int = 5) -> None:
        self.retry_after = retry_after
        super().__init__(reason)


class RcmlError(RcmlRouterError):
    """RCML could not be obtained or executed.

    ``error_code`` is the Twilio error code posted to the fallback URL as ``ErrorCode``.
    """

    error_code = 12100

    def __init__(self, message: str, error_code: int | None = None, url: str | None = None) -> None:
        if error_code is not None:
            self.error_code = error_code
        self.url = url
        super().__init__(message)


class FetchError(RcmlError):
    """The HTTP fetch failed. ``http_status`` is set when the server answered."""

    error_code = 11200

    def __init__(
        self,
        message: str,
        error_code: int | None = None,
        url: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.http_status = http_status
        super().__init__(message, error_code, url)


class RcmlParseError(RcmlError):
    """The document is not valid RCML."""

    error_code = 12100


class MediaError(RcmlError):
    """Audio for a media verb could not be fetched, decoded or synthesised."""

    error_code = 12300


class StreamRefusedError(RcmlRouterError):
    """A media stream cannot be started: the call has no media of ours (21220: not in
    progress), too many streams (31940), or a name already in use (31941)."""

    def __init__(self, message: str, error_code: int) -> None:
        self.error_code = error_code
        super().__init__(message)
