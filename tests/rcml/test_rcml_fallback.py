"""rcml/fallback.py: the fallback bookkeeping shared by calls and messages, against a scripted
``fetch_with_fallback`` (the fetcher itself is tested on loopback in test_rcml_fetch.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from rcmlrouter.errors import FetchError
from rcmlrouter.rcml.fallback import FetchLog, fetch_once_with_fallback
from rcmlrouter.rcml.fetch import FetchOutcome, WebhookTarget
from rcmlrouter.rcml.model import Document, Sms

DOC = Document((Sms("hi"),))
PRIMARY, FALLBACK = WebhookTarget("http://p/sms"), WebhookTarget("http://f/sms", "GET")


class Fetcher:
    def __init__(self, *answers: FetchOutcome | FetchError) -> None:
        self.answers = list(answers)
        self.seen: list[tuple[WebhookTarget | None, Any]] = []

    async def fetch_with_fallback(
        self,
        primary: WebhookTarget,
        fallback: WebhookTarget | None,
        params: Mapping[str, str],
        auth_token: str,
        check: Any = None,
    ) -> FetchOutcome:
        self.seen.append((fallback, check))
        answer = self.answers.pop(0)
        if isinstance(answer, FetchError):
            raise answer
        return answer


def check(document: Document) -> None: ...


async def test_the_fallback_is_spent_on_the_first_failure() -> None:
    error = FetchError("HTTP 500", 11200, "http://p/sms", http_status=500)
    fetcher = Fetcher(FetchOutcome(DOC, FALLBACK.url, True, (error,)), error)
    log, notes = FetchLog(), []
    notify: Any = lambda code, message, url=None: notes.append((code, url))  # noqa: E731
    args = (PRIMARY, FALLBACK, {}, "token", notify, check)
    assert await fetch_once_with_fallback(fetcher, log, *args) == DOC
    with pytest.raises(FetchError):
        await fetch_once_with_fallback(fetcher, log, *args)
    assert fetcher.seen == [(FALLBACK, check), (None, check)]
    assert log.urls == ["http://p/sms", "http://f/sms", "http://p/sms"] and log.used_fallback
    assert notes == [(11200, "http://p/sms")]
