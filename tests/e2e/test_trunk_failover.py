"""Trunk failover end to end: a number dialled by ``<Dial>`` or ``POST Calls`` goes to trunk
``a`` (``failover = "b"``, ``failover_timeout = 2``) and, when ``a`` cannot take the call (503,
a closed port: ICMP unreachable, silence), to trunk ``b``; a busy callee on ``a`` stops there.
SIPp plays the trunks on loopback, a bare UDP socket the silent one."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.daemon import DaemonProcess
from support.sip_callee import SipCallee
from support.sipp import run_sipp, scenario
from support.sipp_uas import SippUas, free_port
from support.webhooks import Reply, WebhookServer, rcml

pytestmark = pytest.mark.e2e

SIP_SCENARIOS = Path(__file__).resolve().parents[1] / "sip" / "scenarios"
OK = Reply("", content_type="text/plain")
FROM = "+15105555555"
FAILOVER_TIMEOUT = 2.0


class Trunks:
    """The two trunk ports the daemon dials (a test puts SIPp, a silent socket or nothing on
    each)."""

    def __init__(self) -> None:
        self.a = free_port()
        self.b = free_port()

    def uas(self, port: int, name: str | Path, workdir: Path, calls: int = 1) -> SippUas:
        uas = SippUas(name, workdir, calls=calls)
        uas.port = port
        return uas


class SilentPort:
    """A UDP socket that takes datagrams and never answers (a trunk that is up but mute)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.setblocking(False)

    def received(self) -> list[bytes]:
        got = []
        while True:
            try:
                got.append(self.sock.recv(65535))
            except BlockingIOError:
                return got

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def trunks() -> Trunks:
    return Trunks()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, trunks: Trunks) -> Iterator[DaemonProcess]:
    process = DaemonProcess(
        tmp_path_factory.mktemp("daemon"),
        RCMLROUTER_DIAL_DEFAULT_TRUNK="a",
        RCMLROUTER_TRUNKS_A_URI=f"sip:127.0.0.1:{trunks.a}",
        RCMLROUTER_TRUNKS_A_FAILOVER="b",
        RCMLROUTER_TRUNKS_A_FAILOVER_TIMEOUT=str(FAILOVER_TIMEOUT),
        RCMLROUTER_TRUNKS_B_URI=f"sip:127.0.0.1:{trunks.b}",
        RCMLROUTER_TRUNKS_B_NUMBER_FORMAT="national",
        RCMLROUTER_OUTBOUND_CPS="50",
    ).start()
    process.create_number(PhoneNumber=FROM)
    yield process
    process.stop()


def dial_number(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, after: str = "<Hangup/>"
) -> str:
    """The DID ``dial`` runs ``<Dial action>`` to +14155550123; returns the action's path."""
    action = webhooks.route(f"/after/{dial}", rcml(after))
    url = webhooks.route(f"/voice/{dial}", rcml(f'<Dial action="{action}">4155550123</Dial>'))
    status = webhooks.route(f"/status/{dial}", OK)
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=url, StatusCallback=status)
    return f"/after/{dial}"


def caller(daemon: DaemonProcess, workdir: Path, number: str, name: str, **subst: str) -> None:
    result = run_sipp(
        scenario(name, workdir, **subst), daemon.sip_port, service=number, workdir=workdir
    )
    assert result.ok, f"SIPp caller failed ({result.returncode}):\n{result.errors[-3000:]}"


def finished(uas: SippUas) -> None:
    code, logs = uas.wait(15)
    assert code == 0, f"SIPp trunk failed ({code}):\n{logs[-3000:]}"


def call_record(daemon: DaemonProcess, sid: str, status: str) -> dict[str, Any]:
    record: dict[str, Any] = {}
    with daemon.api() as api:
        for _ in range(200):
            record = api.get(f"/Calls/{sid}.json").json()
            if record.get("status") == status:
                return record
            time.sleep(0.05)
    raise AssertionError(f"call {sid}: {record}")


