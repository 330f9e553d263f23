"""POST Calls end to end: the real daemon places calls to SIPp UASes (through a ``[[trunks]]``
entry, or straight to a ``sip:`` URI), runs their documents from a real webhook server, and
reports status callbacks there.

- the official twilio SDK, unchanged: ``calls.create(to=, from_=, url=, status_callback=,
  status_callback_event=[...])``: the callbacks come in order (initiated, ringing, in-progress,
  completed; SequenceNumber 0..3), the document gets ``Direction=outbound-api``;
- curl-like requests on the Restcomm base (a ``sip:`` URI, ``Twiml``), XML and JSON;
- busy, no-answer (``Timeout``), a subset of events, the default (completed only);
- validation: unimplemented Twilio parameters named, Twilio's codes; Idempotency-Key.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.daemon import DaemonProcess
from support.sip_callee import SipCallee
from support.sipp_uas import SippUas
from support.twilio_sdk import twilio_client
from support.webhooks import Reply, WebhookServer, rcml

pytestmark = pytest.mark.e2e

SIP_SCENARIOS = Path(__file__).resolve().parents[1] / "sip" / "scenarios"
FROM = "+15105555555"
TO = "+15551230000"
OK = Reply("", content_type="text/plain")
FINAL = ("completed", "busy", "no-answer", "failed", "canceled")


@pytest.fixture(scope="module")
def trunk() -> SippUas:
    """Where the daemon's trunk points (a port; a test starts SIPp on it)."""
    return SippUas("uas_answer_after_ring.xml", Path("."))


@contextlib.contextmanager
def caller_daemon(workdir: Path, **env: str) -> Iterator[DaemonProcess]:
    """A daemon started with ``env``, owning the caller ID FROM; stopped at the end."""
    process = DaemonProcess(workdir, **env).start()
    try:
        process.create_number(PhoneNumber=FROM)
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, trunk: SippUas) -> Iterator[DaemonProcess]:
    trunk_uri = f"sip:127.0.0.1:{trunk.port}"
    workdir = tmp_path_factory.mktemp("daemon")
    with caller_daemon(
        workdir, RCMLROUTER_TRUNKS_LAB_URI=trunk_uri, RCMLROUTER_OUTBOUND_CPS="50"
    ) as process:
        yield process


