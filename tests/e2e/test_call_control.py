"""Live call control against the real daemon: ``POST Calls/{CA}`` through the official ``twilio``
SDK (``client.calls(sid).update(...)``) and curl-style on the Restcomm base, on inbound calls
placed by SIPp. The caller is in a ``<Pause length="20"/>``: a redirect or a hang-up that works
ends the call long before the pause would."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from support.daemon import DaemonProcess
from support.sipp import SippResult, run_sipp, scenario
from support.sipp_uas import SippUas
from support.twilio_sdk import twilio_client
from support.webhooks import Recorded, Reply, WebhookServer, rcml

pytestmark = pytest.mark.e2e

SIP_SCENARIOS = Path(__file__).resolve().parents[1] / "sip" / "scenarios"
PAUSE = '<Pause length="20"/>'
QUIET = Reply("", content_type="text/plain")


def sdk(daemon: DaemonProcess) -> Client:
    return twilio_client(
        f"http://127.0.0.1:{daemon.api_port}", daemon.account_sid, daemon.auth_token
    )


@contextmanager
def sipp_call(
    daemon: DaemonProcess, workdir: Path, dial: str, refused: str | None = None
) -> Iterator[Future[SippResult]]:
    """A SIPp caller in the background: answered, waiting up to 20 s for the daemon's BYE; or,
    with ``refused``, expecting that final response."""
    name = "uac_daemon_hangs_up.xml" if refused is None else "uac_refused.xml.in"
    substitutions = {} if refused is None else {"code": refused}
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(
            run_sipp,
            scenario(name, workdir, **substitutions),
            daemon.sip_port,
            service=dial,
            workdir=workdir,
        )


def answered_call(webhooks: WebhookServer, status_path: str) -> str:
    """The CallSid once the call's in-progress callback came (the caller is answered)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for request in webhooks.requests(status_path):
            if request.params["CallStatus"] == "in-progress":
                return request.params["CallSid"]
        time.sleep(0.02)
    raise AssertionError("the call was not answered")


def statuses(requests: list[Recorded]) -> list[tuple[str, str]]:
    return [(r.params["SequenceNumber"], r.params["CallStatus"]) for r in requests]


def number_in_pause(daemon: DaemonProcess, webhooks: WebhookServer, dial: str) -> str:
    """A SIP number whose calls pause 20 s; its status callback path."""
    voice = webhooks.route(f"/voice/{dial}", rcml(PAUSE))
    status = webhooks.route(f"/status/{dial}", QUIET)
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=voice, StatusCallback=status)
    return f"/status/{dial}"


def test_sdk_redirect_with_url_during_pause_runs_the_new_document(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path, dial: str
) -> None:
    status_path = number_in_pause(daemon, webhooks, dial)
    redirected = webhooks.route(f"/redirected/{dial}", rcml("<Hangup/>"))
    with sipp_call(daemon, workdir, dial) as caller:
        sid = answered_call(webhooks, status_path)
        started = time.monotonic()
        call = sdk(daemon).calls(sid).update(url=redirected, method="POST")
        assert (call.sid, call.status) == (sid, "in-progress")
        result = caller.result(timeout=30)
    assert result.ok, result.errors[-2000:]
    assert time.monotonic() - started < 5  # the 20 s pause was cut short
    [fetch] = webhooks.wait_for(f"/redirected/{dial}", 1)
    assert fetch.params["CallSid"] == sid and fetch.params["CallStatus"] == "in-progress"
    callbacks = webhooks.wait_for(status_path, 3)
    assert statuses(callbacks) == [("0", "ringing"), ("1", "in-progress"), ("2", "completed")]


