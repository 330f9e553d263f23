"""The pure parts of inbound MESSAGE: body checks, segment counting, parameters, dedupe map."""

from __future__ import annotations

import asyncio

import pytest

from rcmlrouter.errors import SipError
from rcmlrouter.messaging.accept import RecentMessages, content_type, dedupe_key, message_text
from rcmlrouter.messaging.params import message_params, num_segments, x_headers
from rcmlrouter.sip.message import SipRequest
from rcmlrouter.store.records import MessageRecord


def request(body: bytes, ctype: str | None = "text/plain") -> SipRequest:
    message = SipRequest("MESSAGE", "sip:1234@example.com")
    message.headers = [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1"),
        ("From", "<sip:a@example.com>;tag=1"),
        ("To", "<sip:1234@example.com>"),
        ("Call-ID", "abc"),
        ("CSeq", "7 MESSAGE"),
        ("X-Carrier", "acme"),
    ]
    if ctype is not None:
        message.headers.append(("Content-Type", ctype))
    message.body = body
    return message


@pytest.mark.parametrize(
    ("ctype", "status"),
    [
        ("application/json", 415),
        (None, 415),
        ("text/html", 415),
        ("text/plain;charset=x-nope", 415),
    ],
)
def test_wrong_content_type_is_415(ctype: str | None, status: int) -> None:
    with pytest.raises(SipError) as caught:
        message_text(request(b"hi", ctype), "udp")
    assert caught.value.sip_status == status


def test_text_plain_with_charset() -> None:
    assert message_text(request("héllo".encode(), 'Text/Plain; charset="UTF-8"'), "udp") == "héllo"
    latin = "héllo".encode("latin-1")
    assert message_text(request(latin, "text/plain;charset=ISO-8859-1"), "udp") == "héllo"
    with pytest.raises(SipError) as caught:
        message_text(request(latin, "text/plain"), "udp")
    assert caught.value.sip_status == 400


def test_empty_and_oversize() -> None:
    with pytest.raises(SipError) as caught:
        message_text(request(b""), "udp")
    assert caught.value.sip_status == 400
    assert message_text(request(b"x" * 1300), "udp") == "x" * 1300
    with pytest.raises(SipError) as caught:
        message_text(request(b"x" * 1301), "udp")
    assert caught.value.sip_status == 413
    assert len(message_text(request(b"x" * 1301), "tcp")) == 1301
    with pytest.raises(SipError) as caught:
        message_text(request(b"x" * 65537), "tcp")
    assert caught.value.sip_status == 413


def test_content_type_parsing() -> None:
    assert content_type("text/plain") == ("text/plain", "utf-8")
    assert content_type(" TEXT/PLAIN ; format=flowed; charset=us-ascii") == (
        "text/plain",
        "us-ascii",
    )


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters: two septets each
        ("€" * 81, 2),
        ("é" * 160, 1),  # in the GSM basic table
        ("ç" * 70, 1),  # not GSM-7 (only Ç is): UCS-2
        ("ç" * 71, 2),
        ("😀" * 35, 1),  # surrogate pairs: two UTF-16 units each
        ("😀" * 36, 2),
    ],
)
def test_num_segments(body: str, segments: int) -> None:
    assert num_segments(body) == segments


def test_params_both_names_and_headers() -> None:
    req = request(b"hi")
    record = MessageRecord(
        "SM" + "1" * 32, "AC1", "PN1", "alice", "+15551234567", "hi", "inbound", "accepted", 0.0,
        sip_headers=x_headers(req.headers), dedupe_key=dedupe_key(req),
    )  # fmt: skip
    params = message_params(record)
    assert params["SmsSid"] == params["MessageSid"] == record.sid
    assert params["SipHeader_X-Carrier"] == "acme"
    assert (params["NumMedia"], params["NumSegments"], params["SmsStatus"]) == (
        "0",
        "1",
        "received",
    )
    assert params["Direction"] == "inbound" and params["To"] == "+15551234567"
    assert record.dedupe_key == "abc 7"


async def test_recent_messages_expire() -> None:
    recent: RecentMessages[None] = RecentMessages(seconds=0.05, size=3)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    recent.add("a", done)
    assert recent.get("a") is done
    await asyncio.sleep(0.06)
    assert recent.get("a") is None
    for key in "bcde":
        recent.add(key, done)
    assert len(recent) == 3 and recent.get("b") is None