def wait_final(daemon: DaemonProcess, sid: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with daemon.twilio_api() as api:
        while True:
            record = dict(api.get(f"/Calls/{sid}.json").json())
            if record["status"] in FINAL or time.monotonic() > deadline:
                return record
            time.sleep(0.05)


def callbacks(webhooks: WebhookServer, path: str, count: int) -> list[dict[str, str]]:
    events = webhooks.wait_for(path, count)
    return [e.params for e in sorted(events, key=lambda e: int(e.params["SequenceNumber"]))]


def callee_ok(uas: SippUas) -> None:
    code, logs = uas.wait(15)
    assert code == 0, f"SIPp callee failed ({code}):\n{logs[-3000:]}"


def place_call(
    daemon: DaemonProcess, workdir: Path, scenario: str, **params: str
) -> tuple[dict[str, Any], float]:
    """POST Calls on Twilio's base from FROM to a SIPp callee playing ``scenario`` (whose run
    must pass): the created call (201), and the seconds from the POST until SIPp finished."""
    with SippUas(SIP_SCENARIOS / scenario, workdir) as uas, daemon.twilio_api() as api:
        posted = time.monotonic()
        response = api.post("/Calls.json", data={"To": uas.uri, "From": FROM, **params})
        assert response.status_code == 201, response.text
        callee_ok(uas)
        return dict(response.json()), time.monotonic() - posted


# ---- the twilio SDK, through the trunk ----------------------------------------------------------


def test_twilio_sdk_places_a_call_and_every_event_comes_in_order(
    daemon, webhooks, trunk, workdir
) -> None:
    voice = webhooks.route("/voice/sdk", rcml('<Pause length="1"/>'))
    status = webhooks.route("/status/sdk", OK)
    client = twilio_client(
        f"http://127.0.0.1:{daemon.api_port}", daemon.account_sid, daemon.auth_token
    )
    trunk.cwd = workdir
    with trunk:
        call = client.calls.create(
            to=TO,
            from_=FROM,
            url=voice,
            status_callback=status,
            status_callback_event=["initiated", "ringing", "answered", "completed"],
        )
        assert call.sid.startswith("CA") and call.status == "queued"
        assert call.direction == "outbound-api" and call.to == TO and call._from == FROM
        callee_ok(trunk)
    events = callbacks(webhooks, "/status/sdk", 4)
    assert [e["CallStatus"] for e in events] == ["initiated", "ringing", "in-progress", "completed"]
    assert [e["SequenceNumber"] for e in events] == ["0", "1", "2", "3"]
    assert {e["Direction"] for e in events} == {"outbound-api"}
    assert {e["CallSid"] for e in events} == {call.sid}
    assert all(e["Timestamp"] and e["CallbackSource"] == "call-progress-events" for e in events)
    assert int(events[-1]["CallDuration"]) >= 1
    [document] = webhooks.requests("/voice/sdk")
    assert document.params["Direction"] == "outbound-api"
    assert document.params["CallStatus"] == "in-progress"
    assert document.params["To"] == TO and document.params["From"] == FROM
    assert document.params["ApiVersion"] == "2010-04-01"
    fetched = client.calls(call.sid).fetch()
    assert fetched.status == "completed" and fetched.direction == "outbound-api"


# ---- curl on the Restcomm base, straight to a SIP URI -------------------------------------------


def test_restcomm_base_twiml_to_a_sip_uri_reports_completed_only_by_default(
    daemon, webhooks, workdir
) -> None:
    status = webhooks.route("/status/restcomm", OK)
    with SippUas(SIP_SCENARIOS / "uas_remote_bye.xml", workdir) as uas, daemon.api() as api:
        response = api.post(
            "/Calls.json",
            data={
                "To": uas.uri,
                "From": FROM,
                "Twiml": '<Response><Pause length="5"/></Response>',
                "StatusCallback": status,
            },
        )
        assert response.status_code == 200, response.text  # Restcomm's create status
        created = response.json()
        assert created["status"] == "queued" and created["direction"] == "outbound-api"
        callee_ok(uas)
    [final] = callbacks(webhooks, "/status/restcomm", 1)
    time.sleep(0.3)
    assert len(webhooks.requests("/status/restcomm")) == 1  # only completed (Twilio's default)
    assert final["CallStatus"] == "completed" and final["SequenceNumber"] == "0"
    assert final["ApiVersion"] == "2012-04-24"
    assert wait_final(daemon, created["sid"])["status"] == "completed"


def test_restcomm_base_xml_answer(daemon, workdir) -> None:
    with SippUas(SIP_SCENARIOS / "uas_answer.xml", workdir) as uas, daemon.api() as api:
        response = api.post(
            "/Calls",
            data={"To": uas.uri, "From": FROM, "Twiml": "<Response><Hangup/></Response>"},
        )
        assert response.status_code == 200, response.text
        assert "<Status>queued</Status>" in response.text
        assert response.text.startswith("<?xml") and "<RestcommResponse>" in response.text
        callee_ok(uas)


# ---- busy, no answer ----------------------------------------------------------------------------


def test_busy_ends_busy_with_its_callback(daemon, webhooks, workdir) -> None:
    status = webhooks.route("/status/busy", OK)
    never = webhooks.url("/never")
    created, _ = place_call(daemon, workdir, "uas_busy.xml", Url=never, StatusCallback=status)
    [final] = callbacks(webhooks, "/status/busy", 1)
    assert final["CallStatus"] == "busy" and final["SipResponseCode"] == "486"
    assert wait_final(daemon, created["sid"])["status"] == "busy"
    assert webhooks.requests("/never") == []


def test_no_answer_within_timeout_cancels_and_ends_no_answer(daemon, webhooks, workdir) -> None:
    status = webhooks.route("/status/noanswer", OK)
    created, took = place_call(
        daemon,
        workdir,
        "uas_ring_cancel.xml",
        Url=webhooks.url("/never"),
        Timeout="1",
        StatusCallback=status,
        StatusCallbackEvent="ringing completed",
    )
    events = callbacks(webhooks, "/status/noanswer", 2)
    assert [e["CallStatus"] for e in events] == ["ringing", "no-answer"]
    assert [e["SequenceNumber"] for e in events] == ["0", "1"]
    assert 0.9 <= took < 5  # the CANCEL came after the Timeout, not at once, not much later
    assert wait_final(daemon, created["sid"])["status"] == "no-answer"


# ---- validation, idempotency --------------------------------------------------------------------


U = {"To": TO, "From": FROM, "Url": "http://127.0.0.1/x"}
LONG_TWIML = "<Response>" + "x" * 4000 + "</Response>"


@pytest.mark.parametrize(
    ("data", "code", "named"),
    [
        ({"From": FROM, "Url": "http://127.0.0.1/x"}, 21201, "To"),
        ({"To": "not a number", "From": FROM, "Url": "http://127.0.0.1/x"}, 21211, "To"),
        ({"To": TO, "Url": "http://127.0.0.1/x"}, 21213, "From"),
        ({"To": TO, "From": "+15550009999", "Url": "http://127.0.0.1/x"}, 21210, "From"),
        ({"To": TO, "From": FROM}, 21205, "Url"),
        ({"To": TO, "From": FROM, "Twiml": LONG_TWIML}, 32018, "Twiml"),
        ({"To": TO, "From": FROM, "Twiml": "<Nope/>"}, 12100, "Twiml"),
        ({"To": TO, "From": FROM, "Url": "ftp://x"}, 21205, "Url"),
        ({**U, "Timeout": "-3"}, 21208, "Timeout"),
        ({**U, "SendDigits": "12x"}, 21206, "SendDigits"),
        ({**U, "MachineDetection": "Enable"}, 20001, "MachineDetection"),
        ({**U, "AsyncAmd": "true"}, 20001, "AsyncAmd"),
        ({**U, "Byoc": "BY123"}, 20001, "Byoc"),
        ({**U, "CallToken": "t"}, 20001, "CallToken"),
        ({**U, "StatusCallbackEvent": "bogus"}, 20001, "StatusCallbackEvent"),
    ],
)  # fmt: skip
def test_refused_with_twilios_code_naming_the_parameter(daemon, data, code, named) -> None:
    with daemon.twilio_api() as api:
        response = api.post("/Calls.json", data=data)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == code and body["message"].startswith(named), body


def test_idempotency_key_places_one_call(daemon, webhooks, workdir) -> None:
    status = webhooks.route("/status/idem", OK)
    with SippUas(SIP_SCENARIOS / "uas_answer.xml", workdir) as uas, daemon.twilio_api() as api:
        data = {"To": uas.uri, "From": FROM, "Twiml": "<Response><Hangup/></Response>"}
        data["StatusCallback"] = status
        headers = {"Idempotency-Key": "call-once-1"}
        first = api.post("/Calls.json", data=data, headers=headers)
        second = api.post("/Calls.json", data=data, headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.headers["Idempotent-Replayed"] == "true"
        assert first.json()["sid"] == second.json()["sid"]
        callee_ok(uas)  # SIPp takes exactly one call (-m 1) and exits 0
    callbacks(webhooks, "/status/idem", 1)
    time.sleep(0.3)
    assert len(webhooks.requests("/status/idem")) == 1


# ---- call setup: TimeLimit, SendDigits, FallbackUrl, ApplicationSid ------------------------------


def test_time_limit_hangs_up_an_answered_call(daemon, webhooks, workdir) -> None:
    status = webhooks.route("/status/limit", OK)
    created, took = place_call(
        daemon,
        workdir,
        "uas_answer.xml",
        Twiml='<Response><Pause length="30"/></Response>',
        TimeLimit="1",
        SendDigits="1w2#",
        StatusCallback=status,
    )
    assert took < 8  # our BYE came, long before the Pause's end
    [final] = callbacks(webhooks, "/status/limit", 1)
    assert final["CallStatus"] == "completed" and final["CallDuration"] in ("1", "2", "3")
    assert wait_final(daemon, created["sid"])["status"] == "completed"


def test_a_failed_url_goes_to_the_fallback_url_with_the_error(daemon, webhooks, workdir) -> None:
    broken = webhooks.route("/voice/broken", Reply("nope", status=500, content_type="text/plain"))
    fallback = webhooks.route("/voice/fallback", rcml("<Hangup/>"))
    place_call(daemon, workdir, "uas_answer.xml", Url=broken, FallbackUrl=fallback)
    [request] = webhooks.wait_for("/voice/fallback", 1)
    assert request.params["ErrorCode"] == "11200" and request.params["ErrorUrl"] == broken
    assert request.params["Direction"] == "outbound-api"


def test_application_sid_runs_the_applications_voice_url(daemon, webhooks, workdir) -> None:
    voice = webhooks.route("/voice/app", rcml("<Hangup/>"))
    with daemon.api() as api:
        app = api.post(
            "/Applications.json", data={"FriendlyName": "outbound", "VoiceUrl": voice}
        ).json()
    created, _ = place_call(daemon, workdir, "uas_answer.xml", ApplicationSid=app["sid"])
    [request] = webhooks.wait_for("/voice/app", 1)
    assert request.params["CallSid"] == created["sid"]
    with daemon.twilio_api() as api:
        refused = api.post(
            "/Calls.json", data={"To": TO, "From": FROM, "ApplicationSid": "AP" + "0" * 32}
        )
    assert refused.status_code == 400 and refused.json()["code"] == 21218


def test_a_full_queue_answers_429_with_a_code(tmp_path_factory, webhooks) -> None:
    env = {"RCMLROUTER_OUTBOUND_CPS": "0.5", "RCMLROUTER_OUTBOUND_MAX_QUEUED": "2"}
    with caller_daemon(tmp_path_factory.mktemp("small-queue"), **env) as daemon:
        data = {"To": "sip:nobody@127.0.0.1:9", "From": FROM, "Twiml": "<Response/>"}
        with daemon.twilio_api() as api:
            answers = [api.post("/Calls.json", data=data) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [201, 201, 201]  # one dialling, 2 wait
    assert answers[3].status_code == 429 and answers[3].json()["code"] == 20429
    assert answers[3].headers["Retry-After"] == "1"


def test_calls_are_paced_at_the_trunks_cps_below_the_accounts(tmp_path_factory) -> None:
    with SipCallee() as callee:
        env = {
            "RCMLROUTER_OUTBOUND_CPS": "20",
            "RCMLROUTER_TRUNKS_SLOW_URI": f"sip:127.0.0.1:{callee.port}",
            "RCMLROUTER_TRUNKS_SLOW_CPS": "5",
        }
        with caller_daemon(tmp_path_factory.mktemp("paced"), **env) as daemon:
            data = {"From": FROM, "Twiml": "<Response><Hangup/></Response>"}
            with daemon.twilio_api() as api:
                for i in range(6):
                    api.post("/Calls.json", data={**data, "To": f"+1555000300{i}"})
                deadline = time.monotonic() + 10
                while len(callee.invites) < 6 and time.monotonic() < deadline:
                    time.sleep(0.05)
        arrivals = sorted({i.call_id: i.at for i in callee.invites}.values())
    assert len(arrivals) == 6
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert 0.95 <= arrivals[-1] - arrivals[0] <= 1.5, gaps  # 5 calls/s, not 20
    assert min(gaps) >= 0.15, gaps


@pytest.mark.parametrize(("password", "status"), [("trunkpass", "completed"), ("wrong", "failed")])
def test_sip_auth_answers_the_callees_digest_challenge(
    daemon, webhooks, workdir, password, status
) -> None:
    created, _ = place_call(
        daemon,
        workdir,
        "uas_auth_401.xml",
        Twiml="<Response><Hangup/></Response>",
        SipAuthUsername="trunkuser",
        SipAuthPassword=password,
    )
    record = wait_final(daemon, created["sid"])
    assert record["status"] == status