def failovers(daemon: DaemonProcess, reason: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{daemon.api_port}/metrics", timeout=5).text
    wanted = f'rcmlrouter_trunk_failovers_total{{reason="{reason}",trunk="a"}} '
    for line in text.splitlines():
        if line.startswith(wanted):
            return float(line.split()[-1])
    return 0.0


def logged(daemon: DaemonProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in daemon.raw if line.startswith("{")]


def answered_through_b(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path, dial: str, trunks: Trunks
) -> tuple[dict[str, str], float]:
    """Dial the number with ``b`` answering; the action's parameters and the seconds taken."""
    action = dial_number(daemon, webhooks, dial)
    with trunks.uas(trunks.b, "uas_answer_after_ring.xml", workdir) as b:
        started = time.monotonic()
        caller(daemon, workdir, dial, "uac_caller_hangs_up.xml")
        elapsed = time.monotonic() - started
        finished(b)
    [request] = webhooks.wait_for(action, 1)
    return request.params, elapsed


# ---- <Dial> ---------------------------------------------------------------------------------


def test_503_on_the_first_trunk_fails_over_to_the_second(
    daemon, webhooks, workdir, dial, trunks
) -> None:
    before = failovers(daemon, "503")
    with trunks.uas(trunks.a, "uas_trunk_503.xml", workdir) as a:
        params, elapsed = answered_through_b(daemon, webhooks, workdir, dial, trunks)
        finished(a)
    assert params["DialCallStatus"] == "completed" and params["DialSipResponseCode"] == "200"
    assert elapsed < FAILOVER_TIMEOUT  # at once, not after a timeout
    leg = call_record(daemon, params["DialCallSid"], "completed")
    assert leg["sip_response_code"] == 200 and leg["direction"] == "outbound-dial"
    assert failovers(daemon, "503") == before + 1
    tries = [e for e in logged(daemon) if e.get("call_sid") == params["CallSid"]]
    assert [(e["event"], e["trunk"]) for e in tries if e["event"].startswith("dial.trunk")] == [
        ("dial.trunk_try", "a"),
        ("dial.trunk_failover", "a"),
        ("dial.trunk_try", "b"),
    ]


def test_a_closed_port_icmp_unreachable_fails_over_at_once(
    daemon, webhooks, workdir, dial, trunks
) -> None:
    before = failovers(daemon, "transport")
    params, elapsed = answered_through_b(daemon, webhooks, workdir, dial, trunks)
    assert params["DialCallStatus"] == "completed" and params["DialSipResponseCode"] == "200"
    assert elapsed < FAILOVER_TIMEOUT
    assert failovers(daemon, "transport") == before + 1


def test_a_silent_trunk_fails_over_after_its_failover_timeout(
    daemon, webhooks, workdir, dial, trunks
) -> None:
    before = failovers(daemon, "no-response")
    silent = SilentPort(trunks.a)
    try:
        params, elapsed = answered_through_b(daemon, webhooks, workdir, dial, trunks)
        invites = [d for d in silent.received() if d.startswith(b"INVITE ")]
    finally:
        silent.close()
    assert params["DialCallStatus"] == "completed" and params["DialSipResponseCode"] == "200"
    assert FAILOVER_TIMEOUT - 0.2 < elapsed < FAILOVER_TIMEOUT + 2.5
    assert invites and b"sip:+14155550123@" in invites[0]  # trunk a: e164
    assert failovers(daemon, "no-response") == before + 1


def test_busy_on_the_first_trunk_does_not_fail_over(
    daemon, webhooks, workdir, dial, trunks
) -> None:
    action = dial_number(daemon, webhooks, dial, '<Reject reason="busy"/>')
    b = SilentPort(trunks.b)  # a try on b would land here
    try:
        with trunks.uas(trunks.a, SIP_SCENARIOS / "uas_busy.xml", workdir) as a:
            caller(daemon, workdir, dial, "uac_refused.xml.in", code="486")
            finished(a)
        [request] = webhooks.wait_for(action, 1)
        time.sleep(0.3)
        assert b.received() == []
    finally:
        b.close()
    assert request.params["DialCallStatus"] == "busy"
    assert request.params["DialSipResponseCode"] == "486"


def test_no_failover_once_the_callee_rang(daemon, webhooks, workdir, dial, trunks) -> None:
    action = dial_number(daemon, webhooks, dial, '<Reject reason="busy"/>')
    b = SilentPort(trunks.b)
    try:
        with trunks.uas(trunks.a, "uas_trunk_ring_503.xml", workdir) as a:
            caller(daemon, workdir, dial, "uac_refused.xml.in", code="486")
            finished(a)
        [request] = webhooks.wait_for(action, 1)
        time.sleep(0.3)
        assert b.received() == []
    finally:
        b.close()
    assert request.params["DialCallStatus"] == "failed"
    assert request.params["DialSipResponseCode"] == "503"


def test_503_on_both_trunks_fails_with_the_last_trunks_answer(
    daemon, webhooks, workdir, dial, trunks
) -> None:
    action = dial_number(daemon, webhooks, dial, '<Reject reason="busy"/>')
    with (
        trunks.uas(trunks.a, "uas_trunk_503.xml", workdir) as a,
        trunks.uas(trunks.b, "uas_trunk_503.xml", workdir) as b,
    ):
        caller(daemon, workdir, dial, "uac_refused.xml.in", code="486")
        finished(a)
        finished(b)
    [request] = webhooks.wait_for(action, 1)
    assert request.params["DialCallStatus"] == "failed"
    assert request.params["DialSipResponseCode"] == "503"
    leg = call_record(daemon, request.params["DialCallSid"], "failed")
    assert leg["sip_response_code"] == 503


# ---- POST Calls -----------------------------------------------------------------------------


def test_an_api_call_fails_over_and_completes_through_the_second_trunk(
    daemon, webhooks, workdir, trunks
) -> None:
    status = webhooks.route("/status/api-failover", OK)
    events = ["initiated", "ringing", "answered", "completed"]
    with (
        trunks.uas(trunks.a, "uas_trunk_503.xml", workdir) as a,
        trunks.uas(trunks.b, "uas_answer_after_ring.xml", workdir) as b,
        daemon.api() as api,
    ):
        created = api.post(
            "/Calls.json",
            data={
                "To": "+14155550124",
                "From": FROM,
                "Twiml": '<Response><Pause length="1"/></Response>',
                "StatusCallback": status,
                "StatusCallbackEvent": events,
            },
        )
        assert created.status_code in (200, 201), created.text
        finished(a)
        finished(b)
    sid = created.json()["sid"]
    record = call_record(daemon, sid, "completed")
    assert record["sip_response_code"] == 200
    got = sorted(
        webhooks.wait_for("/status/api-failover", 4), key=lambda e: int(e.params["SequenceNumber"])
    )
    assert [e.params["CallStatus"] for e in got] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]