def test_sdk_redirect_with_twiml_replaces_the_running_verb(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path, dial: str
) -> None:
    status_path = number_in_pause(daemon, webhooks, dial)
    after = webhooks.route(f"/after/{dial}", rcml("<Hangup/>"))
    twiml = f'<Response><Pause length="1"/><Redirect method="GET">{after}</Redirect></Response>'
    with sipp_call(daemon, workdir, dial) as caller:
        sid = answered_call(webhooks, status_path)
        started = time.monotonic()
        sdk(daemon).calls(sid).update(twiml=twiml)
        [fetch] = webhooks.wait_for(f"/after/{dial}", 1)
        waited = time.monotonic() - started
        result = caller.result(timeout=30)
    assert result.ok, result.errors[-2000:]
    assert 0.9 < waited < 5  # the new document's own 1 s pause, not the old 20 s one
    assert fetch.method == "GET" and fetch.params["CallSid"] == sid


def test_sdk_hangup_ends_the_call_with_its_callbacks_once_in_order(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path, dial: str
) -> None:
    status_path = number_in_pause(daemon, webhooks, dial)
    client = sdk(daemon)
    with sipp_call(daemon, workdir, dial) as caller:
        sid = answered_call(webhooks, status_path)
        started = time.monotonic()
        call = client.calls(sid).update(status="completed")
        assert time.monotonic() - started < 5  # not the 20 s pause
        assert (call.status, call.end_time is not None) == ("completed", True)
        result = caller.result(timeout=30)
    assert result.ok, result.errors[-2000:]  # SIPp got the BYE and answered it
    time.sleep(0.5)  # nothing more arrives
    callbacks = webhooks.requests(status_path)
    assert statuses(callbacks) == [("0", "ringing"), ("1", "in-progress"), ("2", "completed")]
    assert int(callbacks[-1].params["CallDuration"]) < 5
    with pytest.raises(TwilioRestException) as ended:
        client.calls(sid).update(status="completed")
    assert (ended.value.status, ended.value.code) == (400, 21220)
    with pytest.raises(TwilioRestException) as ended:
        client.calls(sid).update(url=webhooks.url("/nowhere"))
    assert (ended.value.status, ended.value.code) == (400, 21220)
    assert "not in-progress" in ended.value.msg


def test_time_limit_update_ends_the_call_that_long_after_its_answer(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path, dial: str
) -> None:
    """``TimeLimit`` on a live call counts from its answer: set to 3 s a second in, the call
    ends about 3 s after it was answered (not 3 s after the update, not after the 20 s pause)."""
    status_path = number_in_pause(daemon, webhooks, dial)
    with sipp_call(daemon, workdir, dial) as caller:
        sid = answered_call(webhooks, status_path)
        answered = time.monotonic()
        time.sleep(1.0)
        call = sdk(daemon).calls(sid).update(time_limit=3)
        assert call.status == "in-progress"
        result = caller.result(timeout=30)
        ended = time.monotonic() - answered
    assert result.ok, result.errors[-2000:]  # SIPp got our BYE
    assert 2.5 < ended < 3.9, ended
    callbacks = webhooks.wait_for(status_path, 3)
    assert callbacks[-1].params["CallStatus"] == "completed"
    assert int(callbacks[-1].params["CallDuration"]) == 3


def test_status_callback_moves_mid_call_and_canceled_leaves_an_answered_call(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path, dial: str
) -> None:
    status_path = number_in_pause(daemon, webhooks, dial)
    moved = webhooks.route(f"/moved/{dial}", QUIET)
    client = sdk(daemon)
    with sipp_call(daemon, workdir, dial) as caller:
        sid = answered_call(webhooks, status_path)
        call = client.calls(sid).update(status="canceled")  # Twilio: no effect once answered
        assert call.status == "in-progress"
        call = client.calls(sid).update(status_callback=moved, status_callback_method="GET")
        assert call.status == "in-progress"
        time.sleep(0.3)
        assert client.calls(sid).fetch().status == "in-progress"
        client.calls(sid).update(status="completed")
        result = caller.result(timeout=30)
    assert result.ok, result.errors[-2000:]
    [final] = webhooks.wait_for(f"/moved/{dial}", 1)
    assert final.method == "GET"
    assert (final.params["SequenceNumber"], final.params["CallStatus"]) == ("2", "completed")
    time.sleep(0.3)
    assert statuses(webhooks.requests(status_path)) == [("0", "ringing"), ("1", "in-progress")]


