"""Outbound MESSAGE: addressing, the request, error codes, retransmission (raw UDP peer)."""

from __future__ import annotations

import asyncio

import pytest
from outbound_harness import start_sender

from rcmlrouter.messaging.delivery import (
    MessageTarget,
    TargetError,
    build_message,
    error_code_for,
    resolve_target,
)
from rcmlrouter.messaging.outbound import status_callback_params
from rcmlrouter.rcml.model import Sms
from rcmlrouter.rcml.ports import SmsOrigin
from rcmlrouter.sip.message import SipRequest, SipResponse
from rcmlrouter.sip.wire import parse_message

ORIGIN = SmsOrigin("AC" + "1" * 32, "+15105551111", "+15105550000", "outbound-call")


def test_sip_uri_goes_direct() -> None:
    target = resolve_target("sip:alice@127.0.0.1:5070;transport=TCP", "sip:gw.example.com")
    assert target == MessageTarget(
        "sip:alice@127.0.0.1:5070;transport=TCP",
        "sip:alice@127.0.0.1:5070",
        ("tcp", "127.0.0.1", 5070),
        False,
    )
    assert resolve_target("bob@[::1]", "").destination == ("udp", "::1", 5060)


def test_phone_number_goes_to_the_gateway() -> None:
    target = resolve_target("+15105559999", "sip:gw.example.com:5080;transport=tcp")
    assert target.request_uri == "sip:+15105559999@gw.example.com:5080;transport=tcp"
    assert target.to_uri == "sip:+15105559999@gw.example.com:5080"
    assert target.destination == ("tcp", "gw.example.com", 5080)
    assert target.via_gateway
    assert resolve_target("tel:+15105559999", "sip:10.0.0.1").destination == (
        "udp",
        "10.0.0.1",
        5060,
    )


@pytest.mark.parametrize(
    ("to", "gateway", "code"),
    [
        ("+15105559999", "", 21612),
        ("not a number", "sip:gw", 21211),
        ("sips:alice@example.com", "", 21211),
        ("sip:alice@example.com;transport=sctp", "", 21211),
        ("sip:@", "", 21211),
    ],
)
def test_unaddressable(to: str, gateway: str, code: int) -> None:
    with pytest.raises(TargetError) as caught:
        resolve_target(to, gateway)
    assert caught.value.error_code == code


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (None, 30003),
        (408, 30003),
        (480, 30003),
        (503, 30003),
        (404, 30005),
        (604, 30005),
        (488, 30006),
        (415, 30006),
        (403, 30007),
        (603, 30007),
        (407, 30007),
        (500, 30008),
        (302, 30008),
    ],
)
def test_error_codes(status: int | None, code: int) -> None:
    assert error_code_for(status) == code


def test_request_shape() -> None:
    target = resolve_target("sip:alice@127.0.0.1:5070", "")
    request = build_message(
        target, "sip:+15105550000@127.0.0.1", "tag1", "cid@x", 1, "héllo", "rcmlrouter"
    )
    request.headers.insert(0, ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx"))
    parsed = parse_message(request.serialize())  # what the transaction sends, Via stamped
    assert isinstance(parsed, SipRequest)
    assert parsed.method == "MESSAGE" and parsed.uri == "sip:alice@127.0.0.1:5070"
    assert parsed.get("From") == "<sip:+15105550000@127.0.0.1>;tag=tag1"
    assert parsed.get("To") == "<sip:alice@127.0.0.1:5070>"
    assert parsed.cseq == (1, "MESSAGE")
    assert parsed.content_type == "text/plain"
    assert parsed.body == "héllo".encode()


def test_status_callback_parameters() -> None:
    from rcmlrouter.store.records import MessageRecord

    record = MessageRecord(
        sid="SM" + "a" * 32,
        account_sid="AC" + "1" * 32,
        number_sid=None,
        from_="+15105550000",
        to="+15105551111",
        body="hi",
        direction="outbound-call",
        status="failed",
        date_created=0.0,
        error_code=30003,
    )
    params = status_callback_params(record)
    assert params["SmsStatus"] == params["MessageStatus"] == "failed"
    assert params["ErrorCode"] == "30003"
    assert params["SmsSid"] == params["MessageSid"] == record.sid
    assert (params["From"], params["To"], params["Body"]) == ("+15105550000", "+15105551111", "hi")
    assert params["AccountSid"] == record.account_sid and params["ApiVersion"]


async def test_no_gateway_fails_without_sending() -> None:
    sending = await start_sender()
    try:
        result = await sending.sender.send(Sms(body="hi", status_callback="http://a/cb"), ORIGIN)
    finally:
        await sending.endpoint.stop()
    assert (result.status, result.error_code) == ("failed", 21612)
    assert sending.outbox.statuses(result.sid) == ["failed"]  # never "sending"
    assert sending.outbox.messages[-1].to == "+15105551111"  # the default: the caller
    assert sending.outbox.events[0].params["ErrorCode"] == "21612"
    assert sending.notifications.items[0].error_code == 21612


async def test_too_long_body_fails_with_21617() -> None:
    sending = await start_sender()
    try:
        result = await sending.sender.send(Sms(to="sip:a@127.0.0.1", body="x" * 1601), ORIGIN)
    finally:
        await sending.endpoint.stop()
    assert (result.status, result.error_code) == ("failed", 21617)


class _Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))


async def test_udp_retransmits_until_answered() -> None:
    """Timer E: the MESSAGE is sent again (same branch) until a final response arrives."""
    sending = await start_sender()
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(_Peer, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        task = asyncio.create_task(
            sending.sender.send(Sms(to=f"sip:bob@127.0.0.1:{port}", body="hi"), ORIGIN)
        )
        copies = []
        for _ in range(3):
            data, addr = await asyncio.wait_for(peer.queue.get(), 2)
            copies.append(parse_message(data))
        first = copies[0]
        assert isinstance(first, SipRequest)
        assert all(
            isinstance(c, SipRequest) and c.top_via.branch == first.top_via.branch for c in copies
        )
        assert (first.get("From") or "").startswith("<sip:+15105550000@127.0.0.1>;tag=")
        response = SipResponse(
            202,
            "Accepted",
            [
                (name, value)
                for name, value in first.headers
                if name in ("Via", "From", "To", "Call-ID", "CSeq")
            ],
        )
        transport.sendto(response.serialize(), addr)
        result = await asyncio.wait_for(task, 2)
    finally:
        transport.close()
        await sending.endpoint.stop()
    assert result.status == "sent"