def test_a_failover_try_takes_a_slot_of_the_next_trunks_cps(tmp_path_factory, workdir) -> None:
    """Two calls fail over from ``a`` at once; ``b`` (1 call/s) gets them a second apart."""
    with SipCallee() as b:
        a = SippUas("uas_trunk_503.xml", workdir, calls=2)
        daemon = DaemonProcess(
            tmp_path_factory.mktemp("paced"),
            RCMLROUTER_OUTBOUND_CPS="50",
            RCMLROUTER_DIAL_DEFAULT_TRUNK="a",
            RCMLROUTER_TRUNKS_A_URI=f"sip:127.0.0.1:{a.port}",
            RCMLROUTER_TRUNKS_A_FAILOVER="b",
            RCMLROUTER_TRUNKS_B_URI=f"sip:127.0.0.1:{b.port}",
            RCMLROUTER_TRUNKS_B_CPS="1",
        ).start()
        try:
            daemon.create_number(PhoneNumber=FROM)
            data = {"From": FROM, "Twiml": "<Response><Hangup/></Response>"}
            with a, daemon.api() as api:
                sids = [
                    api.post("/Calls.json", data={**data, "To": f"+1555000400{i}"}).json()["sid"]
                    for i in range(2)
                ]
                finished(a)
                records = [call_record(daemon, sid, "completed") for sid in sids]
        finally:
            daemon.stop()
        arrivals = sorted({i.call_id: i.at for i in b.invites}.values())
    assert [r["sip_response_code"] for r in records] == [200, 200]
    assert len(arrivals) == 2
    assert 0.8 <= arrivals[1] - arrivals[0] <= 1.6, arrivals


def test_a_refused_tcp_connection_fails_over_at_once(tmp_path_factory) -> None:
    """Trunk ``a`` over TCP with nothing listening: the refused connection moves the API call
    to ``b`` at once (well before ``a``'s failover_timeout)."""
    closed = free_port(socket.SOCK_STREAM)
    with SipCallee() as b:
        daemon = DaemonProcess(
            tmp_path_factory.mktemp("tcp"),
            RCMLROUTER_DIAL_DEFAULT_TRUNK="a",
            RCMLROUTER_TRUNKS_A_URI=f"sip:127.0.0.1:{closed}",
            RCMLROUTER_TRUNKS_A_TRANSPORT="tcp",
            RCMLROUTER_TRUNKS_A_FAILOVER="b",
            RCMLROUTER_TRUNKS_A_FAILOVER_TIMEOUT="5",
            RCMLROUTER_TRUNKS_B_URI=f"sip:127.0.0.1:{b.port}",
        ).start()
        try:
            daemon.create_number(PhoneNumber=FROM)
            started = time.monotonic()
            with daemon.api() as api:
                data = {
                    "To": "+15550004100",
                    "From": FROM,
                    "Twiml": "<Response><Hangup/></Response>",
                }
                sid = api.post("/Calls.json", data=data).json()["sid"]
            record = call_record(daemon, sid, "completed")
            elapsed = time.monotonic() - started
            reasons = [
                e.get("reason") for e in logged(daemon) if e["event"] == "dial.trunk_failover"
            ]
        finally:
            daemon.stop()
        assert len(b.invites) == 1
    assert record["sip_response_code"] == 200 and elapsed < 3
    assert reasons == ["transport"]