def test_restcomm_base_and_refusals(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path, dial: str
) -> None:
    status_path = number_in_pause(daemon, webhooks, dial)
    base = f"http://127.0.0.1:{daemon.api_port}"
    auth = (daemon.account_sid, daemon.auth_token)
    calls = f"Accounts/{daemon.account_sid}/Calls"

    def post(path: str, **data: str) -> httpx.Response:
        return httpx.post(f"{base}/{path}", data=data, auth=auth, timeout=10)

    unknown = post(f"2010-04-01/{calls}/CA{'0' * 32}.json", Status="completed")
    assert (unknown.status_code, unknown.json()["code"]) == (404, 20404)
    with sipp_call(daemon, workdir, dial) as caller:
        sid = answered_call(webhooks, status_path)
        twilio = f"2010-04-01/{calls}/{sid}.json"
        refusals = [
            (post(twilio, Url="ftp://example.com/x"), 21205),
            (post(twilio, Url="http://127.0.0.1/x", Method="PUT"), 21503),
            (post(twilio, Status="busy"), 20001),
            (post(twilio, Twiml="<Response><Pause"), 12100),
            (post(twilio, Twiml="<Response>" + "<Pause/>" * 600 + "</Response>"), 20001),
            (post(twilio, TimeLimit="0"), 20001),
            (post(twilio, StatusCallback="not a url"), 21609),
        ]
        for response, code in refusals:
            assert (response.status_code, response.json()["code"]) == (400, code), response.text
        assert "TimeLimit" in refusals[5][0].json()["message"]
        xml = post(f"restcomm/2012-04-24/{calls}/{sid}", Status="completed")
        assert xml.status_code == 200, xml.text
        assert "<RestcommResponse><Call>" in xml.text and "<Status>completed</Status>" in xml.text
        result = caller.result(timeout=30)
    assert result.ok, result.errors[-2000:]
    again = post(f"restcomm/2012-04-24/{calls}/{sid}.json", Url=webhooks.url("/x"))
    assert (again.status_code, again.json()["code"]) == (400, 21220)


def test_a_redirect_during_record_keeps_the_recording_and_skips_its_action(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path, dial: str
) -> None:
    action = webhooks.route(f"/record-action/{dial}", rcml("<Hangup/>"))
    stored = webhooks.route(f"/recording-status/{dial}", QUIET)
    record = (
        f'<Record maxLength="20" timeout="30" playBeep="false" action="{action}" '
        f'recordingStatusCallback="{stored}"/>'
    )
    voice = webhooks.route(f"/voice/{dial}", rcml(record))
    status = webhooks.route(f"/status/{dial}", QUIET)
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=voice, StatusCallback=status)
    after = webhooks.route(f"/after-record/{dial}", rcml('<Pause length="1"/>', "<Hangup/>"))
    with sipp_call(daemon, workdir, dial) as caller:
        sid = answered_call(webhooks, f"/status/{dial}")
        time.sleep(0.5)  # recording
        sdk(daemon).calls(sid).update(url=after)
        [fetch] = webhooks.wait_for(f"/after-record/{dial}", 1)
        result = caller.result(timeout=30)
    assert result.ok, result.errors[-2000:]  # the new document ran to its own <Hangup/>
    assert fetch.params["CallStatus"] == "in-progress"
    [recording] = webhooks.wait_for(f"/recording-status/{dial}", 1)
    assert recording.params["CallSid"] == sid and recording.params["RecordingSid"]
    time.sleep(0.3)
    assert webhooks.requests(f"/record-action/{dial}") == []  # the redirect replaced it


