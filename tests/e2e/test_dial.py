"""<Dial>: SIPp caller → rcmlrouter → SIPp callee(s), on loopback, against the real daemon."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from support.daemon import DaemonProcess
from support.sipp import run_sipp, scenario
from support.sipp_uas import SippUas
from support.webhooks import Reply, WebhookServer, rcml

pytestmark = pytest.mark.e2e

SIP_SCENARIOS = Path(__file__).resolve().parents[1] / "sip" / "scenarios"
OK = Reply("", content_type="text/plain")


@pytest.fixture(scope="module")
def trunk() -> SippUas:
    """Where the daemon's trunk points (a port; each trunk test starts SIPp on it)."""
    return SippUas("uas_trunk_407.xml", Path("."))


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, trunk: SippUas) -> Any:
    process = DaemonProcess(
        tmp_path_factory.mktemp("daemon"),
        RCMLROUTER_TRUNKS_LAB_URI=f"sip:127.0.0.1:{trunk.port}",
        RCMLROUTER_TRUNKS_LAB_USERNAME="trunkuser",
        RCMLROUTER_TRUNKS_LAB_PASSWORD="trunkpass",
    ).start()
    yield process
    process.stop()


def caller(daemon: DaemonProcess, workdir: Path, number: str, name: str, **subst: str) -> None:
    result = run_sipp(
        scenario(name, workdir, **subst), daemon.sip_port, service=number, workdir=workdir
    )
    assert result.ok, f"SIPp caller failed ({result.returncode}):\n{result.errors[-3000:]}"


def callee_ok(uas: SippUas) -> None:
    code, logs = uas.wait(15)
    assert code == 0, f"SIPp callee failed ({code}):\n{logs[-3000:]}"


def number(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, *verbs: str, **params: str
) -> str:
    url = webhooks.route(f"/voice/{dial}", rcml(*verbs))
    status = webhooks.route(f"/status/{dial}", OK)
    daemon.create_number(
        PhoneNumber=dial, isSIP="true", VoiceUrl=url, StatusCallback=status, **params
    )
    return url


def call_record(daemon: DaemonProcess, sid: str, status: str | None = None) -> dict[str, Any]:
    """The Calls resource of ``sid`` (once it has ``status``, when given)."""
    record: dict[str, Any] = {}
    with daemon.api() as api:
        for _ in range(100):
            response = api.get(f"/Calls/{sid}.json")
            if response.status_code == 200:
                record = response.json()
                if status is None or record["status"] == status:
                    return record
            time.sleep(0.05)
    raise AssertionError(f"call {sid}: {record or 'not found'}")


def statuses(webhooks: WebhookServer, path: str, count: int) -> list[dict[str, str]]:
    events = webhooks.wait_for(path, count)
    return [e.params for e in sorted(events, key=lambda e: int(e.params["SequenceNumber"]))]


# ---- answered bridges ---------------------------------------------------------------------------


def test_answered_bridge_caller_hangs_up_and_both_records_are_linked(
    daemon, webhooks, workdir, dial
) -> None:
    with SippUas(SIP_SCENARIOS / "uas_answer.xml", workdir) as uas:
        number(daemon, webhooks, dial, f"<Dial><Sip>{uas.uri}</Sip></Dial>")
        caller(daemon, workdir, dial, "uac_caller_hangs_up.xml")
        callee_ok(uas)
    events = statuses(webhooks, f"/status/{dial}", 3)
    assert [e["CallStatus"] for e in events] == ["ringing", "in-progress", "completed"]
    child_sid = events[-1]["OutboundCallSid"]
    assert events[1]["OutboundCallSid"] == child_sid
    parent = call_record(daemon, events[0]["CallSid"], "completed")
    child = call_record(daemon, child_sid, "completed")
    assert parent["direction"] == "inbound" and parent["parent_call_sid"] is None
    assert child["direction"] == "outbound-dial"
    assert child["parent_call_sid"] == parent["sid"]
    assert child["to"] == "callee" and child["from"] == "alice"
    assert child["sip_response_code"] == 200


