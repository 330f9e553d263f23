"""REFER (transfer) through the real daemon: SIPp caller → rcmlrouter → SIPp callee who
transfers the caller to a third SIPp UA; and the REFERs rcmlrouter refuses."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from support.daemon import DaemonProcess
from support.rawsip import RawUac
from support.sipp import SCENARIOS, run_sipp, scenario
from support.sipp_uas import SippUas
from support.webhooks import Reply, WebhookServer, rcml

pytestmark = pytest.mark.e2e

SIP_SCENARIOS = Path(__file__).resolve().parents[1] / "sip" / "scenarios"
OK = Reply("", content_type="text/plain")
REFER_TO = "Refer-To: <sip:3000@127.0.0.1>"


def transferor(workdir: Path, expect: str, refer_to: str = REFER_TO) -> SippUas:
    """The callee's scenario: REFER with ``refer_to`` (a whole header line), expecting
    ``expect`` (202: NOTIFYs then our BYE; anything else: it hangs up itself)."""
    text = (SCENARIOS / "uas_refer.xml.in").read_text()
    recv = '<recv response="202"/>' if expect == "202" else f'<recv response="{expect}" next="5"/>'
    text = text.replace("__EXPECT__", recv).replace("__REFER_TO__", refer_to)
    path = workdir / f"uas_refer_{expect}.xml"
    path.write_text(text)
    return SippUas(path, workdir)


def caller(daemon: DaemonProcess, workdir: Path, number: str, name: str, **subst: str) -> None:
    result = run_sipp(
        scenario(name, workdir, **subst), daemon.sip_port, service=number, workdir=workdir
    )
    assert result.ok, f"SIPp caller failed ({result.returncode}):\n{result.errors[-3000:]}"


def passed(uas: SippUas) -> None:
    code, logs = uas.wait(15)
    assert code == 0, f"SIPp {uas.scenario.name} failed ({code}):\n{logs[-3000:]}"


def number(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, verbs: str, **params: str
) -> None:
    url = webhooks.route(f"/voice/{dial}", rcml(verbs))
    status = webhooks.route(f"/status/{dial}", OK)
    daemon.create_number(
        PhoneNumber=dial, isSIP="true", VoiceUrl=url, StatusCallback=status, **params
    )


def notifications(daemon: DaemonProcess) -> list[dict[str, Any]]:
    with daemon.api() as api:
        response = api.get("/Notifications.json", params={"PageSize": "200"})
    assert response.status_code == 200, response.text
    body = response.json()
    return list(body.get("notifications", body.get("Notifications", [])))


def test_refer_from_the_callee_transfers_the_caller_to_a_third_party(
    daemon, webhooks, workdir, dial
) -> None:
    with SippUas(SIP_SCENARIOS / "uas_answer.xml", workdir) as third:
        refer = webhooks.route(f"/refer/{dial}", rcml(f"<Dial><Sip>{third.uri}</Sip></Dial>"))
        with transferor(workdir, "202") as bob:
            number(daemon, webhooks, dial, f"<Dial><Sip>{bob.uri}</Sip></Dial>", ReferUrl=refer)
            caller(daemon, workdir, dial, "uac_transferee.xml")
            passed(bob)  # 202, NOTIFY 100 Trying, NOTIFY 200 OK terminated, BYE
        passed(third)  # INVITE with the caller's SDP, answered, BYE when the caller hung up
    [request] = webhooks.wait_for(f"/refer/{dial}", 1)
    params = request.params
    assert (params["ReferTarget"], params["Transferor"], params["Transferee"]) == (
        "3000",
        "bob",
        "alice",
    )
    assert params["CallStatus"] == "in-progress" and params["Direction"] == "inbound"
    events = webhooks.wait_for(f"/status/{dial}", 3)
    final = max(events, key=lambda e: int(e.params["SequenceNumber"])).params
    assert final["CallStatus"] == "completed"
    assert final["ReferTarget"] == "3000" and final["Transferor"] == "bob"


def test_refer_out_of_dialog_is_refused_with_403(daemon) -> None:
    uac = RawUac(daemon.sip_port, "1000")
    try:
        uac.send(
            f"REFER sip:1000@127.0.0.1:{daemon.sip_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{uac.local};branch={uac.branch};rport\r\n"
            f"From: <sip:raw@127.0.0.1:{uac.local}>;tag={uac.tag}\r\n"
            f"To: <sip:1000@127.0.0.1:{daemon.sip_port}>\r\n"
            f"Call-ID: {uac.call_id}\r\nCSeq: 1 REFER\r\n"
            f"Contact: <sip:raw@127.0.0.1:{uac.local}>\r\n{REFER_TO}\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        [response] = uac.receive_until(lambda m: m.status is not None, 5)
    finally:
        uac.close()
    assert response.status == 403
    assert "dialog" in (response.header("Reason") or "").lower() or "bridge" in (
        response.header("Reason") or ""
    )


def test_refer_before_answer_is_refused_with_403(daemon, webhooks, workdir, dial) -> None:
    with SippUas(SIP_SCENARIOS / "uas_ring_cancel.xml", workdir) as ringing:
        number(daemon, webhooks, dial, f"<Dial><Sip>{ringing.uri}</Sip></Dial>")
        caller(daemon, workdir, dial, "uac_refer_early.xml")  # REFER → 403, then CANCEL
        passed(ringing)


def test_refer_without_a_refer_url_is_refused_and_notified(daemon, webhooks, workdir, dial) -> None:
    with transferor(workdir, "403") as bob:
        number(daemon, webhooks, dial, f"<Dial><Sip>{bob.uri}</Sip></Dial>")
        caller(daemon, workdir, dial, "uac_bridged_daemon_hangs_up.xml")
        passed(bob)
    call_sid = webhooks.wait_for(f"/status/{dial}", 1)[0].params["CallSid"]
    for _ in range(50):
        found = [n for n in notifications(daemon) if n.get("call_sid") == call_sid]
        if found:
            break
        time.sleep(0.1)
    assert found and "ReferUrl" in found[0]["message_text"]


def test_refer_with_a_bad_refer_to_is_refused_with_400(daemon, webhooks, workdir, dial) -> None:
    refer = webhooks.route(f"/refer/{dial}", rcml("<Hangup/>"))
    with transferor(workdir, "400", "Refer-To: <bogus>") as bob:
        number(daemon, webhooks, dial, f"<Dial><Sip>{bob.uri}</Sip></Dial>", ReferUrl=refer)
        caller(daemon, workdir, dial, "uac_bridged_daemon_hangs_up.xml")
        passed(bob)
    assert webhooks.requests(f"/refer/{dial}") == []


def test_refer_from_the_caller_hands_the_callee_to_a_third_party(
    daemon, webhooks, workdir, dial
) -> None:
    leg_status = webhooks.route(f"/leg/{dial}", OK)
    events = "initiated ringing answered completed"
    with SippUas(SIP_SCENARIOS / "uas_answer.xml", workdir) as third:
        refer = webhooks.route(f"/refer/{dial}", rcml(f"<Dial><Sip>{third.uri}</Sip></Dial>"))
        with SippUas("uas_transferee.xml", workdir) as bob:
            noun = f'<Sip statusCallback="{leg_status}" statusCallbackEvent="{events}">'
            number(daemon, webhooks, dial, f"<Dial>{noun}{bob.uri}</Sip></Dial>", ReferUrl=refer)
            # 202, NOTIFY 100 Trying, NOTIFY 200 OK terminated, then our BYE
            caller(daemon, workdir, dial, "uac_refer_transferor.xml")
            passed(bob)  # re-INVITEd with the third party's SDP, then hangs up
        passed(third)  # INVITE with the callee's SDP, answered, BYE when the callee hung up
    [request] = webhooks.wait_for(f"/refer/{dial}", 1)
    params = request.params
    assert (params["ReferTarget"], params["Transferor"], params["Transferee"]) == (
        "3000",
        "alice",
        "callee",
    )
    assert params["CallStatus"] == "in-progress" and params["Direction"] == "inbound"
    caller_events = webhooks.wait_for(f"/status/{dial}", 3)
    final = max(caller_events, key=lambda e: int(e.params["SequenceNumber"])).params
    assert final["CallStatus"] == "completed" and final["Transferor"] == "alice"
    leg = [e.params for e in webhooks.wait_for(f"/leg/{dial}", 3)]  # the callee sends no 180
    assert [e["CallStatus"] for e in leg] == ["initiated", "in-progress", "completed"]
    assert leg[-1]["CallSid"] == params["OutboundCallSid"] == final["OutboundCallSid"]
    # its completed comes when the transferred call ends (bob hangs up 1.5 s after the re-INVITE)
    assert leg[-1]["Timestamp"] and int(leg[-1]["CallDuration"]) >= 1
