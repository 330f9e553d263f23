"""The fallback bookkeeping of one call or one message (SPEC §3.2), written once for both.

The first fetch failure of a call (or message) goes to its fallback URL; after that the fallback
is spent. Every URL fetched is kept for the record, and each failure the fallback absorbed is
recorded as a notification (a failure it did not absorb is raised to the caller, which records
it its own way). Which URL is primary and which is the fallback stays with the caller: the voice
side (``calls/documents.py``) and the SMS side (``messaging/processing.py``) pick them from
different fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from rcmlrouter.errors import RcmlError
from rcmlrouter.rcml.fetch import DocumentCheck, FetchOutcome, WebhookTarget
from rcmlrouter.rcml.model import Document


class FallbackFetcher(Protocol):
    """The fetcher's one operation used here (``RcmlFetcher.fetch_with_fallback``)."""

    async def fetch_with_fallback(
        self,
        primary: WebhookTarget,
        fallback: WebhookTarget | None,
        params: Mapping[str, str],
        auth_token: str,
        check: DocumentCheck | None = None,
    ) -> FetchOutcome: ...


class Notify(Protocol):
    def __call__(self, error_code: int, message: str, url: str | None = None) -> None: ...


@dataclass(slots=True)
class FetchLog:
    """The URLs one call or message fetched, in order, and whether its fallback was used."""

    urls: list[str] = field(default_factory=list)
    used_fallback: bool = False


async def fetch_once_with_fallback(
    fetcher: FallbackFetcher,
    log: FetchLog,
    primary: WebhookTarget,
    fallback: WebhookTarget | None,
    params: Mapping[str, str],
    auth_token: str,
    notify: Notify,
    check: DocumentCheck | None = None,
) -> Document:
    """Fetch ``primary``; ``fallback`` (unless ``log`` used one already) takes the first
    failure. ``log`` and ``notify`` are kept as the module says. Raises the primary's
    :class:`RcmlError` when nothing answered with a document."""
    if log.used_fallback:
        fallback = None
    log.urls.append(primary.url)
    try:
        outcome = await fetcher.fetch_with_fallback(primary, fallback, params, auth_token, check)
    except RcmlError:
        if fallback is not None:
            log.urls.append(fallback.url)
            log.used_fallback = True
        raise
    if outcome.used_fallback:
        assert fallback is not None
        log.used_fallback = True
        log.urls.append(fallback.url)
        for error in outcome.errors:
            notify(error.error_code, str(error), error.url)
    return outcome.document