def test_callee_hangs_up_the_action_gets_the_dial_parameters(
    daemon, webhooks, workdir, dial
) -> None:
    action = webhooks.route(f"/after/{dial}", rcml("<Hangup/>"))
    with SippUas(SIP_SCENARIOS / "uas_remote_bye.xml", workdir) as uas:
        dial_verb = f'<Dial action="{action}" callerId="+15105550000"><Sip>{uas.uri}</Sip></Dial>'
        number(daemon, webhooks, dial, dial_verb)
        caller(daemon, workdir, dial, "uac_bridged_daemon_hangs_up.xml")
        callee_ok(uas)
    got = webhooks.wait_for(f"/after/{dial}", 1)
    assert got, "\n".join(daemon.raw[-40:])
    params = got[0].params
    assert params["DialCallStatus"] == "completed"
    assert params["DialCallSid"].startswith("CA") and params["DialCallSid"] != params["CallSid"]
    assert params["DialSipResponseCode"] == "200"
    assert params["DialSipCallId"].endswith("@rcmlrouter")
    assert int(params["DialCallDuration"]) <= 1 and "DialRingDuration" in params
    assert params["CallStatus"] == "in-progress"
    child = call_record(daemon, params["DialCallSid"], "completed")
    assert child["from"] == "+15105550000"


def test_time_limit_hangs_up_both(daemon, webhooks, workdir, dial) -> None:
    with SippUas(SIP_SCENARIOS / "uas_answer.xml", workdir) as uas:
        number(daemon, webhooks, dial, f'<Dial timeLimit="1"><Sip>{uas.uri}</Sip></Dial>')
        started = time.monotonic()
        caller(daemon, workdir, dial, "uac_bridged_daemon_hangs_up.xml")
        callee_ok(uas)
    assert 0.9 < time.monotonic() - started < 5


def test_early_media_183_with_sdp_is_relayed(daemon, webhooks, workdir, dial) -> None:
    with SippUas(SIP_SCENARIOS / "uas_early_media.xml", workdir) as uas:
        number(daemon, webhooks, dial, f"<Dial><Sip>{uas.uri}</Sip></Dial>")
        caller(daemon, workdir, dial, "uac_early_media.xml")
        callee_ok(uas)


def test_callee_reinvite_hold_is_relayed_to_the_caller(daemon, webhooks, workdir, dial) -> None:
    with SippUas(SIP_SCENARIOS / "uas_reinvite.xml", workdir) as uas:
        number(daemon, webhooks, dial, f"<Dial><Sip>{uas.uri}</Sip></Dial>")
        caller(daemon, workdir, dial, "uac_answer_reinvite.xml")
        callee_ok(uas)  # its ACK checked the caller's a=recvonly came back


def test_trunk_number_with_407_and_per_noun_status_callbacks(
    daemon, webhooks, workdir, dial, trunk
) -> None:
    noun_status = webhooks.route(f"/noun/{dial}", OK)
    events = "initiated ringing answered completed"
    verb = (
        f'<Dial><Number statusCallback="{noun_status}" statusCallbackEvent="{events}">'
        "4155550123</Number></Dial>"
    )
    number(daemon, webhooks, dial, verb)
    uas = SippUas("uas_trunk_407.xml", workdir)
    uas.port = trunk.port
    with uas:
        caller(daemon, workdir, dial, "uac_caller_hangs_up.xml")
        callee_ok(uas)
    noun = statuses(webhooks, f"/noun/{dial}", 3)
    assert [e["CallStatus"] for e in noun] == ["initiated", "in-progress", "completed"]
    assert [e["SequenceNumber"] for e in noun] == ["0", "1", "2"]
    parent = statuses(webhooks, f"/status/{dial}", 3)[0]["CallSid"]
    assert {e["ParentCallSid"] for e in noun} == {parent}
    assert {e["Direction"] for e in noun} == {"outbound-dial"}
    assert noun[0]["To"] == "+14155550123" and noun[-1]["SipResponseCode"] == "200"


# ---- unanswered ---------------------------------------------------------------------------------


@pytest.mark.parametrize("with_action", [True, False])
def test_busy_callee(daemon, webhooks, workdir, dial, with_action) -> None:
    action = webhooks.route(f"/after/{dial}", rcml('<Reject reason="busy"/>'))
    with SippUas(SIP_SCENARIOS / "uas_busy.xml", workdir) as uas:
        attribute = f' action="{action}"' if with_action else ""
        next_verb = "" if with_action else '<Reject reason="busy"/>'
        number(daemon, webhooks, dial, f"<Dial{attribute}><Sip>{uas.uri}</Sip></Dial>{next_verb}")
        caller(daemon, workdir, dial, "uac_refused.xml.in", code="486")
        callee_ok(uas)
    if with_action:
        [request] = webhooks.wait_for(f"/after/{dial}", 1)
        assert request.params["DialCallStatus"] == "busy"
        assert request.params["DialSipResponseCode"] == "486"
        assert request.params["CallStatus"] == "ringing"
    else:
        assert webhooks.requests(f"/after/{dial}") == []
    final = statuses(webhooks, f"/status/{dial}", 2)[-1]
    assert final["CallStatus"] == "busy" and "OutboundCallSid" in final


