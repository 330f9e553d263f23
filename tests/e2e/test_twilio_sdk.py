"""The official ``twilio`` SDK against the real daemon: a number bought through the Twilio alias
takes a SIPp call and a SIP MESSAGE; its webhooks say ApiVersion 2010-04-01 and pass the SDK's
own ``RequestValidator``; the SDK then lists the call and the message."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from support.daemon import DaemonProcess
from support.sipp import SCENARIOS, run_sipp, scenario
from support.twilio_sdk import twilio_client
from support.webhooks import Recorded, Reply, WebhookServer, rcml

pytestmark = pytest.mark.e2e


def sdk_client(daemon: DaemonProcess, sid: str = "", token: str = "") -> Client:
    origin = f"http://127.0.0.1:{daemon.api_port}"
    return twilio_client(origin, sid or daemon.account_sid, token or daemon.auth_token)


def assert_signed(requests: list[Recorded], auth_token: str) -> None:
    validator = RequestValidator(auth_token)
    for request in requests:
        signature = request.headers["X-Twilio-Signature"]
        form = request.params if request.method == "POST" else {}
        assert validator.validate(request.url, form, signature), request.url


def send_message(daemon: DaemonProcess, workdir: Path, to: str, body: str) -> None:
    text = (SCENARIOS / "uac_message.xml.in").read_text()
    for key, value in (("CODE", "202"), ("CONTENT_TYPE", "text/plain"), ("BODY", body)):
        text = text.replace(f"__{key}__", value)
    path = workdir / f"message-{uuid.uuid4().hex[:8]}.xml"
    path.write_text(text)
    result = run_sipp(path, daemon.sip_port, service=to, workdir=workdir)
    assert result.ok, result.errors[-2000:]


def test_sdk_number_takes_a_call_with_signed_2010_webhooks(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path
) -> None:
    client = sdk_client(daemon)
    voice = webhooks.route("/twilio/voice", rcml("<Hangup/>"))
    status = webhooks.route("/twilio/status", Reply("", content_type="text/plain"))
    number = client.incoming_phone_numbers.create(
        phone_number="+15105555555", voice_url=voice, status_callback=status
    )
    assert number.api_version == "2010-04-01"
    result = run_sipp(
        scenario("uac_daemon_hangs_up.xml", workdir),
        daemon.sip_port,
        service="+15105555555",
        workdir=workdir,
    )
    assert result.ok, result.errors[-2000:]
    fetches = webhooks.wait_for("/twilio/voice", 1)
    callbacks = webhooks.wait_for("/twilio/status", 3)
    assert [r.params["CallStatus"] for r in callbacks] == ["ringing", "in-progress", "completed"]
    assert {r.params["ApiVersion"] for r in [*fetches, *callbacks]} == {"2010-04-01"}
    assert_signed([*fetches, *callbacks], daemon.auth_token)

    call_sid = fetches[0].params["CallSid"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        call = client.calls(call_sid).fetch()
        if call.status == "completed":
            break
        time.sleep(0.1)
    assert (call.status, call.direction, call.phone_number_sid) == (
        "completed", "inbound", number.sid
    )  # fmt: skip
    assert call.api_version == "2010-04-01" and int(call.duration) >= 0
    assert call_sid in {c.sid for c in client.calls.list(page_size=5)}


def test_sdk_number_on_a_sub_account_signs_with_its_token(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path
) -> None:
    client = sdk_client(daemon)
    sub = client.api.accounts.create(friendly_name="tenant")
    sms = webhooks.route("/twilio/sms", rcml())
    number = client.incoming_phone_numbers.create(phone_number="+16175551212", sms_url=sms)
    moved = client.incoming_phone_numbers(number.sid).update(account_sid=sub.sid)
    assert moved.account_sid == sub.sid
    send_message(daemon, workdir, "+16175551212", "hello twilio")
    (request,) = webhooks.wait_for("/twilio/sms", 1)
    assert request.params["ApiVersion"] == "2010-04-01"
    assert request.params["AccountSid"] == sub.sid
    assert request.params["Body"].strip() == "hello twilio"
    assert_signed([request], sub.auth_token)
    with pytest.raises(AssertionError):
        assert_signed([request], daemon.auth_token)  # the parent's token is not the key
    sub_client = sdk_client(daemon, sub.sid, sub.auth_token)
    messages = sub_client.messages.list(to="+16175551212")
    assert [m.sid for m in messages] == [request.params["MessageSid"]]
    assert messages[0].body.strip() == "hello twilio" and messages[0].direction == "inbound"
