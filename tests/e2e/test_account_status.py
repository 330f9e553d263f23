"""A suspended account's numbers answer 403 with a Reason to INVITE and MESSAGE; reactivated,
they route again at once (the API tells the call path's cache); closed, they are released (404).
"""

from __future__ import annotations

import socket
import uuid

import httpx
import pytest

from support.daemon import API_PREFIX, DaemonProcess
from support.rawsip import Message, RawUac, parse
from support.webhooks import Reply, WebhookServer

pytestmark = pytest.mark.e2e


def _message(port: int, user: str) -> Message:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", 0))
        local = sock.getsockname()[1]
        body = b"hello"
        head = (
            f"MESSAGE sip:{user}@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
            f"From: <sip:raw@127.0.0.1:{local}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:{user}@127.0.0.1:{port}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendto(head.encode() + body, ("127.0.0.1", port))
        sock.settimeout(5)
        data, _ = sock.recvfrom(65535)
        return parse(data)
    finally:
        sock.close()


def _invite_final(port: int, user: str) -> Message:
    uac = RawUac(port, user)
    try:
        uac.send(uac.invite())
        replies = uac.receive_until(lambda m: (m.status or 0) >= 200, 5)
        final = replies[-1]
        assert final.status is not None and final.status >= 200
        uac.send(uac.ack(final.header("To") or ""))
        return final
    finally:
        uac.close()


def _set_status(daemon: DaemonProcess, sid: str, status: str) -> None:
    url = f"http://127.0.0.1:{daemon.api_port}{API_PREFIX}/Accounts/{sid}.json"
    resp = httpx.post(url, data={"Status": status}, auth=(daemon.account_sid, daemon.auth_token))
    assert resp.status_code == 200, resp.text


def test_suspended_numbers_refuse_with_403_and_closed_ones_are_gone(
    daemon: DaemonProcess, webhooks: WebhookServer
) -> None:
    base = f"http://127.0.0.1:{daemon.api_port}{API_PREFIX}"
    admin = (daemon.account_sid, daemon.auth_token)
    sub = httpx.post(f"{base}/Accounts.json", data={"FriendlyName": "tenant"}, auth=admin).json()
    voice = webhooks.route("/status/voice", Reply("<Response><Reject/></Response>"))
    sms = webhooks.route("/status/sms", Reply("<Response/>"))
    created = httpx.post(
        f"{base}/Accounts/{sub['sid']}/IncomingPhoneNumbers.json",
        data={"PhoneNumber": "559001", "isSIP": "true", "VoiceUrl": voice, "SmsUrl": sms},
        auth=(sub["sid"], sub["auth_token"]),
    )
    assert created.status_code == 200, created.text
    assert _message(daemon.sip_port, "559001").status == 202

    _set_status(daemon, sub["sid"], "suspended")
    for final in (_message(daemon.sip_port, "559001"), _invite_final(daemon.sip_port, "559001")):
        assert final.status == 403
        assert "suspended" in (final.header("Reason") or "")

    _set_status(daemon, sub["sid"], "active")  # the cache is told: routes again at once
    assert _message(daemon.sip_port, "559001").status == 202

    _set_status(daemon, sub["sid"], "closed")
    assert _message(daemon.sip_port, "559001").status == 404
    assert _invite_final(daemon.sip_port, "559001").status == 404