def test_no_answer_cancels_the_callee(daemon, webhooks, workdir, dial) -> None:
    action = webhooks.route(f"/after/{dial}", rcml("<Reject/>"))
    with SippUas(SIP_SCENARIOS / "uas_ring_cancel.xml", workdir) as uas:
        number(
            daemon,
            webhooks,
            dial,
            f'<Dial timeout="1" action="{action}"><Sip>{uas.uri}</Sip></Dial>',
        )
        caller(daemon, workdir, dial, "uac_refused.xml.in", code="603")
        callee_ok(uas)
    [request] = webhooks.wait_for(f"/after/{dial}", 1)
    assert request.params["DialCallStatus"] == "no-answer"
    assert 1 <= int(request.params["DialRingDuration"]) <= 3
    child = call_record(daemon, request.params["DialCallSid"], "no-answer")
    assert child["parent_call_sid"] == request.params["CallSid"]


def test_parallel_forking_first_answer_wins_the_other_is_cancelled(
    daemon, webhooks, workdir, dial
) -> None:
    action = webhooks.route(f"/after/{dial}", rcml("<Hangup/>"))
    with (
        SippUas("uas_answer_after_ring.xml", workdir) as winner,
        SippUas(SIP_SCENARIOS / "uas_ring_cancel.xml", workdir) as loser,
    ):
        verb = f'<Dial action="{action}"><Sip>{loser.uri}</Sip><Sip>{winner.uri}</Sip></Dial>'
        number(daemon, webhooks, dial, verb)
        caller(daemon, workdir, dial, "uac_caller_hangs_up.xml")
        callee_ok(winner)
        callee_ok(loser)
    final = statuses(webhooks, f"/status/{dial}", 3)[-1]
    assert final["CallStatus"] == "completed"
    winner_record = call_record(daemon, final["OutboundCallSid"], "completed")
    assert winner_record["to"] == "callee"


def test_caller_cancel_while_the_callee_rings(daemon, webhooks, workdir, dial) -> None:
    with SippUas(SIP_SCENARIOS / "uas_ring_cancel.xml", workdir) as uas:
        number(daemon, webhooks, dial, f"<Dial><Sip>{uas.uri}</Sip></Dial>")
        caller(daemon, workdir, dial, "uac_cancel.xml")  # 487 to the caller
        callee_ok(uas)  # CANCEL to the callee
    final = statuses(webhooks, f"/status/{dial}", 2)[-1]
    assert final["CallStatus"] == "canceled"
    child = call_record(daemon, final["OutboundCallSid"], "canceled")
    assert child["direction"] == "outbound-dial"


# ---- the action after the caller hung up ------------------------------------------------------


def test_caller_hangs_up_during_the_bridge_the_action_still_gets_the_outcome(
    daemon, webhooks, workdir, dial
) -> None:
    action = webhooks.route(f"/after/{dial}", rcml("<Say>never run</Say>"))
    with SippUas(SIP_SCENARIOS / "uas_answer.xml", workdir) as uas:
        number(daemon, webhooks, dial, f'<Dial action="{action}"><Sip>{uas.uri}</Sip></Dial>')
        caller(daemon, workdir, dial, "uac_caller_hangs_up.xml")
        callee_ok(uas)
    [got] = webhooks.wait_for(f"/after/{dial}", 1)
    params = got.params
    assert params["DialCallStatus"] == "completed" and params["CallStatus"] == "completed"
    assert params["DialCallSid"].startswith("CA") and params["DialSipResponseCode"] == "200"
    assert int(params["DialCallDuration"]) >= 0
    events = statuses(webhooks, f"/status/{dial}", 3)
    assert events[-1]["CallStatus"] == "completed"
    assert events[-1]["OutboundCallSid"] == params["DialCallSid"]


def test_caller_cancels_during_the_ringing_the_action_gets_canceled(
    daemon, webhooks, workdir, dial
) -> None:
    action = webhooks.route(f"/after/{dial}", rcml("<Hangup/>"))
    with SippUas(SIP_SCENARIOS / "uas_ring_cancel.xml", workdir) as uas:
        number(daemon, webhooks, dial, f'<Dial action="{action}"><Sip>{uas.uri}</Sip></Dial>')
        caller(daemon, workdir, dial, "uac_cancel.xml")
        callee_ok(uas)
    [got] = webhooks.wait_for(f"/after/{dial}", 1)
    assert got.params["DialCallStatus"] == "canceled" and got.params["CallStatus"] == "canceled"
    assert got.params["DialCallDuration"] == "0"


