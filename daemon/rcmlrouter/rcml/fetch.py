"""Fetch RCML from webhooks, with fallback, URL-fragment overrides and signed callbacks (SPEC §3).

One shared :class:`~rcmlrouter.httpclient.client.HttpClient` (the daemon's one HTTP client path:
webhooks, status callbacks and ``<Play>`` files) is injected into :class:`RcmlFetcher`. Requests
are prepared and signed by :mod:`rcmlrouter.rcml.webhook_request`; transport failures become
:class:`~rcmlrouter.errors.FetchError` with a Twilio ``error_code``
(:mod:`rcmlrouter.rcml.fetch_errors`). URL-fragment overrides are parsed by
:mod:`rcmlrouter.rcml.overrides` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

from rcmlrouter.errors import FetchError, RcmlError
from rcmlrouter.httpclient.client import HttpClient, HttpResponse
from rcmlrouter.httpclient.failures import TooLarge
from rcmlrouter.rcml.fetch_errors import TRANSPORT_ERRORS, HttpStatusError, translate
from rcmlrouter.rcml.model import Document
from rcmlrouter.rcml.overrides import (
    RETRY_TOKENS,
    FetchTimeouts,
    parse_url_overrides,
    url_override_problems,
)
from rcmlrouter.rcml.parse import parse_rcml
from rcmlrouter.rcml.webhook_request import WebhookRequest, prepare_request

log = structlog.get_logger(__name__)

__all__ = [
    "RETRY_TOKENS",
    "FetchOutcome",
    "FetchTimeouts",
    "FetchedDocument",
    "RcmlFetcher",
    "WebhookTarget",
    "parse_url_overrides",
    "url_override_problems",
    "webhook_failures",
]

XML_CONTENT_TYPES = frozenset({"text/xml", "application/xml"})

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


def webhook_failures(exc: BaseException) -> tuple[RcmlError, ...]:
    """The failures behind an error raised by ``fetch_with_fallback``: primary, then fallback."""
    failures: list[RcmlError] = []
    if isinstance(exc, RcmlError):
        failures.append(exc)
        if isinstance(exc.__cause__, RcmlError):
            failures.append(exc.__cause__)
    return tuple(failures)


class RcmlFetcher:
    """Fetches and parses RCML; posts signed callbacks. Safe to share between all calls."""

    def __init__(
        self,
        client: HttpClient,
        defaults: FetchTimeouts,
        *,
        max_body: int = 1 << 20,
        max_redirects: int = 5,
        user_agent: str = "rcmlrouter",
    ) -> None:
        self._client = client
        self._defaults = defaults
        self._max_body = max_body
        self._max_redirects = max_redirects
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
        answer = await self._perform(request)
        try:
            document = parse_rcml(answer.body, answer.url)
            if check is not None:
                check(document)
        except RcmlError as exc:
            exc.url = request.target_url
            raise
        return FetchedDocument(request.target_url, document, answer.status)

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
        try:
            return (await self._send(request, discard=True)).status
        except TRANSPORT_ERRORS as exc:
            raise translate(exc, request.method, request.target_url)[0] from exc

    def _prepare(
        self,
        url: str,
        method: str,
        params: Mapping[str, str],
        auth_token: str,
        defaults: FetchTimeouts,
    ) -> WebhookRequest:
        return prepare_request(url, method, params, auth_token, defaults, self._user_agent)

    async def _perform(self, request: WebhookRequest) -> HttpResponse:
        """Send with the URL's retry policy; return the 2xx XML answer or raise ``FetchError``."""
        attempt = 0
        while True:
            try:
                return self._checked(request, await self._send(request, discard=False))
            except TRANSPORT_ERRORS as exc:
                error, token = translate(exc, request.method, request.target_url)
                retry_on = request.timeouts.retry_on
                retry = "all" in retry_on or (token is not None and token in retry_on)
                if attempt >= request.timeouts.retries or not retry:
                    raise error from exc
                attempt += 1
                log.info("webhook.retry", url=request.target_url, attempt=attempt, error=str(error))

    async def _send(self, request: WebhookRequest, *, discard: bool) -> HttpResponse:
        timeouts = request.timeouts
        try:
            return await self._client.request(
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
        except TooLarge as exc:
            raise FetchError(
                f"{request.method} {request.target_url} answered more than {self._max_body} bytes",
                11206,
                request.target_url,
            ) from exc

    @staticmethod
    def _checked(request: WebhookRequest, answer: HttpResponse) -> HttpResponse:
        if not 200 <= answer.status < 300:
            raise HttpStatusError(answer.status)
        if answer.content_type not in XML_CONTENT_TYPES:
            raise FetchError(
                f"{request.method} {request.target_url} answered content type "
                f"{answer.content_type!r}; expected text/xml or application/xml",
                12300,
                request.target_url,
            )
        return answer
