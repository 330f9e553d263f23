"""Outbound MESSAGE over real sockets: a SIPp UAS (direct or as the SMS gateway) on loopback."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from outbound_harness import Sending, SippUas, free_port, requires_sipp, start_sender

from rcmlrouter.rcml.model import Sms
from rcmlrouter.rcml.ports import SmsOrigin

pytestmark = [requires_sipp, pytest.mark.timeout(30)]

BODY = "Hello from rcmlrouter"
REPLY = SmsOrigin(
    "AC" + "1" * 32, "+15105551111", "+15105550000", "outbound-reply", "PN" + "2" * 32
)


@pytest.fixture
async def sending() -> AsyncIterator[Sending]:
    started = await start_sender(timeout=5.0)
    yield started
    await started.endpoint.stop()


async def test_direct_sip_uri_reaches_the_uas_and_is_sent(tmp_path: Path, sending: Sending) -> None:
    async with SippUas("uas_message_202.xml", tmp_path) as uas:
        to = f"sip:bob@127.0.0.1:{uas.port}"
        verb = Sms(to=to, body=BODY, status_callback="http://app.example.com/sms-status")
        result = await sending.sender.send(verb, REPLY)
        code, logs = await uas.finish()
    assert code == 0, logs
    assert (result.status, result.error_code) == ("sent", None)
    assert sending.outbox.statuses(result.sid) == ["sending", "sent"]
    final = sending.outbox.messages[-1]
    assert (final.to, final.from_, final.direction) == (to, "+15105550000", "outbound-reply")
    assert final.number_sid == REPLY.number_sid
    (event,) = sending.outbox.events
    assert (event.call_sid, event.sequence, event.url) == (
        result.sid,
        0,
        "http://app.example.com/sms-status",
    )
    assert event.params["SmsStatus"] == event.params["MessageStatus"] == "sent"
    assert event.params["SmsSid"] == event.params["MessageSid"] == result.sid
    assert event.params["Body"] == BODY and "ErrorCode" not in event.params
    assert not sending.notifications.items


async def test_tcp_transport(tmp_path: Path, sending: Sending) -> None:
    async with SippUas("uas_message_202.xml", tmp_path, transport="t1") as uas:
        to = f"sip:bob@127.0.0.1:{uas.port};transport=tcp"
        result = await sending.sender.send(Sms(to=to, body=BODY), REPLY)
        code, logs = await uas.finish()
    assert code == 0, logs
    assert result.status == "sent"


async def test_488_fails_with_30006(tmp_path: Path, sending: Sending) -> None:
    async with SippUas("uas_message_488.xml", tmp_path) as uas:
        verb = Sms(to=f"sip:bob@127.0.0.1:{uas.port}", body=BODY, status_callback="http://a/cb")
        result = await sending.sender.send(verb, REPLY)
        code, logs = await uas.finish()
    assert code == 0, logs
    assert (result.status, result.error_code) == ("failed", 30006)
    assert sending.outbox.statuses(result.sid) == ["sending", "failed"]
    assert sending.outbox.messages[-1].error_code == 30006
    (event,) = sending.outbox.events
    assert event.params["SmsStatus"] == "failed" and event.params["ErrorCode"] == "30006"
    (note,) = sending.notifications.items
    assert note.error_code == 30006 and "488" in note.message


async def test_absent_uas_fails_at_once_with_30003() -> None:
    """Nothing listens on the port: the ICMP port unreachable (IP_RECVERR) fails the MESSAGE
    at once instead of after Timer F."""
    sending = await start_sender(timeout=10.0)
    try:
        port = free_port()
        started = sending.endpoint.timers._loop.time()
        result = await sending.sender.send(Sms(to=f"sip:bob@127.0.0.1:{port}", body=BODY), REPLY)
        elapsed = sending.endpoint.timers._loop.time() - started
    finally:
        await sending.endpoint.stop()
    assert (result.status, result.error_code) == ("failed", 30003)
    assert elapsed < 1.0


async def test_silent_uas_times_out_with_30003() -> None:
    # Short Timer F (1.6 s) from the endpoint's timers; [sms] timeout stays longer.
    sending = await start_sender(timeout=10.0)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:  # takes, never answers
            hole.bind(("127.0.0.1", 0))
            started = sending.endpoint.timers._loop.time()
            to = f"sip:bob@127.0.0.1:{hole.getsockname()[1]}"
            result = await sending.sender.send(Sms(to=to, body=BODY), REPLY)
            elapsed = sending.endpoint.timers._loop.time() - started
    finally:
        await sending.endpoint.stop()
    assert (result.status, result.error_code) == ("failed", 30003)
    assert 1.5 <= elapsed < 5.0


async def test_gateway_407_challenge_is_answered(tmp_path: Path) -> None:
    async with SippUas("uas_message_407.xml", tmp_path) as uas:
        sending = await start_sender(
            gateway=f"sip:127.0.0.1:{uas.port};transport=udp",
            username="smsuser",
            password="smspass",
        )
        try:
            result = await sending.sender.send(Sms(to="+15105559999", body=BODY), REPLY)
        finally:
            await sending.endpoint.stop()
        code, logs = await uas.finish()
    assert code == 0, logs
    assert (result.status, result.error_code) == ("sent", None)
    assert sending.outbox.messages[-1].to == "+15105559999"


@pytest.mark.parametrize(("password", "status"), [("smspass", "sent"), ("wrong", "failed")])
async def test_gateway_401_digest_is_verified(tmp_path: Path, password: str, status: str) -> None:
    async with SippUas("uas_message_401_verify.xml", tmp_path) as uas:
        sending = await start_sender(
            gateway=f"sip:127.0.0.1:{uas.port}", username="smsuser", password=password
        )
        try:
            result = await sending.sender.send(Sms(to="+15105559999", body=BODY), REPLY)
        finally:
            await sending.endpoint.stop()
        code, logs = await uas.finish()
    assert code == 0, logs
    assert result.status == status
    if status == "failed":
        assert result.error_code == 30007


async def test_the_uas_checks_the_body(tmp_path: Path, sending: Sending) -> None:
    """The scenario's checks are real: another body fails the SIPp run."""
    async with SippUas("uas_message_202.xml", tmp_path) as uas:
        await sending.sender.send(Sms(to=f"sip:bob@127.0.0.1:{uas.port}", body="other"), REPLY)
        code, _ = await uas.finish()
    assert code != 0


async def test_challenge_without_credentials_fails(tmp_path: Path) -> None:
    async with SippUas("uas_message_407.xml", tmp_path) as uas:
        sending = await start_sender(gateway=f"sip:127.0.0.1:{uas.port}")
        try:
            result = await sending.sender.send(Sms(to="+15105559999", body=BODY), REPLY)
        finally:
            await sending.endpoint.stop()
    assert (result.status, result.error_code) == ("failed", 30007)