# ---- callees that cannot or do not answer -----------------------------------------------------


@pytest.fixture
def black_hole() -> Any:
    """A UDP port that takes every datagram and answers none (no ICMP either)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
        hole.bind(("127.0.0.1", 0))
        yield hole.getsockname()[1]


def closed_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unanswered_dial(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path, dial: str, uri: str, timeout: int
) -> tuple[dict[str, str], float]:
    """Dial ``uri`` with an action whose document rejects the caller busy (486): the caller
    gets 486 only if the action's document ran. Returns the action's parameters and the
    seconds from the INVITE to the action."""
    action = webhooks.route(f"/after/{dial}", rcml('<Reject reason="busy"/>'))
    verb = f'<Dial timeout="{timeout}" action="{action}"><Sip>{uri}</Sip></Dial>'
    number(daemon, webhooks, dial, verb)
    started = time.time()
    caller(daemon, workdir, dial, "uac_refused.xml.in", code="486")
    [request] = webhooks.wait_for(f"/after/{dial}", 1)
    return request.params, request.at - started


def test_a_callee_that_never_answers_ends_at_the_timeout(
    daemon, webhooks, workdir, dial, black_hole
) -> None:
    """Nothing comes back, not even 100 Trying: the Dial's timeout still ends the ringing (it
    rang until the caller gave up, as no CANCEL may be sent before a provisional response)."""
    params, took = unanswered_dial(
        daemon, webhooks, workdir, dial, f"sip:x@127.0.0.1:{black_hole}", timeout=3
    )
    assert 3.0 <= took < 4.5, took
    assert params["DialCallStatus"] == "no-answer" and params["CallStatus"] == "ringing"
    assert params["DialRingDuration"] == "3" and params["DialCallDuration"] == "0"
    assert params["DialSipResponseCode"] == "408"
    child = call_record(daemon, params["DialCallSid"], "no-answer")
    assert child["duration"] == 0 and child["parent_call_sid"] == params["CallSid"]
    final = statuses(webhooks, f"/status/{dial}", 2)[-1]
    assert final["CallStatus"] == "busy"  # the action's <Reject reason="busy"/>


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_an_unreachable_callee_fails_at_once(daemon, webhooks, workdir, dial, transport) -> None:
    """UDP: the ICMP port unreachable; TCP: the refused connect. Either ends the leg ``failed``
    long before the 10 s timeout, and the action's document runs."""
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    suffix = ";transport=tcp" if transport == "tcp" else ""
    uri = f"sip:x@127.0.0.1:{closed_port(kind)}{suffix}"
    params, took = unanswered_dial(daemon, webhooks, workdir, dial, uri, timeout=10)
    assert took < 1.5, took
    assert params["DialCallStatus"] == "failed" and params["DialSipResponseCode"] == "503"
    assert params["DialRingDuration"] == "0" and params["DialCallDuration"] == "0"
    call_record(daemon, params["DialCallSid"], "failed")


def test_caller_cancels_while_a_silent_callee_rings_the_durations_are_true(
    daemon, webhooks, workdir, dial, black_hole
) -> None:
    """The issue's 8 s call reported DialRingDuration=12: the cancelled leg waited 5 s for a
    CANCEL it could not send. Now it is released at once and the action comes at once."""
    action = webhooks.route(f"/after/{dial}", rcml("<Hangup/>"))
    verb = f'<Dial timeout="30" action="{action}"><Sip>sip:x@127.0.0.1:{black_hole}</Sip></Dial>'
    number(daemon, webhooks, dial, verb)
    caller(daemon, workdir, dial, "uac_cancel.xml")  # CANCEL 0.3 s after the 180
    cancelled = time.time()
    [got] = webhooks.wait_for(f"/after/{dial}", 1)
    assert got.at - cancelled < 1.0
    assert got.params["DialCallStatus"] == "canceled" and got.params["CallStatus"] == "canceled"
    assert got.params["DialRingDuration"] == "0" and got.params["DialCallDuration"] == "0"
    child = call_record(daemon, got.params["DialCallSid"], "canceled")
    parent = call_record(daemon, got.params["CallSid"], "canceled")
    assert child["duration"] == 0 and parent["duration"] in (0, None)
