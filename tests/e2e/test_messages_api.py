"""POST Messages end to end: the real daemon, its ``[sms] gateway`` a SIPp UAS or the raw UDP
gateway of tests/support, status callbacks at a real webhook server.

- the official twilio SDK, unchanged: ``messages.create(to, from_, body, status_callback)``
  reaches a SIPp UAS, then ``messages(sid).fetch()`` says ``sent``; the callbacks (sending,
  sent) are signed for the SDK's validator;
- curl-like requests on the Restcomm base (JSON and XML), a refused message's callbacks in order
  (sending, failed with ErrorCode), an Idempotency-Key retried through the daemon;
- a restart: a message left ``sending`` is resent as the same request, one left ``queued``
  past the validity period fails with its callback.
"""

from __future__ import annotations

import json
import sqlite3
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

from support.daemon import DaemonProcess
from support.sip_gateway import Arrival, MessageGateway
from support.sipp_uas import SippUas
from support.twilio_sdk import twilio_client
from support.webhooks import Reply, WebhookServer

pytestmark = pytest.mark.e2e

UAS_SCENARIOS = Path(__file__).resolve().parents[1] / "messaging" / "scenarios"
FROM = "+15105555555"
TO = "+15551230000"
FINAL = ("sent", "failed")


def _status(arrival: Arrival) -> int:
    return 488 if arrival.body.startswith("REFUSE") else 202


@pytest.fixture(scope="module")
def gateway() -> Iterator[MessageGateway]:
    with MessageGateway(status=_status) as gw:
        yield gw


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory, gateway: MessageGateway
) -> Iterator[DaemonProcess]:
    process = DaemonProcess(
        tmp_path_factory.mktemp("daemon"), RCMLROUTER_SMS_GATEWAY=gateway.uri
    ).start()
    process.create_number(PhoneNumber=FROM)
    yield process
    process.stop()


