"""SMS documents: <Sms>/<Message> send, <Redirect> and action documents continue, voice verbs
are RCML errors (12100). With a fake sender, and once with the real sender and a SIPp UAS."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from outbound_harness import SippUas, requires_sipp, start_sender

from rcmlrouter.errors import RcmlError
from rcmlrouter.messaging.document import check_message_document, run_message_document
from rcmlrouter.rcml.model import Document, Pause, Redirect, Say, Sms
from rcmlrouter.rcml.parse import parse_rcml
from rcmlrouter.rcml.ports import MAX_REDIRECTS, SmsOrigin, SmsResult


@dataclass
class Session:
    """A received message (what the inbound side implements)."""

    documents: dict[str, Document] = field(default_factory=dict)
    sid: str = "SM" + "9" * 32
    account_sid: str = "AC" + "1" * 32
    auth_token: str = "token"
    default_to: str = "+15105551111"
    default_from: str = "+15105550000"
    fetched: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    notes: list[tuple[int, str]] = field(default_factory=list)

    async def fetch(self, url: str, method: str, extra: Mapping[str, str]) -> Document:
        self.fetched.append((url, method, dict(extra)))
        return self.documents[url]

    def notify(self, error_code: int, message: str, url: str | None = None) -> None:
        self.notes.append((error_code, message))


@dataclass
class Sender:
    status: str = "sent"
    error_code: int | None = None
    sent: list[tuple[Sms, SmsOrigin]] = field(default_factory=list)

    async def send(self, verb: Sms, origin: SmsOrigin) -> SmsResult:
        self.sent.append((verb, origin))
        return SmsResult(f"SM{len(self.sent):032x}", self.status, self.error_code)


async def test_each_message_is_sent_with_the_reply_defaults() -> None:
    session, sender = Session(), Sender()
    document = parse_rcml(
        b"<Response><Message>one</Message><Sms to='+15105552222'>two</Sms></Response>"
    )
    await run_message_document(document, session, sender)
    assert [verb.body for verb, _ in sender.sent] == ["one", "two"]
    origin = sender.sent[0][1]
    assert origin == SmsOrigin(
        session.account_sid, "+15105551111", "+15105550000", "outbound-reply", None
    )


async def test_action_document_replaces_the_rest() -> None:
    session = Session({"http://app/status": Document((Sms(body="after"),))})
    sender = Sender("failed", 30006)
    first = Document((Sms(body="one", action="http://app/status"), Sms(body="skipped")))
    await run_message_document(first, session, sender)
    assert [verb.body for verb, _ in sender.sent] == ["one", "after"]
    (fetched,) = session.fetched
    assert fetched[0] == "http://app/status" and fetched[1] == "POST"
    assert fetched[2]["SmsStatus"] == "failed" and fetched[2]["ErrorCode"] == "30006"
    assert fetched[2]["SmsSid"] == fetched[2]["MessageSid"] == "SM" + "0" * 31 + "1"


async def test_redirect_continues_and_stops_the_current_document() -> None:
    session = Session({"http://app/next": Document((Sms(body="next"),))})
    sender = Sender()
    document = Document((Redirect("http://app/next", "GET"), Sms(body="never")))
    await run_message_document(document, session, sender)
    assert [verb.body for verb, _ in sender.sent] == ["next"]
    assert session.fetched == [("http://app/next", "GET", {})]


def test_voice_verbs_are_rcml_errors() -> None:
    check_message_document(Document((Sms(body="x"), Redirect("http://a/b"))))
    for verb in (Say("hi"), Pause(1)):
        with pytest.raises(RcmlError) as caught:
            check_message_document(Document((verb,)), "http://app/sms")
        assert caught.value.error_code == 12100
        assert caught.value.url == "http://app/sms"


async def test_a_fetched_voice_document_is_an_error_before_anything_runs() -> None:
    session = Session({"http://app/next": Document((Sms(body="no"), Say("voice")))})
    sender = Sender()
    with pytest.raises(RcmlError) as caught:
        await run_message_document(Document((Redirect("http://app/next"),)), session, sender)
    assert caught.value.error_code == 12100 and caught.value.url == "http://app/next"
    assert sender.sent == []


async def test_redirect_loops_are_bounded() -> None:
    loop = Document((Redirect("http://app/loop"),))
    session = Session({"http://app/loop": loop})
    with pytest.raises(RcmlError, match="redirects"):
        await run_message_document(loop, session, Sender())
    assert len(session.fetched) == MAX_REDIRECTS


@requires_sipp
@pytest.mark.timeout(30)
async def test_reply_reaches_a_sipp_uas_and_the_action_sees_sent(tmp_path: Path) -> None:
    sending = await start_sender(timeout=5.0)
    try:
        async with SippUas("uas_message_202.xml", tmp_path) as uas:
            session = Session({"http://app/status": Document()})
            session.default_to = f"sip:bob@127.0.0.1:{uas.port}"
            document = parse_rcml(
                b"<Response><Message action='http://app/status'><Body>Hello from rcmlrouter"
                b"</Body></Message></Response>"
            )
            await run_message_document(document, session, sending.sender)
            code, logs = await uas.finish()
    finally:
        await sending.endpoint.stop()
    assert code == 0, logs
    (fetched,) = session.fetched
    assert fetched[2]["SmsStatus"] == "sent" and "ErrorCode" not in fetched[2]
    assert sending.outbox.messages[-1].direction == "outbound-reply"


@requires_sipp
@pytest.mark.timeout(30)
async def test_reply_refused_with_488_reports_failed_at_the_action(tmp_path: Path) -> None:
    sending = await start_sender(timeout=5.0)
    try:
        async with SippUas("uas_message_488.xml", tmp_path) as uas:
            session = Session({"http://app/status": Document()})
            session.default_to = f"sip:bob@127.0.0.1:{uas.port}"
            document = Document((Sms(body="hi", action="http://app/status"),))
            await run_message_document(document, session, sending.sender)
            code, logs = await uas.finish()
    finally:
        await sending.endpoint.stop()
    assert code == 0, logs
    assert session.fetched[0][2]["SmsStatus"] == "failed"
    assert session.fetched[0][2]["ErrorCode"] == "30006"
