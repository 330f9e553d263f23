"""Fetch RCML from webhooks, with fallback, URL-fragment overrides and signed callbacks (SPEC §3).

One shared :class:`aiohttp.ClientSession` (see :func:`create_webhook_session`) and, by default,
one :class:`~rcmlrouter.rcml.keepalive.KeepAliveClient` (``[webhooks] client``) are injected into
:class:`RcmlFetcher`; nothing here opens a session per request. Transport failures become
:class:`~rcmlrouter.errors.FetchError` with a Twilio ``error_code``
(:mod:`rcmlrouter.rcml.fetch_errors`).

URL-fragment overrides are parsed by :mod:`rcmlrouter.rcml.overrides` (re-exported here).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver
from yarl import URL

from rcmlrouter.errors import FetchError, RcmlError
from rcmlrouter.rcml.egress import (
    DenyingResolver,
    DenyList,
    deny_literal_middleware,
)
from rcmlrouter.rcml.fetch_errors import STALE, TRANSPORT_ERRORS, HttpStatusError, translate
from rcmlrouter.rcml.keepalive import (
    KeepAliveClient,
    LaneResponse,
    TooLarge,
)
from rcmlrouter.rcml.model import Document
from rcmlrouter.rcml.overrides import (
    RETRY_TOKENS,
    FetchTimeouts,
    parse_url_overrides,
    url_override_problems,
)
from rcmlrouter.rcml.parse import parse_rcml
from rcmlrouter.rcml.signing import SIGNATURE_HEADERS, compute_signature

log = structlog.get_logger(__name__)

__all__ = [
    "RETRY_TOKENS",
    "FetchOutcome",
    "FetchTimeouts",
    "FetchedDocument",
    "RcmlFetcher",
    "WebhookTarget",
    "create_webhook_session",
    "parse_url_overrides",
    "url_override_problems",
    "webhook_failures",
]

XML_CONTENT_TYPES = frozenset({"text/xml", "application/xml"})
_CHUNK = 65536
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~-]*")


DocumentCheck = Callable[[Document], None]
"""Refuses a parsed document by raising ``RcmlError`` (``RcmlFetcher.fetch``'s ``check``)."""


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A webhook URL (may carry a ``#`` override fragment) and its method."""

    url: str
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class FetchedDocument:
    """A fetched RCML document; ``url`` is the requested URL without fragment or GET params."""

    url: str
    document: Document
    status: int


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """The document to run, where it came from, and the failures on the way (for notifications)."""

    document: Document
    url: str
    used_fallback: bool
    errors: tuple[RcmlError, ...] = ()


@functools.lru_cache(maxsize=256)
def _client_timeout(timeouts: FetchTimeouts) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.read
    )


def _form_encode(params: Mapping[str, str], quote_via: Callable[[str, str], str]) -> str:
    """``urlencode`` with a fast path for the common already-safe names and values."""
    safe = _URL_SAFE.fullmatch
    return "&".join(
        [
            (name if safe(name) else quote_via(name, ""))
            + "="
            + (value if safe(value) else quote_via(value, ""))
            for name, value in params.items()
        ]
    )


def webhook_failures(exc: BaseException) -> tuple[RcmlError, ...]:
    """The failures behind an error raised by ``fetch_with_fallback``: primary, then fallback."""
    failures: list[RcmlError] = []
    if isinstance(exc, RcmlError):
        failures.append(exc)
        if isinstance(exc.__cause__, RcmlError):
            failures.append(exc.__cause__)
    return tuple(failures)


# --- the fetcher -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _PreparedRequest:
    method: str
    target_url: str  # as configured, without fragment and GET params (ErrorUrl, records)
    url: URL  # what goes on the wire (GET params included), already encoded
    data: bytes | None
    headers: dict[str, str]
    timeouts: FetchTimeouts


class RcmlFetcher:
    """Fetches and parses RCML; posts signed callbacks. Safe to share between all calls."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        defaults: FetchTimeouts,
        *,
        max_body: int = 1 << 20,
        max_redirects: int = 5,
        user_agent: str = "rcmlrouter",
        lane: KeepAliveClient | None = None,
    ) -> None:
        """``lane``: send fetches and callbacks with the keep-alive client instead of aiohttp."""
        self._session = session
        self._lane = lane
        self._max_redirects = max_redirects
        self._defaults = defaults
        self._max_body = max_body
        # aiohttp raises when the N-th redirect *arrives*; +1 lets ``max_redirects`` be followed.
        self._aiohttp_max_redirects = max_redirects + 1
        self._user_agent = user_agent

    async def fetch(
        self,
        url: str,
        method: str,
        params: Mapping[str, str],
        auth_token: str,
        check: DocumentCheck | None = None,
    ) -> FetchedDocument:
        """Request ``url`` and parse the RCML; raise ``FetchError`` or ``RcmlParseError``.

        ``check`` may refuse a valid document (e.g. a voice verb in an SMS document) by raising
        ``RcmlError``: that is a failure of this fetch like a parse error (fallback, 12100).
        """
        request = self._prepare(url, method, params, auth_token, self._defaults)
        status, final_url, body = await self._perform(request)
        try:
            document = parse_rcml(body, final_url)
            if check is not None:
                check(document)
        except RcmlError as exc:
            exc.url = request.target_url
            raise
        return FetchedDocument(request.target_url, document, status)

    async def fetch_with_fallback(
        self,
        primary: WebhookTarget,
        fallback: WebhookTarget | None,
        params: Mapping[str, str],
        auth_token: str,
        check: DocumentCheck | None = None,
    ) -> FetchOutcome:
        """Fetch ``primary``; on failure fetch ``fallback`` with ``ErrorCode`` and ``ErrorUrl``.

        If both fail (or there is no fallback) the primary's error is raised, its ``__cause__``
        being the fallback's error; :func:`webhook_failures` lists both.
        """
        try:
            fetched = await self.fetch(primary.url, primary.method, params, auth_token, check)
        except RcmlError as primary_error:
            if fallback is None:
                raise
            error_url = primary_error.url or primary.url.partition("#")[0]
            fallback_params = {
                **params,
                "ErrorCode": str(primary_error.error_code),
                "ErrorUrl": error_url,
            }
            log.info("webhook.fallback", url=error_url, error_code=primary_error.error_code)
            try:
                fetched = await self.fetch(
                    fallback.url, fallback.method, fallback_params, auth_token, check
                )
            except RcmlError as fallback_error:
                raise primary_error from fallback_error
            return FetchOutcome(fetched.document, fetched.url, True, (primary_error,))
        return FetchOutcome(fetched.document, fetched.url, False, ())

    async def post_callback(
        self,
        url: str,
        method: str,
        params: Mapping[str, str],
        auth_token: str,
        timeouts: FetchTimeouts | None = None,
    ) -> int:
        """Send a signed callback and return the HTTP status (any status; the body is discarded).

        One attempt: the callback outbox owns retries. Raises ``FetchError`` on connection,
        timeout and protocol failures.
        """
        request = self._prepare(url, method, params, auth_token, timeouts or self._defaults)
        if self._lane is not None:
            try:
                return (await self._lane_request(self._lane, request, discard=True)).status
            except TRANSPORT_ERRORS as exc:
                raise translate(exc, request.method, request.target_url)[0] from exc
        try:
            async with self._request(request) as response:
                await self._read_body(response, request, discard=True)
                return response.status
        except TRANSPORT_ERRORS as exc:
            raise translate(exc, request.method, request.target_url)[0] from exc

    def _prepare(
        self,
        url: str,
        method: str,
        params: Mapping[str, str],
        auth_token: str,
        defaults: FetchTimeouts,
    ) -> _PreparedRequest:
        target_url, timeouts = parse_url_overrides(url, defaults)
        verb = method.strip().upper()
        if verb not in ("GET", "POST"):
            raise FetchError(f"invalid webhook method {method!r}", 11200, target_url)
        try:
            parsed = URL(target_url)
        except (ValueError, TypeError) as exc:
            raise FetchError(f"invalid webhook URL {target_url!r}", 11200, target_url) from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise FetchError(f"webhook URL must be http(s): {target_url!r}", 11200, target_url)
        wire_url = str(parsed)
        headers = {"User-Agent": self._user_agent}
        data: bytes | None = None
        if verb == "GET":
            if params:
                joiner = "&" if "?" in wire_url else "?"
                if wire_url.endswith(("?", "&")):
                    joiner = ""
                wire_url += joiner + _form_encode(params, quote)
            signature = compute_signature(wire_url, (), auth_token)
        else:
            data = _form_encode(params, quote_plus).encode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            signature = compute_signature(wire_url, params, auth_token)
        for header in SIGNATURE_HEADERS:
            headers[header] = signature
        return _PreparedRequest(
            verb, target_url, URL(wire_url, encoded=True), data, headers, timeouts
        )

    def _request(self, request: _PreparedRequest) -> aiohttp.client._RequestContextManager:
        return self._session.request(
            request.method,
            request.url,
            data=request.data,
            headers=request.headers,
            timeout=_client_timeout(request.timeouts),
            max_redirects=self._aiohttp_max_redirects,
        )

    async def _perform(self, request: _PreparedRequest) -> tuple[int, str, bytes]:
        """Send with retries; return status, final URL and body, or raise ``FetchError``."""
        attempt = 0
        stale_retried = False
        while True:
            try:
                return await self._send(request)
            except TRANSPORT_ERRORS as exc:
                error, token = translate(exc, request.method, request.target_url)
                if token == STALE and not stale_retried:
                    stale_retried = True
                    continue
                retry_on = request.timeouts.retry_on
                retry = "all" in retry_on or (token is not None and token in retry_on)
                if attempt >= request.timeouts.retries or not retry:
                    raise error from exc
                attempt += 1
                log.info("webhook.retry", url=request.target_url, attempt=attempt, error=str(error))

    def _lane_request(
        self, lane: KeepAliveClient, request: _PreparedRequest, *, discard: bool
    ) -> Awaitable[LaneResponse]:
        timeouts = request.timeouts
        return lane.request(
            request.method,
            request.url,
            request.headers,
            request.data,
            connect=timeouts.connect,
            read=timeouts.read,
            total=timeouts.total,
            max_body=self._max_body,
            max_redirects=self._max_redirects,
            discard=discard,
        )

    async def _send(self, request: _PreparedRequest) -> tuple[int, str, bytes]:
        if self._lane is not None:
            try:
                answer = await self._lane_request(self._lane, request, discard=False)
            except TooLarge as exc:
                raise self._too_large(request) from exc
            if not 200 <= answer.status < 300:
                raise HttpStatusError(answer.status)
            if answer.content_type not in XML_CONTENT_TYPES:
                raise self._wrong_type(request, answer.content_type)
            return answer.status, answer.url, answer.body
        async with self._request(request) as response:
            if not 200 <= response.status < 300:
                raise HttpStatusError(response.status)
            if response.content_type not in XML_CONTENT_TYPES:
                raise self._wrong_type(request, response.content_type)
            body = await self._read_body(response, request, discard=False)
            return response.status, str(response.url), body

    async def _read_body(
        self, response: aiohttp.ClientResponse, request: _PreparedRequest, *, discard: bool
    ) -> bytes:
        """Read at most ``max_body`` (decoded) bytes; refuse bigger RCML, truncate discards."""
        length = response.content_length
        if not discard and length is not None and length > self._max_body:
            raise self._too_large(request)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > self._max_body:
                if discard:
                    return b""  # the connection is closed on release instead of reused
                raise self._too_large(request)
            if not discard:
                chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _wrong_type(request: _PreparedRequest, content_type: str) -> FetchError:
        return FetchError(
            f"{request.method} {request.target_url} answered content type "
            f"{content_type!r}; expected text/xml or application/xml",
            12300,
            request.target_url,
        )

    def _too_large(self, request: _PreparedRequest) -> FetchError:
        return FetchError(
            f"{request.method} {request.target_url} answered more than {self._max_body} bytes",
            11206,
            request.target_url,
        )


def create_webhook_session(
    *,
    pool_size: int = 200,
    keepalive_timeout: float = 4.0,
    deny: DenyList | None = None,
    resolver: AbstractResolver | None = None,
) -> aiohttp.ClientSession:
    """The one shared webhook session: pooled keep-alive connector, no cookie jar.

    ``keepalive_timeout`` stays below the shortest common server idle timeout (Node.js: 5 s) so
    that we, not the server, close idle connections; under load connections never sit idle.

    Cookies are never stored: one session serves every account, and a cookie set by one
    account's webhook must not reach another's. Call inside the running loop; the caller closes it.

    ``deny`` (``webhooks.deny_networks``) is checked on every connection, redirects included,
    after DNS resolution by ``resolver`` (default ``getaddrinfo``; see
    :mod:`rcmlrouter.rcml.egress`).
    """
    connector = aiohttp.TCPConnector(
        limit=pool_size,
        keepalive_timeout=keepalive_timeout,
        ttl_dns_cache=60,
        resolver=DenyingResolver(deny, resolver) if deny else resolver,
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        middlewares=(deny_literal_middleware(deny),) if deny else (),
    )