def wait_status(daemon: DaemonProcess, sid: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with daemon.twilio_api() as api:
        while True:
            record = dict(api.get(f"/Messages/{sid}.json").json())
            if record["status"] in FINAL or time.monotonic() > deadline:
                return record
            time.sleep(0.05)


def statuses(requests: list[Any]) -> list[tuple[str, str]]:
    return [(r.params["SequenceNumber"], r.params["MessageStatus"]) for r in requests]


def test_the_twilio_sdk_sends_through_a_sipp_gateway(
    tmp_path: Path, webhooks: WebhookServer
) -> None:
    status = webhooks.route("/sdk/status", Reply("", content_type="text/plain"))
    with SippUas(UAS_SCENARIOS / "uas_message_202.xml", tmp_path) as uas:
        daemon = DaemonProcess(
            tmp_path / "sdk", RCMLROUTER_SMS_GATEWAY=f"sip:127.0.0.1:{uas.port}"
        ).start()
        try:
            daemon.create_number(PhoneNumber=FROM)
            client = twilio_client(
                f"http://127.0.0.1:{daemon.api_port}", daemon.account_sid, daemon.auth_token
            )
            created = client.messages.create(
                to=TO, from_=FROM, body="Hello from rcmlrouter", status_callback=status
            )
            assert (created.status, created.direction) == ("queued", "outbound-api")
            code, logs = uas.wait(15)
            assert code == 0, logs  # the UAS checked the body and CSeq 1, answered 202
            callbacks = webhooks.wait_for("/sdk/status", 2)
            assert statuses(callbacks) == [("0", "sending"), ("1", "sent")]
            validator = RequestValidator(daemon.auth_token)
            for request in callbacks:
                signature = request.headers["X-Twilio-Signature"]
                assert validator.validate(request.url, request.params, signature)
                assert request.params["ApiVersion"] == "2010-04-01"
            fetched = client.messages(created.sid).fetch()
            assert (fetched.status, fetched.body, fetched.to) == (
                "sent", "Hello from rcmlrouter", TO
            )  # fmt: skip
        finally:
            daemon.stop()


def test_restcomm_base_curl_like_json_and_xml(
    daemon: DaemonProcess, gateway: MessageGateway
) -> None:
    with daemon.api() as api:  # /restcomm/2012-04-24/Accounts/{AC}
        resp = api.post("/SMS/Messages.json", data={"To": TO, "From": FROM, "Body": "curl json"})
        assert resp.status_code == 200, resp.text
        sid = resp.json()["sid"]
        resp = api.post("/SMS/Messages", data={"To": TO, "From": FROM, "Body": "curl xml"})
        assert resp.status_code == 200, resp.text
        xml_sid = ET.fromstring(resp.text).findtext("SMSMessage/Sid")
        assert xml_sid is not None and xml_sid.startswith("SM")
    assert wait_status(daemon, sid)["status"] == "sent"
    assert wait_status(daemon, xml_sid)["status"] == "sent"
    bodies = gateway.bodies()
    assert len(bodies["curl json"]) == 1 and len(bodies["curl xml"]) == 1
    with daemon.api() as api:
        record = api.get(f"/SMS/Messages/{sid}.json").json()
    assert (record["status"], record["direction"], record["from"]) == (
        "sent", "outbound-api", FROM
    )  # fmt: skip


def test_a_refused_message_fails_with_callbacks_in_order(
    daemon: DaemonProcess, webhooks: WebhookServer
) -> None:
    callback = webhooks.route("/refused/status", Reply("", content_type="text/plain"))
    with daemon.twilio_api() as api:
        resp = api.post(
            "/Messages.json",
            data={"To": TO, "From": FROM, "Body": "REFUSE me", "StatusCallback": callback},
        )
    assert resp.status_code == 201, resp.text
    record = wait_status(daemon, resp.json()["sid"])
    assert (record["status"], record["error_code"]) == ("failed", 30006)
    callbacks = webhooks.wait_for("/refused/status", 2)
    assert statuses(callbacks) == [("0", "sending"), ("1", "failed")]
    assert callbacks[1].params["ErrorCode"] == "30006"


def test_an_idempotency_key_retried_through_the_daemon_sends_once(
    daemon: DaemonProcess, gateway: MessageGateway
) -> None:
    data = {"To": TO, "From": FROM, "Body": "idempotent through the daemon"}
    with daemon.twilio_api() as api:
        answers = [
            api.post("/Messages.json", data=data, headers={"Idempotency-Key": "e2e-1"})
            for _ in range(3)
        ]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert answers[1].content == answers[0].content
    assert wait_status(daemon, answers[0].json()["sid"])["status"] == "sent"
    time.sleep(0.3)
    assert len(gateway.bodies()[data["Body"]]) == 1


def _insert(db: Path, **row: Any) -> None:
    columns = ", ".join(row)
    with sqlite3.connect(db) as conn:
        conn.execute(
            f"INSERT INTO messages ({columns}) VALUES ({', '.join('?' for _ in row)})",
            list(row.values()),
        )


def test_a_restart_resends_a_sending_message_as_the_same_request_and_expires_an_old_one(
    tmp_path: Path, webhooks: WebhookServer
) -> None:
    callback = webhooks.route("/restart/status", Reply("", content_type="text/plain"))
    with MessageGateway() as gw:
        daemon = DaemonProcess(tmp_path / "restart", RCMLROUTER_SMS_GATEWAY=gw.uri).start()
        try:
            number = daemon.create_number(PhoneNumber=FROM)
            daemon.stop()
            common = {
                "account_sid": daemon.account_sid, "number_sid": number["sid"],
                "from_number": FROM, "to_number": TO, "direction": "outbound-api",
                "status_callback": callback, "api_version": "2010-04-01",
            }  # fmt: skip
            wire = {
                "call_id": "cut-at-the-kill@rcmlrouter", "cseq": 1, "from_tag": "feed01",
                "from_uri": f"sip:{FROM}@127.0.0.1", "branch": "z9hG4bKcut0000000000000001",
                "headers": [],
            }  # fmt: skip
            now = time.time()
            sending, old = "SM" + "a" * 32, "SM" + "b" * 32
            _insert(daemon.db, sid=sending, body="cut while sending", status="sending",
                    date_created=now - 5, wire=json.dumps(wire), **common)  # fmt: skip
            _insert(daemon.db, sid=old, body="queued for 11 hours", status="queued",
                    date_created=now - 11 * 3600, **common)  # fmt: skip
            daemon.start()
            assert wait_status(daemon, sending)["status"] == "sent"
            (arrival,) = gw.arrivals()
            assert (arrival.call_id, arrival.cseq, arrival.from_tag, arrival.branch) == (
                wire["call_id"], "1 MESSAGE", wire["from_tag"], wire["branch"]
            )  # fmt: skip
            expired = wait_status(daemon, old)
            assert (expired["status"], expired["error_code"]) == ("failed", 30036)
            callbacks = webhooks.wait_for("/restart/status", 2)
            by_sid = {r.params["MessageSid"]: statuses([r]) for r in callbacks}
            assert by_sid == {sending: [("1", "sent")], old: [("0", "failed")]}
            recovered = daemon.wait_log("messages.outbound_recovered")
            assert recovered is not None and (recovered["count"], recovered["resent"]) == (2, 1)
        finally:
            daemon.stop()
