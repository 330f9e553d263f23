"""Inbound SIP MESSAGE end to end (SPEC §5): SIPp and a raw UDP client against the real daemon.

Routing (exact, regex, a ``mms:`` channel number), refusals (404, 415, 400, 413) with their
Reason headers, both webhook parameter sets, the fallback on each failure kind, duplicates.
"""

from __future__ import annotations

import itertools
import socket
import time
import uuid
from pathlib import Path

import pytest

from support.daemon import DaemonProcess
from support.ports import free_port
from support.rawsip import Message, parse
from support.sipp import SCENARIOS, SippResult, run_sipp
from support.webhooks import Reply, WebhookServer, rcml

pytestmark = pytest.mark.e2e

_numbers = itertools.count(1)


def fresh() -> str:
    return f"66{next(_numbers):04d}"


def sipp_message(
    daemon: DaemonProcess,
    workdir: Path,
    service: str,
    *,
    code: int = 202,
    body: str = "hello world",
    content_type: str = "text/plain;charset=UTF-8",
    calls: int = 1,
    rate: float = 50,
    transport: str = "u1",
) -> SippResult:
    text = (SCENARIOS / "uac_message.xml.in").read_text()
    for key, value in (("CODE", str(code)), ("CONTENT_TYPE", content_type), ("BODY", body)):
        text = text.replace(f"__{key}__", value)
    path = workdir / f"message-{uuid.uuid4().hex[:8]}.xml"
    path.write_text(text)
    return run_sipp(
        path,
        daemon.sip_port,
        service=service,
        workdir=workdir,
        calls=calls,
        rate=rate,
        transport=transport,
    )