def test_canceled_and_completed_end_a_ringing_call_canceled_with_480(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path, dial: str
) -> None:
    voice = webhooks.route(f"/voice/{dial}", Reply(rcml(PAUSE).body, delay=10))  # still ringing
    status = webhooks.route(f"/status/{dial}", QUIET)
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=voice, StatusCallback=status)
    client = sdk(daemon)
    for cause in ("canceled", "completed"):
        before = len(webhooks.requests(f"/status/{dial}"))
        with sipp_call(daemon, workdir, dial, refused="480") as caller:
            deadline = time.monotonic() + 10
            while len(webhooks.requests(f"/voice/{dial}")) <= before // 2:
                assert time.monotonic() < deadline, "no webhook request"
                time.sleep(0.02)
            sid = webhooks.requests(f"/voice/{dial}")[-1].params["CallSid"]
            started = time.monotonic()
            call = client.calls(sid).update(status=cause)
            assert time.monotonic() - started < 5
            assert call.status == "canceled"
            result = caller.result(timeout=30)
        assert result.ok, result.errors[-2000:]  # SIPp got the 480
        callbacks = webhooks.wait_for(f"/status/{dial}", before + 2)[before:]
        assert statuses(callbacks) == [("0", "ringing"), ("1", "canceled")]
        assert callbacks[1].params["SipResponseCode"] == "480"


def test_a_redirect_during_an_answered_dial_ends_the_callee_and_goes_on_with_the_caller(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path, dial: str
) -> None:
    """Twilio requests the Dial's action when the call is modified during the Dial, and does
    not run what it returns: the redirect's document goes on (its Pause, then Hangup)."""
    action = webhooks.route(f"/dial-action/{dial}", rcml("<Hangup/>"))
    status = webhooks.route(f"/status/{dial}", QUIET)
    with SippUas(SIP_SCENARIOS / "uas_answer.xml", workdir) as callee:
        voice = webhooks.route(
            f"/voice/{dial}", rcml(f'<Dial action="{action}"><Sip>{callee.uri}</Sip></Dial>')
        )
        daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=voice, StatusCallback=status)
        with ThreadPoolExecutor(1) as pool:
            caller = pool.submit(
                run_sipp,
                scenario("uac_bridged_daemon_hangs_up.xml", workdir),
                daemon.sip_port,
                service=dial,
                workdir=workdir,
            )
            sid = answered_call(webhooks, f"/status/{dial}")  # the callee answered: bridged
            started = time.monotonic()
            twiml = '<Response><Pause length="1"/><Hangup/></Response>'
            sdk(daemon).calls(sid).update(twiml=twiml)
            code, logs = callee.wait(15)
            assert code == 0, logs[-3000:]  # the callee got its BYE
            result = caller.result(timeout=30)
        assert result.ok, result.errors[-2000:]  # our media offered again, then the BYE
        assert 0.9 < time.monotonic() - started < 8
    callbacks = webhooks.wait_for(f"/status/{dial}", 3)
    assert [r.params["CallStatus"] for r in callbacks] == ["ringing", "in-progress", "completed"]
    [posted] = webhooks.wait_for(f"/dial-action/{dial}", 1)
    assert posted.params["CallSid"] == sid
    assert posted.params["DialCallStatus"] == "completed"
    assert posted.params["CallStatus"] == "in-progress"  # the call went on elsewhere
    assert int(posted.params["DialCallDuration"]) >= 0 and posted.params["DialCallSid"]
    time.sleep(0.3)
    assert len(webhooks.requests(f"/dial-action/{dial}")) == 1


