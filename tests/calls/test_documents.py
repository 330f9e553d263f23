"""documents.py: which URL a number's calls and REFERs use, and an inbound call's fetches with
the fallback bookkeeping (spent on the first failure, failures it absorbed noted), against a
scripted fetcher."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from rcmlrouter.calls.call_state import CallState
from rcmlrouter.calls.dialed_leg import DialedLeg
from rcmlrouter.calls.documents import (
    CallDocuments,
    LegDocuments,
    refer_url,
    voice_fallback,
    voice_url,
)
from rcmlrouter.calls.wiring import CallWiring
from rcmlrouter.errors import FetchError, RcmlError
from rcmlrouter.rcml.fetch import FetchOutcome, WebhookTarget
from rcmlrouter.rcml.model import DialSip, Document, Say
from rcmlrouter.store.records import Application
from support.call_parts import RecordingNotifications, RecordingOutbox, number, routed_state

DOC = Document((Say("hi"),))


class Directory:
    async def application(self, sid: str) -> Application:
        return Application(
            sid, "AC1", "app", f"http://app/{sid}/voice", "GET", None, "POST",
            None if sid == "AP-no-refer" else f"http://app/{sid}/refer", "PUT", 0.0, 0.0,
        )  # fmt: skip


async def test_an_application_wins_over_the_numbers_urls() -> None:
    directory: Any = Directory()
    own = number(voice_url="http://own/voice", refer_url="http://own/refer")
    assert await voice_url(directory, own) == WebhookTarget("http://own/voice", "POST")
    assert await refer_url(directory, own) == WebhookTarget("http://own/refer", "POST")
    app = number(voice_url="http://own/voice", voice_application_sid="AP1")
    assert await voice_url(directory, app) == WebhookTarget("http://app/AP1/voice", "GET")
    refer_app = number(refer_url="http://own/refer", refer_application_sid="AP-no-refer")
    assert await refer_url(directory, refer_app) is None  # the application has none: none
    assert await voice_url(directory, number()) is None


def test_the_voice_fallback() -> None:
    assert voice_fallback(None) is None and voice_fallback(number()) is None
    target = voice_fallback(number(voice_fallback_url="http://fb", voice_fallback_method="GET"))
    assert target == WebhookTarget("http://fb", "GET")


@dataclass
class ScriptedFetcher:
    """``fetch_with_fallback`` answering from ``script``: an outcome or an error per call."""

    script: list[FetchOutcome | RcmlError]
    calls: list[tuple[WebhookTarget, WebhookTarget | None, dict[str, str], str]] = field(
        default_factory=list
    )

    async def fetch_with_fallback(
        self,
        primary: WebhookTarget,
        fallback: WebhookTarget | None,
        params: Mapping[str, str],
        auth_token: str,
        check: Any = None,
    ) -> FetchOutcome:
        self.calls.append((primary, fallback, dict(params), auth_token))
        answer = self.script.pop(0)
        if isinstance(answer, RcmlError):
            raise answer
        return answer


def call_documents(
    fetcher: ScriptedFetcher, **number_fields: Any
) -> tuple[CallDocuments, RecordingNotifications]:
    state = routed_state(**number_fields)
    notifications = RecordingNotifications()
    services: Any = SimpleNamespace(fetcher=fetcher, notifications=notifications)
    wiring = CallWiring(services, None, transferred=None)  # type: ignore[arg-type]
    return CallDocuments(state, wiring), notifications


async def test_the_first_failure_goes_to_the_fallback_once_per_call() -> None:
    absorbed = FetchError("503 from primary", 11200, "http://primary/a", http_status=503)
    fetcher = ScriptedFetcher(
        [
            FetchOutcome(DOC, "http://fb", used_fallback=True, errors=(absorbed,)),
            FetchOutcome(DOC, "http://primary/b", used_fallback=False),
        ]
    )
    documents, notifications = call_documents(fetcher, voice_fallback_url="http://fb")
    state: CallState = documents.state
    assert await documents.fetch("http://primary/a", "POST", {}) == DOC
    assert await documents.fetch("http://primary/b", "GET", {"Digits": "12"}) == DOC
    (first, fallback, params, token), (second, spent, params2, _) = fetcher.calls
    assert first == WebhookTarget("http://primary/a", "POST")
    assert fallback == WebhookTarget("http://fb", "POST") and spent is None
    assert token == "token" and params["CallStatus"] == "ringing"
    assert second == WebhookTarget("http://primary/b", "GET") and params2["Digits"] == "12"
    assert state.fetches.urls == ["http://primary/a", "http://fb", "http://primary/b"]
    assert state.fetches.used_fallback
    assert [(n.error_code, n.request_url, n.call_sid) for n in notifications.added] == [
        (11200, "http://primary/a", state.call_sid)
    ]


async def test_a_failure_the_fallback_did_not_absorb_is_raised_and_recorded() -> None:
    fetcher = ScriptedFetcher([FetchError("refused", 11205, "http://primary")])
    documents, notifications = call_documents(fetcher, voice_fallback_url="http://fb")
    with pytest.raises(FetchError):
        await documents.fetch("http://primary", "POST", {})
    assert documents.state.fetches.urls == ["http://primary", "http://fb"]
    assert documents.state.fetches.used_fallback and notifications.added == []


async def test_without_a_fallback_nothing_is_spent() -> None:
    fetcher = ScriptedFetcher([FetchError("refused", 11205, "http://primary")])
    documents, _ = call_documents(fetcher)
    with pytest.raises(FetchError):
        await documents.fetch("http://primary", "POST", {})
    assert fetcher.calls[0][1] is None
    assert documents.state.fetches.urls == ["http://primary"]
    assert not documents.state.fetches.used_fallback


async def test_a_transferred_calls_documents_carry_the_legs_and_the_transfers_parameters() -> None:
    fetcher = ScriptedFetcher([FetchOutcome(DOC, "http://app/next", used_fallback=False)])
    state = routed_state(voice_fallback_url="http://fb")
    outbox: Any = RecordingOutbox()
    leg = DialedLeg(DialSip("sip:bob@example.net"), state, "+14155550100", outbox)
    leg.to = "bob"
    leg.call = SimpleNamespace(ended=SimpleNamespace(done=lambda: False))  # type: ignore[assignment]
    wiring: Any = SimpleNamespace(services=SimpleNamespace(fetcher=fetcher))
    documents = LegDocuments(leg, state, wiring, {"ReferTarget": "200", "Transferee": "bob"})
    assert await documents.fetch("http://app/next", "POST", {"Digits": "1"}) == DOC
    [(target, fallback, params, token)] = fetcher.calls
    assert target == WebhookTarget("http://app/next", "POST")
    assert fallback is None and token == "token"
    assert params["CallSid"] == leg.sid and params["ParentCallSid"] == state.call_sid
    assert params["Direction"] == "outbound-dial" and params["CallStatus"] == "in-progress"
    assert (params["ReferTarget"], params["Transferee"], params["Digits"]) == ("200", "bob", "1")
    assert state.fetches.urls == []  # the original call's record is not the leg's
