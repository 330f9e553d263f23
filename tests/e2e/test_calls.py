"""INVITE → route → RCML → answer/reject/hang-up, driven by SIPp against the real daemon."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path

import pytest

from support.daemon import DaemonProcess
from support.rawsip import RawUac
from support.sipp import run_sipp, scenario
from support.webhooks import Reply, rcml

pytestmark = pytest.mark.e2e


def twilio_signature(url: str, params: dict[str, str], token: str) -> str:
    """Twilio's algorithm, written independently of the daemon's implementation."""
    data = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def call(
    daemon: DaemonProcess,
    workdir: Path,
    number: str,
    name: str,
    transport: str = "u1",
    **subst: str,
) -> None:
    result = run_sipp(
        scenario(name, workdir, **subst),
        daemon.sip_port,
        service=number,
        workdir=workdir,
        transport=transport,
    )
    assert result.ok, f"SIPp failed ({result.returncode}):\n{result.errors[-3000:]}"


def completed(daemon: DaemonProcess, dialed: str) -> dict[str, object]:
    for _ in range(2):
        for line in daemon.logs("call.completed"):
            if line.get("dialed") == dialed:
                return line
        daemon.wait_log("call.completed", timeout=2, count=len(daemon.logs("call.completed")) + 1)
    raise AssertionError(f"no call.completed line for {dialed}")


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_exact_number_hangup_posts_voice_parameters(
    daemon, webhooks, workdir, dial, transport
) -> None:
    url = webhooks.route(f"/voice/{dial}", rcml("<Hangup/>"))
    number = daemon.create_number(
        PhoneNumber=dial, isSIP="true", VoiceUrl=url, VoiceCallerIdLookup="true"
    )
    call(daemon, workdir, dial, "uac_daemon_hangs_up.xml", transport)
    [request] = webhooks.requests(f"/voice/{dial}")
    params = request.params
    assert request.method == "POST"
    assert params["CallSid"].startswith("CA") and len(params["CallSid"]) == 34
    assert params["AccountSid"] == daemon.account_sid
    assert params["From"] == "alice"
    assert params["To"] == dial
    assert params["CallStatus"] == "ringing"
    assert params["Direction"] == "inbound"
    assert params["ApiVersion"] == "2012-04-24"
    assert params["CallerName"] == "Alice Caller"
    assert params["SipHeader_X-Test-Header"].startswith("e2e-")
    assert params["CallTimestamp"].endswith("+0000")
    expected = twilio_signature(url, params, daemon.auth_token)
    assert request.headers["X-Twilio-Signature"] == expected
    assert request.headers["X-Restcomm-Signature"] == expected
    line = completed(daemon, dial)
    assert line["match_kind"] == "exact" and line["number_sid"] == number["sid"]


def test_regex_number_longest_pattern_wins(daemon, webhooks, workdir) -> None:
    short = webhooks.route("/voice/regex-short", rcml("<Reject/>"))
    long_ = webhooks.route("/voice/regex-long", rcml("<Hangup/>"))
    daemon.create_number(PhoneNumber="8812.*", isSIP="true", VoiceUrl=short)
    daemon.create_number(PhoneNumber="881234.*", isSIP="true", VoiceUrl=long_)
    call(daemon, workdir, "88123456", "uac_daemon_hangs_up.xml")
    assert len(webhooks.requests("/voice/regex-long")) == 1
    assert webhooks.requests("/voice/regex-short") == []
    assert completed(daemon, "88123456")["match_kind"] == "regex"


def test_unknown_number_is_refused_with_404(daemon, workdir) -> None:
    call(daemon, workdir, "5550000999", "uac_refused.xml.in", code="404")
    line = completed(daemon, "5550000999")
    assert line["sip_status"] == 404 and line["outcome"] == "not-found"


@pytest.mark.parametrize(
    ("reason", "code", "status"), [("busy", "486", "busy"), ("rejected", "603", "no-answer")]
)
def test_reject(daemon, webhooks, workdir, dial, reason, code, status) -> None:
    url = webhooks.route(f"/voice/{dial}", rcml(f'<Reject reason="{reason}"/>'))
    cb = webhooks.route(f"/status/{dial}", Reply("ok", content_type="text/plain"))
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=url, StatusCallback=cb)
    call(daemon, workdir, dial, "uac_refused.xml.in", code=code)
    events = webhooks.wait_for(f"/status/{dial}", 2)
    assert [e.params["CallStatus"] for e in events] == ["ringing", status]
    assert events[1].params["SipResponseCode"] == code
    assert events[1].params["CallDuration"] == "0"


def test_caller_bye_during_pause_gives_three_ordered_callbacks(
    daemon, webhooks, workdir, dial
) -> None:
    url = webhooks.route(f"/voice/{dial}", rcml('<Pause length="10"/>'))
    cb = webhooks.route(f"/status/{dial}", Reply("", content_type="text/plain"))
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=url, StatusCallback=cb)
    call(daemon, workdir, dial, "uac_caller_hangs_up.xml")
    events = webhooks.wait_for(f"/status/{dial}", 3)
    assert [e.params["CallStatus"] for e in events] == ["ringing", "in-progress", "completed"]
    assert [e.params["SequenceNumber"] for e in events] == ["0", "1", "2"]
    assert len({e.params["CallSid"] for e in events}) == 1
    for event in events:
        assert event.headers["X-Twilio-Signature"] == twilio_signature(
            cb, event.params, daemon.auth_token
        )
        assert event.params["Timestamp"].endswith("+0000")
    assert "SipResponseCode" not in events[2].params
    assert completed(daemon, dial)["end_cause"] == "remote-bye"
    webhooks.wait_for(f"/status/{dial}", 4, timeout=1.0)
    assert len(webhooks.requests(f"/status/{dial}")) == 3  # exactly once each


def test_cancel_while_ringing(daemon, webhooks, workdir, dial) -> None:
    url = webhooks.route(f"/voice/{dial}", Reply("<Response><Hangup/></Response>", delay=2.0))
    cb = webhooks.route(f"/status/{dial}", Reply("", content_type="text/plain"))
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=url, StatusCallback=cb)
    call(daemon, workdir, dial, "uac_cancel.xml")
    events = webhooks.wait_for(f"/status/{dial}", 2)
    assert [e.params["CallStatus"] for e in events] == ["ringing", "canceled"]
    assert events[1].params["SipResponseCode"] == "487"


def test_application_sid_overrides_voice_url(daemon, webhooks, workdir, dial) -> None:
    number_url = webhooks.route(f"/voice/{dial}", rcml("<Reject/>"))
    app_url = webhooks.route(f"/app/{dial}", rcml("<Hangup/>"))
    with daemon.api() as api:
        response = api.post("/Applications.json", data={"FriendlyName": "app", "VoiceUrl": app_url})
        assert response.status_code in (200, 201), response.text
        app_sid = response.json()["sid"]
    daemon.create_number(
        PhoneNumber=dial, isSIP="true", VoiceUrl=number_url, VoiceApplicationSid=app_sid
    )
    call(daemon, workdir, dial, "uac_daemon_hangs_up.xml")
    assert len(webhooks.requests(f"/app/{dial}")) == 1
    assert webhooks.requests(f"/voice/{dial}") == []


def test_call_record_is_readable_through_the_api(daemon, webhooks, workdir, dial) -> None:
    url = webhooks.route(f"/voice/{dial}", rcml("<Hangup/>"))
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=url)
    call(daemon, workdir, dial, "uac_daemon_hangs_up.xml")
    [request] = webhooks.requests(f"/voice/{dial}")
    call_sid = request.params["CallSid"]
    with daemon.api() as api:
        for _ in range(50):
            response = api.get(f"/Calls/{call_sid}.json")
            if response.status_code == 200:
                break
            time.sleep(0.1)
    assert response.status_code == 200, response.text
    assert response.json()["sid"] == call_sid


def test_invite_retransmits_make_one_call(daemon, webhooks, dial) -> None:
    url = webhooks.route(f"/voice/{dial}", Reply("<Response><Hangup/></Response>", delay=0.3))
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=url)
    uac = RawUac(daemon.sip_port, dial)
    try:
        for _ in range(3):
            uac.send(uac.invite())
            time.sleep(0.05)
        got = uac.receive_until(lambda m: m.status == 200, 5)
        ok = [m for m in got if m.status == 200]
        assert ok, [m.start for m in got]
        # retransmits get the latest provisional: 180 (no 100 when rung within 200 ms)
        assert sum(1 for m in got if m.status in (100, 180)) >= 1
        uac.send(uac.ack(ok[0].header("To") or ""))
        bye = uac.receive_until(lambda m: m.method == "BYE", 5)
        assert bye and bye[-1].method == "BYE"
        uac.send(uac.reply_ok(bye[-1]))
    finally:
        uac.close()
    assert len(webhooks.requests(f"/voice/{dial}")) == 1
    time.sleep(0.2)
    assert len([x for x in daemon.logs("call.completed") if x.get("dialed") == dial]) == 1


def test_lost_ack_makes_the_daemon_retransmit_200(daemon, webhooks, dial) -> None:
    url = webhooks.route(f"/voice/{dial}", rcml('<Pause length="5"/>'))
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=url)
    uac = RawUac(daemon.sip_port, dial)
    try:
        uac.send(uac.invite())
        first = uac.receive_until(lambda m: m.status == 200, 5)
        assert first[-1].status == 200
        # no ACK: T1 = 500 ms, so 200 OK comes again at ~0.5 s and ~1.5 s (2.2 s of slack)
        again = [m for m in uac.receive(2.2) if m.status == 200]
        assert len(again) >= 2
        uac.send(uac.ack(first[-1].header("To") or ""))
        assert [m for m in uac.receive(1.2) if m.status == 200] == []  # retransmission stopped
        bye = uac.receive_until(lambda m: m.method == "BYE", 8)
        assert bye and bye[-1].method == "BYE"
        uac.send(uac.reply_ok(bye[-1]))
    finally:
        uac.close()


def test_failed_play_is_skipped_the_call_hung_up_and_a_notification_recorded(
    daemon, webhooks, workdir, dial
) -> None:
    missing = webhooks.url(f"/audio/{dial}/missing.wav")  # 404
    url = webhooks.route(f"/voice/{dial}", rcml(f"<Play>{missing}</Play>"))
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=url)
    call(daemon, workdir, dial, "uac_daemon_hangs_up.xml")
    call_sid = webhooks.requests(f"/voice/{dial}")[0].params["CallSid"]
    with daemon.api() as api:
        for _ in range(50):
            body = api.get("/Notifications.json", params={"PageSize": 1000}).json()
            items = next(v for v in body.values() if isinstance(v, list))
            mine = [n for n in items if n.get("call_sid") == call_sid]
            if mine:
                break
            time.sleep(0.1)
    assert mine and mine[0]["error_code"] == 11200 and "Play" in mine[0]["message_text"]


def test_provisioning_changes_reach_routing_at_once(daemon, webhooks, workdir, dial) -> None:
    first = webhooks.route(f"/voice/{dial}/a", rcml("<Hangup/>"))
    second = webhooks.route(f"/voice/{dial}/b", rcml("<Hangup/>"))
    number = daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=first)
    call(daemon, workdir, dial, "uac_daemon_hangs_up.xml")
    with daemon.api() as api:
        response = api.post(
            f"/IncomingPhoneNumbers/{number['sid']}.json", data={"VoiceUrl": second}
        )
        assert response.status_code == 200, response.text
    call(daemon, workdir, dial, "uac_daemon_hangs_up.xml")
    assert len(webhooks.requests(f"/voice/{dial}/a")) == 1
    assert len(webhooks.requests(f"/voice/{dial}/b")) == 1  # the cached row was dropped
    with daemon.api() as api:
        assert api.delete(f"/IncomingPhoneNumbers/{number['sid']}.json").status_code == 204
    call(daemon, workdir, dial, "uac_refused.xml.in", code="404")


def test_deleted_regex_number_leaves_the_regex_set(daemon, webhooks, workdir) -> None:
    url = webhooks.route("/voice/regex-gone", rcml("<Hangup/>"))
    number = daemon.create_number(PhoneNumber="^4321[0-9]{3}$", isSIP="true", VoiceUrl=url)
    call(daemon, workdir, "4321000", "uac_daemon_hangs_up.xml")
    with daemon.api() as api:
        assert api.delete(f"/IncomingPhoneNumbers/{number['sid']}.json").status_code == 204
    call(daemon, workdir, "4321001", "uac_refused.xml.in", code="404")
    assert len(webhooks.requests("/voice/regex-gone")) == 1


def test_application_update_reaches_the_next_call(daemon, webhooks, workdir, dial) -> None:
    old = webhooks.route(f"/app/{dial}/old", rcml("<Hangup/>"))
    new = webhooks.route(f"/app/{dial}/new", rcml("<Hangup/>"))
    with daemon.api() as api:
        app = api.post("/Applications.json", data={"FriendlyName": "a", "VoiceUrl": old}).json()
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceApplicationSid=app["sid"])
    call(daemon, workdir, dial, "uac_daemon_hangs_up.xml")
    with daemon.api() as api:
        response = api.post(f"/Applications/{app['sid']}.json", data={"VoiceUrl": new})
        assert response.status_code == 200, response.text
    call(daemon, workdir, dial, "uac_daemon_hangs_up.xml")
    assert len(webhooks.requests(f"/app/{dial}/old")) == 1
    assert len(webhooks.requests(f"/app/{dial}/new")) == 1
