"""Sending messages end to end: ``<Sms>`` in a voice document and ``<Message>`` replying to a
MESSAGE, against the real daemon, reaching a SIPp UAS; action and statusCallback see the status."""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.daemon import DaemonProcess
from support.ports import free_port, sipp_media_port
from support.sipp import SCENARIOS, run_sipp, scenario, sipp_path
from support.webhooks import WebhookServer, rcml

pytestmark = pytest.mark.e2e

UAS_SCENARIOS = Path(__file__).resolve().parents[1] / "messaging" / "scenarios"
BODY = "Hello from rcmlrouter"
_numbers = itertools.count(1)


def fresh() -> str:
    return f"68{next(_numbers):04d}"


class Uas:
    def __init__(self, name: str, workdir: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sipp_path(), "-sf", str(UAS_SCENARIOS / name), "-t", "u1", "-i", "127.0.0.1",
             "-p", str(self.port), "-mp", str(sipp_media_port()), "-m", "1", "-timeout", "20s",
             "-timeout_error", "-nostdin", "-trace_err"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir, text=True,
        )  # fmt: skip

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=20)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()


@pytest.fixture
def uas(workdir: Path) -> Iterator[Uas]:
    server = Uas("uas_message_202.xml", workdir)
    yield server
    if server.proc.returncode is None:
        server.proc.kill()
        server.proc.wait()


def test_sms_in_a_voice_document(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path, uas: Uas
) -> None:
    dial = fresh()
    action = webhooks.route(f"/sms-action/{dial}", rcml("<Hangup/>"))
    callback = webhooks.route(f"/sms-status/{dial}", rcml())
    to = f"sip:bob@127.0.0.1:{uas.port}"
    voice = webhooks.route(
        f"/voice/{dial}",
        rcml(f'<Sms to="{to}" action="{action}" statusCallback="{callback}">{BODY}</Sms>'),
    )
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=voice)
    result = run_sipp(
        scenario("uac_daemon_hangs_up.xml", workdir), daemon.sip_port, service=dial,
        workdir=workdir,
    )  # fmt: skip
    assert result.ok, result.errors[-3000:]
    assert uas.wait() == 0
    [request] = webhooks.wait_for(f"/sms-action/{dial}", 1)
    assert request.params["SmsStatus"] == "sent"
    assert request.params["CallSid"].startswith("CA")  # the call's parameters plus the status
    sid = request.params["SmsSid"]
    [status] = webhooks.wait_for(f"/sms-status/{dial}", 1)
    assert status.params["SmsStatus"] == "sent" and status.params["SmsSid"] == sid
    assert status.params["To"] == to and status.params["From"] == dial
    assert status.params["Body"] == BODY
    record = daemon.api().get(f"/SMS/Messages/{sid}.json").json()
    assert (record["status"], record["direction"], record["to"]) == ("sent", "outbound-call", to)


def test_message_replies_to_an_inbound_message(
    daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path, uas: Uas
) -> None:
    dial = fresh()
    action = webhooks.route(f"/reply-action/{dial}", rcml())
    to = f"sip:bob@127.0.0.1:{uas.port}"
    url = webhooks.route(
        f"/sms/{dial}", rcml(f'<Message to="{to}" action="{action}"><Body>{BODY}</Body></Message>')
    )
    daemon.create_number(PhoneNumber=dial, isSIP="true", SmsUrl=url)
    text = (SCENARIOS / "uac_message.xml.in").read_text()
    for key, value in (("CODE", "202"), ("CONTENT_TYPE", "text/plain"), ("BODY", "hi")):
        text = text.replace(f"__{key}__", value)
    message = workdir / "uac_message.xml"
    message.write_text(text)
    result = run_sipp(message, daemon.sip_port, service=dial, workdir=workdir)
    assert result.ok, result.errors[-3000:]
    assert uas.wait() == 0
    [request] = webhooks.wait_for(f"/reply-action/{dial}", 1)
    assert request.params["SmsStatus"] == "sent"
    sid = request.params["SmsSid"]
    record = daemon.api().get(f"/SMS/Messages/{sid}.json").json()
    assert (record["status"], record["direction"]) == ("sent", "outbound-reply")
    assert record["from"] == dial