def test_an_api_hang_up_during_an_answered_dial_still_posts_the_dial_action(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path, dial: str
) -> None:
    """As when the caller hangs up: both legs end and the action learns the outcome."""
    action = webhooks.route(f"/dial-action/{dial}", rcml("<Say>never heard</Say>"))
    status = webhooks.route(f"/status/{dial}", QUIET)
    with SippUas(SIP_SCENARIOS / "uas_answer.xml", workdir) as callee:
        voice = webhooks.route(
            f"/voice/{dial}", rcml(f'<Dial action="{action}"><Sip>{callee.uri}</Sip></Dial>')
        )
        daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=voice, StatusCallback=status)
        with ThreadPoolExecutor(1) as pool:
            caller = pool.submit(
                run_sipp,
                scenario("uac_bridged_daemon_hangs_up.xml", workdir),
                daemon.sip_port,
                service=dial,
                workdir=workdir,
            )
            sid = answered_call(webhooks, f"/status/{dial}")
            call = sdk(daemon).calls(sid).update(status="completed")
            assert call.status == "completed"
            code, logs = callee.wait(15)
            assert code == 0, logs[-3000:]  # the callee got its BYE
            caller.result(timeout=30)  # the caller got ours (its scenario expects a re-INVITE)
    [posted] = webhooks.wait_for(f"/dial-action/{dial}", 1)
    assert posted.params["CallSid"] == sid
    assert (posted.params["DialCallStatus"], posted.params["CallStatus"]) == (
        "completed",
        "completed",
    )


def test_a_transferred_call_is_controlled_by_its_own_sid(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path, dial: str
) -> None:
    leg_status = webhooks.route(f"/leg/{dial}", QUIET)
    moved = webhooks.route(f"/leg-moved/{dial}", QUIET)
    refer = webhooks.route(f"/refer/{dial}", rcml(PAUSE))  # the transferred call pauses
    with SippUas(SIP_SCENARIOS / "uas_answer.xml", workdir) as bob:
        noun = f'<Sip statusCallback="{leg_status}" statusCallbackEvent="answered completed">'
        voice = webhooks.route(f"/voice/{dial}", rcml(f"<Dial>{noun}{bob.uri}</Sip></Dial>"))
        daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=voice, ReferUrl=refer)
        # alice (the caller) transfers bob: REFER, 202, NOTIFYs, then our BYE to alice
        result = run_sipp(
            scenario("uac_refer_transferor.xml", workdir),
            daemon.sip_port,
            service=dial,
            workdir=workdir,
        )
        assert result.ok, result.errors[-2000:]
        [request] = webhooks.wait_for(f"/refer/{dial}", 1)
        leg_sid = request.params["OutboundCallSid"]
        client = sdk(daemon)
        client.calls(leg_sid).update(status_callback=moved)
        started = time.monotonic()
        call = client.calls(leg_sid).update(status="completed")
        assert call.status == "completed" and time.monotonic() - started < 5
        code, logs = bob.wait(15)
        assert code == 0, logs[-3000:]  # bob got our BYE, not 20 s later
    assert [r.params["CallStatus"] for r in webhooks.requests(f"/leg/{dial}")] == ["in-progress"]
    [final] = webhooks.wait_for(f"/leg-moved/{dial}", 1)
    assert (final.params["CallSid"], final.params["CallStatus"]) == (leg_sid, "completed")
    assert final.params["SequenceNumber"] == "1"


def test_a_redirect_takes_a_participant_out_of_its_conference(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path, dial: str
) -> None:
    events = webhooks.route(f"/conf/{dial}", QUIET)
    conference = (
        f'<Conference beep="false" waitUrl="" statusCallback="{events}" '
        f'statusCallbackEvent="join leave">room-{dial}</Conference>'
    )
    voice = webhooks.route(f"/voice/{dial}", rcml(f"<Dial>{conference}</Dial>"))
    status = webhooks.route(f"/status/{dial}", QUIET)
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=voice, StatusCallback=status)
    with sipp_call(daemon, workdir, dial) as caller:
        sid = answered_call(webhooks, f"/status/{dial}")
        [joined] = webhooks.wait_for(f"/conf/{dial}", 1)
        assert joined.params["StatusCallbackEvent"] == "participant-join"
        sdk(daemon).calls(sid).update(twiml="<Response><Hangup/></Response>")
        result = caller.result(timeout=30)
    assert result.ok, result.errors[-2000:]  # out of the room, then our BYE
    left = webhooks.wait_for(f"/conf/{dial}", 2)[1]
    assert left.params["StatusCallbackEvent"] == "participant-leave"
    assert left.params["CallSid"] == sid