class RawMessage:
    """A MESSAGE over UDP built by hand, to look at the response's headers."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.local = self.sock.getsockname()[1]
        self.port = port

    def send(
        self,
        user: str,
        body: bytes,
        content_type: str | None = "text/plain",
        call_id: str | None = None,
        cseq: int = 1,
    ) -> Message:
        call_id = call_id or uuid.uuid4().hex
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        head = (
            f"MESSAGE sip:{user}@127.0.0.1:{self.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.local};branch={branch};rport\r\n"
            f"From: <sip:raw@127.0.0.1:{self.local}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:{user}@127.0.0.1:{self.port}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} MESSAGE\r\nMax-Forwards: 70\r\n"
            + (f"Content-Type: {content_type}\r\n" if content_type else "")
            + f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.sock.sendto(head.encode() + body, ("127.0.0.1", self.port))
        self.sock.settimeout(5)
        data, _ = self.sock.recvfrom(65535)
        return parse(data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(daemon: DaemonProcess):  # type: ignore[no-untyped-def]
    client = RawMessage(daemon.sip_port)
    yield client
    client.close()


def sms_number(daemon: DaemonProcess, webhooks: WebhookServer, dial: str, **extra: str) -> str:
    url = webhooks.route(f"/sms/{dial}", Reply("<Response/>"))
    daemon.create_number(PhoneNumber=dial, isSIP="true", SmsUrl=url, **extra)
    return url


def test_exact_number_gets_both_parameter_sets(daemon, webhooks, workdir) -> None:
    dial = fresh()
    sms_number(daemon, webhooks, dial)
    result = sipp_message(daemon, workdir, dial, body="hello world")
    assert result.ok, result.errors[-2000:]
    [request] = webhooks.wait_for(f"/sms/{dial}", 1)
    params = request.params
    assert params["SmsSid"].startswith("SM") and len(params["SmsSid"]) == 34
    assert params["MessageSid"] == params["SmsSid"]
    assert params["AccountSid"] == daemon.account_sid
    assert params["From"] == "alice" and params["To"] == dial
    assert params["Body"].strip() == "hello world"
    assert params["ApiVersion"] == "2012-04-24"
    assert params["SmsStatus"] == "received" and params["Direction"] == "inbound"
    assert params["NumMedia"] == "0" and params["NumSegments"] == "1"
    assert params["SipHeader_X-Test-Header"] == "e2e-1"
    assert "X-Twilio-Signature" in request.headers


def test_regex_number(daemon, webhooks, workdir) -> None:
    url = webhooks.route("/sms/regex", Reply("<Response/>"))
    daemon.create_number(PhoneNumber="^5557[0-9]{4}$", isSIP="true", SmsUrl=url)
    result = sipp_message(daemon, workdir, "55571234")
    assert result.ok, result.errors[-2000:]
    [request] = webhooks.wait_for("/sms/regex", 1)
    assert request.params["To"] == "55571234"


@pytest.mark.parametrize("user", ["mms%3A%2B12345678", "mms:+12345678"])
def test_channel_number(daemon, webhooks, workdir, user) -> None:
    path = f"/sms/channel-{len(user)}"
    url = webhooks.route(path, Reply("<Response/>"))
    with daemon.api() as client:
        existing = client.get("/IncomingPhoneNumbers.json", params={"PhoneNumber": "mms:+12345678"})
        for number in existing.json()["incomingPhoneNumbers"]:
            client.delete(f"/IncomingPhoneNumbers/{number['sid']}.json")
    daemon.create_number(PhoneNumber="mms:+12345678", isSIP="true", SmsUrl=url)
    result = sipp_message(daemon, workdir, user)
    assert result.ok, result.errors[-2000:]
    [request] = webhooks.wait_for(path, 1)
    assert request.params["To"] == "mms:+12345678"


def test_unknown_number_is_404_with_notification(daemon, workdir, raw) -> None:
    result = sipp_message(daemon, workdir, "66999999", code=404)
    assert result.ok, result.errors[-2000:]
    response = raw.send("66999998", b"hi")
    assert response.status == 404
    assert 'text="no number matches 66999998"' in (response.header("Reason") or "")
    assert _notification_codes(daemon, 11005)


def test_number_without_sms_url_is_404(daemon, webhooks, workdir, raw) -> None:
    dial = fresh()
    voice = webhooks.route(f"/voice/{dial}", rcml("<Hangup/>"))
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=voice)
    response = raw.send(dial, b"hi")
    assert response.status == 404 and "SMS URL" in (response.header("Reason") or "")
    assert _notification_codes(daemon, 12003)


def test_refusals_carry_reason(daemon, webhooks, workdir, raw) -> None:
    dial = fresh()
    sms_number(daemon, webhooks, dial)
    assert sipp_message(daemon, workdir, dial, code=415, content_type="application/json").ok
    wrong = raw.send(dial, b"{}", "application/json")
    assert wrong.status == 415 and wrong.header("Accept") == "text/plain"
    assert wrong.header("Reason")
    assert sipp_message(daemon, workdir, dial, code=400, body="").ok
    empty = raw.send(dial, b"")
    assert empty.status == 400 and "empty" in (empty.header("Reason") or "")
    assert sipp_message(daemon, workdir, dial, code=413, body="x" * 1400).ok
    big = raw.send(dial, b"y" * 1301)
    assert big.status == 413 and big.header("Reason")
    assert raw.send(dial, b"z" * 1300).status == 202
    webhooks.wait_for(f"/sms/{dial}", 1)
    time.sleep(0.3)
    assert len(webhooks.requests(f"/sms/{dial}")) == 1  # only the accepted one


def test_oversize_over_tcp_is_accepted_up_to_64k(daemon, webhooks, workdir) -> None:
    dial = fresh()
    sms_number(daemon, webhooks, dial)
    result = sipp_message(daemon, workdir, dial, body="x" * 4000, transport="t1")
    assert result.ok, result.errors[-2000:]
    [request] = webhooks.wait_for(f"/sms/{dial}", 1)
    body = request.params["Body"]
    assert body.strip() == "x" * 4000
    assert request.params["NumSegments"] == str(-(-len(body) // 153))  # GSM-7, 153 per part


def test_duplicate_call_id_and_cseq_is_processed_once(daemon, webhooks, raw) -> None:
    dial = fresh()
    sms_number(daemon, webhooks, dial)
    call_id = uuid.uuid4().hex
    assert raw.send(dial, b"once", call_id=call_id).status == 202
    # a new transaction (new branch) with the same Call-ID and CSeq: a re-send
    assert raw.send(dial, b"once", call_id=call_id).status == 202
    assert raw.send(dial, b"twice", call_id=call_id, cseq=2).status == 202
    webhooks.wait_for(f"/sms/{dial}", 2)
    time.sleep(0.5)
    bodies = sorted(r.params["Body"] for r in webhooks.requests(f"/sms/{dial}"))
    assert bodies == ["once", "twice"]


FAILURES = {
    "refused": (None, "11205"),
    "http-500": (Reply("boom", status=500, content_type="text/plain"), "11200"),
    "bad-xml": (Reply("<Response><Sms></Response>"), "12100"),
    "content-type": (Reply("<Response/>", content_type="text/html"), "12300"),
    "voice-verb": (rcml("<Hangup/>"), "12100"),
}


@pytest.mark.parametrize("kind", list(FAILURES))
def test_failure_goes_to_fallback(daemon, webhooks, raw, kind) -> None:
    reply, code = FAILURES[kind]
    dial = fresh()
    if reply is None:
        primary = f"http://127.0.0.1:{free_port()}/sms"
    else:
        primary = webhooks.route(f"/sms/{dial}", reply)
    fallback = webhooks.route(f"/sms-fallback/{dial}", Reply("<Response/>"))
    daemon.create_number(PhoneNumber=dial, isSIP="true", SmsUrl=primary, SmsFallbackUrl=fallback)
    assert raw.send(dial, b"help").status == 202
    [request] = webhooks.wait_for(f"/sms-fallback/{dial}", 1)
    assert request.params["ErrorCode"] == code
    assert request.params["ErrorUrl"] == primary
    assert request.params["Body"] == "help" and request.params["SmsStatus"] == "received"
    record = _message_record(daemon, request.params["SmsSid"])
    assert record["status"] == "received" and record["used_fallback"] is True


def test_failure_without_fallback_marks_the_message_failed(daemon, webhooks, raw) -> None:
    dial = fresh()
    primary = webhooks.route(f"/sms/{dial}", Reply("x", status=500, content_type="text/plain"))
    daemon.create_number(PhoneNumber=dial, isSIP="true", SmsUrl=primary)
    assert raw.send(dial, b"lost").status == 202
    [request] = webhooks.wait_for(f"/sms/{dial}", 1)
    record = _message_record(daemon, request.params["SmsSid"])
    assert record["status"] == "failed" and record["error_code"] == 11200


def _message_record(daemon: DaemonProcess, sid: str, timeout: float = 5.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    with daemon.api() as client:
        while True:
            body: dict[str, object] = client.get(f"/SMS/Messages/{sid}.json").json()
            if body.get("status") not in (None, "accepted") or time.monotonic() > deadline:
                return body
            time.sleep(0.05)


def _notification_codes(daemon: DaemonProcess, code: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    with daemon.api() as client:
        while time.monotonic() < deadline:
            found = client.get("/Notifications.json", params={"PageSize": "200"}).json()
            if any(n["error_code"] == code for n in found["notifications"]):
                return True
            time.sleep(0.1)
    return False
