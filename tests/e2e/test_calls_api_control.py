"""POST Calls and POST Calls/{CA} together, through the official twilio SDK: an API call placed
with ``calls.create`` is redirected during its ``<Pause>`` (``update(twiml=…)``), hung up
(``update(status="completed")``), cancelled while it waits queued and while it rings
(``update(status="canceled")``), and its StatusCallback moved (``update(status_callback=…)``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from support.daemon import DaemonProcess
from support.sipp_uas import SippUas
from support.twilio_sdk import twilio_client
from support.webhooks import Reply, WebhookServer

pytestmark = pytest.mark.e2e

SIP_SCENARIOS = Path(__file__).resolve().parents[1] / "sip" / "scenarios"
FROM = "+15105555555"
OK = Reply("", content_type="text/plain")
PAUSE = '<Response><Pause length="30"/></Response>'


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Any:
    process = DaemonProcess(tmp_path_factory.mktemp("daemon"), RCMLROUTER_OUTBOUND_CPS="0.5")
    process.start()
    process.create_number(PhoneNumber=FROM)
    yield process
    process.stop()


def client(daemon: DaemonProcess) -> Any:
    origin = f"http://127.0.0.1:{daemon.api_port}"
    return twilio_client(origin, daemon.account_sid, daemon.auth_token)


def wait_status(sdk: Any, sid: str, wanted: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = sdk.calls(sid).fetch().status
        if status == wanted:
            return status
        time.sleep(0.05)
    return status


def test_redirect_then_hang_up_an_api_call(daemon, webhooks: WebhookServer, workdir) -> None:
    redirected = webhooks.route("/voice/redirected", Reply(PAUSE))
    sdk = client(daemon)
    with SippUas(SIP_SCENARIOS / "uas_answer.xml", workdir) as uas:
        call = sdk.calls.create(to=uas.uri, from_=FROM, twiml=PAUSE)
        assert wait_status(sdk, call.sid, "in-progress") == "in-progress"
        sdk.calls(call.sid).update(url=redirected, method="POST")
        [request] = webhooks.wait_for("/voice/redirected", 1)
        assert request.params["Direction"] == "outbound-api"
        assert request.params["CallSid"] == call.sid
        done = sdk.calls(call.sid).update(status="completed")
        assert done.status == "completed"
        code, logs = uas.wait(10)
        assert code == 0, logs[-2000:]  # our BYE came


def test_cancel_a_queued_call_and_a_ringing_call(daemon, webhooks, workdir) -> None:
    status = webhooks.route("/status/cancel", OK)
    sdk = client(daemon)
    with SippUas(SIP_SCENARIOS / "uas_ring_cancel.xml", workdir) as uas:
        ringing = sdk.calls.create(to=uas.uri, from_=FROM, twiml=PAUSE, status_callback=status)
        queued = sdk.calls.create(to=uas.uri, from_=FROM, twiml=PAUSE, status_callback=status)
        assert wait_status(sdk, ringing.sid, "ringing") == "ringing"
        assert sdk.calls(queued.sid).fetch().status == "queued"
        sdk.calls(queued.sid).update(status="canceled")
        sdk.calls(ringing.sid).update(status="canceled")
        code, logs = uas.wait(10)
        assert code == 0, logs[-2000:]  # the CANCEL came (SIPp takes one call: -m 1)
    assert wait_status(sdk, queued.sid, "canceled") == "canceled"
    assert wait_status(sdk, ringing.sid, "canceled") == "canceled"
    finals = {e.params["CallSid"]: e.params for e in webhooks.wait_for("/status/cancel", 2)}
    assert {p["CallStatus"] for p in finals.values()} == {"canceled"}


def test_move_the_status_callback_of_a_queued_call(daemon, webhooks) -> None:
    first = webhooks.route("/status/first", OK)
    moved = webhooks.route("/status/moved", OK)
    sdk = client(daemon)
    nobody = "sip:nobody@127.0.0.1:9"  # never answers: the calls stay unanswered
    busy = sdk.calls.create(to=nobody, from_=FROM, twiml=PAUSE)  # takes the slot
    waiting = sdk.calls.create(to=nobody, from_=FROM, twiml=PAUSE, status_callback=first)
    assert sdk.calls(waiting.sid).fetch().status == "queued"
    sdk.calls(waiting.sid).update(status_callback=moved)
    sdk.calls(waiting.sid).update(status="canceled")
    sdk.calls(busy.sid).update(status="completed")
    [final] = webhooks.wait_for("/status/moved", 1)
    assert final.params["CallSid"] == waiting.sid and final.params["CallStatus"] == "canceled"
    assert webhooks.requests("/status/first") == []


def test_a_redirect_of_a_queued_call_is_the_document_it_runs_when_answered(
    daemon, webhooks, workdir
) -> None:
    original = webhooks.route("/voice/original", Reply(PAUSE))
    redirected = webhooks.route("/voice/instead", Reply("<Response><Hangup/></Response>"))
    sdk = client(daemon)
    with SippUas(SIP_SCENARIOS / "uas_answer.xml", workdir) as uas:
        sdk.calls.create(to="sip:nobody@127.0.0.1:9", from_=FROM, twiml=PAUSE)  # the slot
        queued = sdk.calls.create(to=uas.uri, from_=FROM, url=original)
        assert sdk.calls(queued.sid).fetch().status == "queued"
        sdk.calls(queued.sid).update(url=redirected)
        code, logs = uas.wait(15)
        assert code == 0, logs[-2000:]  # answered, then our BYE (the redirected <Hangup/>)
    [request] = webhooks.wait_for("/voice/instead", 1)
    assert request.params["CallSid"] == queued.sid
    assert webhooks.requests("/voice/original") == []  # its own Url was never fetched
    assert wait_status(sdk, queued.sid, "completed") == "completed"
