"""``<Sms>`` in a voice document: sent through the injected channel; ``action`` continues."""

from __future__ import annotations

from collections.abc import Mapping

from rcmlrouter.rcml.execute import RcmlExecutor
from rcmlrouter.rcml.model import Document, Hangup, Pause, Sms
from rcmlrouter.rcml.ports import SmsChannel, SmsOrigin, SmsResult


class Leg:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.answered = False
        self.rejected = False

    async def answer(self) -> None:
        self.answered = True
        self.events.append("answer")

    def reject(self, status: int, reason: str) -> None:
        self.rejected = True

    async def hangup(self) -> None:
        self.events.append("hangup")

    async def pause(self, seconds: float) -> None:
        self.events.append(f"pause {seconds:g}")


class Source:
    def __init__(self, documents: dict[str, Document]) -> None:
        self.documents = documents
        self.fetched: list[tuple[str, str, dict[str, str]]] = []

    async def fetch(self, url: str, method: str, extra: Mapping[str, str]) -> Document:
        self.fetched.append((url, method, dict(extra)))
        return self.documents[url]


class Sender:
    def __init__(self, status: str = "sent", error_code: int | None = None) -> None:
        self.status = status
        self.error_code = error_code
        self.sent: list[tuple[Sms, SmsOrigin]] = []

    async def send(self, verb: Sms, origin: SmsOrigin) -> SmsResult:
        self.sent.append((verb, origin))
        return SmsResult(f"SM{len(self.sent):032x}", self.status, self.error_code)


ORIGIN = SmsOrigin(
    "AC1", default_to="+15105551111", default_from="+15105550000", direction="outbound-call"
)


async def test_sms_is_sent_without_answering_and_the_document_continues() -> None:
    sender, leg = Sender(), Leg()
    executor = RcmlExecutor(leg, Source({}), lambda *_: None, SmsChannel(sender, ORIGIN))
    await executor.run(Document((Sms(body="hi"), Pause(1))))
    assert [(verb.body, origin) for verb, origin in sender.sent] == [("hi", ORIGIN)]
    assert leg.events == ["answer", "pause 1", "hangup"]


async def test_sms_action_gets_the_status_and_replaces_the_document() -> None:
    sender, leg = Sender("failed", 30003), Leg()
    source = Source({"http://app/status": Document((Hangup(),))})
    executor = RcmlExecutor(leg, source, lambda *_: None, SmsChannel(sender, ORIGIN))
    verb = Sms(body="hi", action="http://app/status", method="GET")
    await executor.run(Document((verb, Pause(5))))
    assert source.fetched == [
        (
            "http://app/status",
            "GET",
            {
                "SmsSid": "SM" + "0" * 31 + "1",
                "MessageSid": "SM" + "0" * 31 + "1",
                "SmsStatus": "failed",
                "MessageStatus": "failed",
                "ErrorCode": "30003",
            },
        )
    ]
    assert leg.events == ["answer", "hangup"]  # the Pause after <Sms> never ran
    assert executor.report.redirects == 1


async def test_without_a_channel_sms_is_unsupported() -> None:
    notes: list[str] = []
    leg = Leg()
    executor = RcmlExecutor(leg, Source({}), lambda code, msg, *_: notes.append(f"{code} {msg}"))
    await executor.run(Document((Sms(body="hi"), Pause(1))))
    assert notes and notes[0].startswith("12200 <Sms>")
    assert leg.events == ["answer", "hangup"]
