"""Media streams end to end: pjsua2 calls the real daemon, whose RCML streams the call to an agent.

The agent is Pipecat (its ``TwilioFrameSerializer`` behind its ``WebsocketServerTransport``, in a
subprocess: support/pipecat_agent.py) for the main path, and a `websockets` server following
Twilio's documented protocol (support/stream_agent.py) for the edges. ``ws://`` on loopback:
the daemon runs with ``[streams] allow_insecure``.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection

from rcmlrouter.media import g711
from rcmlrouter.rcml.signing import compute_signature
from support.call_audio import call, frequency, loud_frames, read_wav, runs, tone_wav
from support.daemon import DaemonProcess
from support.ports import free_port
from support.stream_agent import StreamAgent
from support.twilio_sdk import twilio_client
from support.webhooks import Reply, WebhookServer, rcml

pytest.importorskip("pjsua2")
pytestmark = pytest.mark.e2e
AGENT = Path(__file__).resolve().parents[1] / "support" / "pipecat_agent.py"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    process = DaemonProcess(
        tmp_path_factory.mktemp("daemon"), RCMLROUTER_STREAMS_ALLOW_INSECURE="true"
    ).start()
    yield process
    process.stop()


@pytest.fixture
def agent() -> Iterator[StreamAgent]:
    server = StreamAgent().start_thread()
    yield server
    server.stop_thread()


def number(daemon: DaemonProcess, webhooks: WebhookServer, dial: str, body: Reply) -> None:
    url = webhooks.route(f"/voice/{dial}", body)
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=url)


def callbacks(webhooks: WebhookServer, path: str, count: int) -> list[dict[str, str]]:
    return [r.params for r in webhooks.wait_for(path, count)]


def test_a_pipecat_agent_hears_the_caller_and_the_caller_hears_the_agent(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, tmp_path: Path
) -> None:
    port, out = free_port(), tmp_path / "agent.json"
    agent = subprocess.Popen(
        [sys.executable, str(AGENT), "--port", str(port), "--out", str(out), "--tone", "1000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert agent.stdout is not None and agent.stdout.readline().strip() == "ready"
        status = webhooks.url(f"/streams/{dial}")
        webhooks.route(f"/streams/{dial}", Reply("", 204))
        stream = f'<Stream url="ws://127.0.0.1:{port}/" statusCallback="{status}"/>'
        number(daemon, webhooks, dial, rcml(f"<Connect>{stream}</Connect>"))
        said, heard = tmp_path / "said.wav", tmp_path / "heard.wav"
        said.write_bytes(tone_wav(440, 6.0))
        call(daemon, dial, heard, "--play", str(said), "--dtmf", "5", "--dtmf-at", "2.0",
             "--hangup-after", "5", "--seconds", "15")  # fmt: skip
        agent.wait(15)
        result = json.loads(out.read_text())
    finally:
        if agent.poll() is None:
            agent.kill()
    pcm = read_wav(heard)
    frames = loud_frames(pcm)
    assert frames.sum() / 50 == pytest.approx(3.0, abs=0.3), runs(frames)  # the agent's tone
    first = int(np.argmax(frames)) * 160
    assert frequency(pcm[first + 800 : first + 800 + 8000]) == pytest.approx(1000, abs=5)
    assert result["frequency"] == pytest.approx(440, abs=5), result  # the caller, at the agent
    assert result["seconds"] > 3.0
    assert result["digits"] == ["5"]
    events = callbacks(webhooks, f"/streams/{dial}", 2)
    assert [e["StreamEvent"] for e in events] == ["stream-started", "stream-stopped"]
    assert events[0]["StreamSid"].startswith("MZ") and events[0]["CallSid"].startswith("CA")


def test_the_agent_closing_ends_connect_and_its_action_runs(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, agent: StreamAgent, tmp_path: Path
) -> None:
    async def listen_then_close(server: StreamAgent, ws: ServerConnection) -> None:
        for _ in range(12):  # connected, start, 10 media
            server.record(await ws.recv())
        await ws.close()

    agent.behaviour = listen_then_close
    action = webhooks.route(f"/after/{dial}", rcml("<Hangup/>"))
    url = f"{agent.url}?token=abc"
    stream = f'<Stream url="{url}" name="bot"><Parameter name="lang" value="fr"/></Stream>'
    number(daemon, webhooks, dial, rcml(f'<Connect action="{action}">{stream}</Connect>'))
    call(daemon, dial, tmp_path / "heard.wav", "--seconds", "10")
    [posted] = webhooks.wait_for(f"/after/{dial}", 1)
    assert posted.params["StreamEvent"] == "stream-stopped"
    assert posted.params["StreamSid"] == agent.events("start")[0]["streamSid"]
    start = agent.events("start")[0]["start"]
    assert start["customParameters"] == {"lang": "fr"}
    assert start["callSid"] == posted.params["CallSid"]
    assert agent.paths == ["/agent?token=abc"]
    expected = compute_signature(url, {}, daemon.auth_token)
    assert agent.headers[0]["x-twilio-signature"] == expected


def test_an_agent_that_cannot_be_reached_gets_stream_error_and_the_document_goes_on(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, tmp_path: Path
) -> None:
    status = webhooks.route(f"/streams/{dial}", Reply("", 204))
    action = webhooks.route(f"/after/{dial}", rcml("<Hangup/>"))
    stream = f'<Stream url="ws://127.0.0.1:{free_port()}/" statusCallback="{status}"/>'
    number(daemon, webhooks, dial, rcml(f'<Connect action="{action}">{stream}</Connect>'))
    started = time.monotonic()
    call(daemon, dial, tmp_path / "heard.wav", "--seconds", "10")
    assert time.monotonic() - started < 8
    [posted] = webhooks.wait_for(f"/after/{dial}", 1)
    assert posted.params["StreamEvent"] == "stream-error"
    [event] = callbacks(webhooks, f"/streams/{dial}", 1)
    assert event["StreamEvent"] == "stream-error" and event["StreamError"]
    with daemon.api() as api:
        found = api.get("/Notifications.json").json()["notifications"]
    mine = [n for n in found if n["call_sid"] == posted.params["CallSid"]]
    assert [n["error_code"] for n in mine] == [31902], mine


def test_start_stream_both_tracks_with_play_then_stop(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, agent: StreamAgent, tmp_path: Path
) -> None:
    tone = webhooks.route(f"/audio/{dial}.wav", Reply(tone_wav(700, 1.5), 200, "audio/wav"))
    verbs = (
        f'<Start><Stream url="{agent.url}" name="fork" track="both_tracks"/></Start>',
        '<Pause length="1"/>',  # <Start> goes on at once; the socket connects meanwhile
        f"<Play>{tone}</Play>",
        '<Stop><Stream name="fork"/></Stop>',
        '<Pause length="1"/>',
    )
    number(daemon, webhooks, dial, rcml(*verbs))
    said = tmp_path / "said.wav"
    said.write_bytes(tone_wav(300, 5.0))
    call(daemon, dial, tmp_path / "heard.wav", "--play", str(said), "--seconds", "12")
    deadline = time.monotonic() + 5
    while not agent.events("stop") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert agent.events("start")[0]["start"]["tracks"] == ["inbound", "outbound"]
    assert len(agent.events("stop")) == 1
    outbound = b"".join(
        base64.b64decode(m["media"]["payload"])
        for m in agent.events("media")
        if m["media"]["track"] == "outbound"
    )
    pcm = g711.decode(outbound, "PCMU")
    loud = np.flatnonzero(np.abs(pcm) > 3000)
    assert len(loud) / 8000 == pytest.approx(1.5, abs=0.2)
    assert frequency(pcm[loud[0] : loud[0] + 8000]) == pytest.approx(700, abs=5)
    assert frequency(agent.inbound_audio()[4000:]) == pytest.approx(300, abs=5)


def test_the_twilio_sdk_starts_and_stops_a_stream_on_a_running_call(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, agent: StreamAgent, tmp_path: Path
) -> None:
    number(daemon, webhooks, dial, rcml('<Pause length="6"/>'))
    said = tmp_path / "said.wav"
    said.write_bytes(tone_wav(500, 8.0))
    caller = threading.Thread(
        target=call,
        args=(daemon, dial, tmp_path / "heard.wav", "--play", str(said), "--seconds", "12"),
    )
    caller.start()
    try:
        [voice] = webhooks.wait_for(f"/voice/{dial}", 1)
        call_sid = voice.params["CallSid"]
        twilio = f"http://127.0.0.1:{daemon.api_port}/2010-04-01/Accounts/{daemon.account_sid}"
        auth = (daemon.account_sid, daemon.auth_token)
        with httpx.Client(base_url=twilio, auth=auth, timeout=10) as api:
            time.sleep(0.5)  # answered
            bad = api.post(f"/Calls/{call_sid}/Streams.json", data={"Url": "http://x/"})
            assert bad.status_code == 400, bad.text
            missing = api.post(f"/Calls/CA{'0' * 32}/Streams.json", data={"Url": agent.url})
            assert missing.status_code == 404
        # the official Twilio SDK, unchanged but for its origin
        sdk = twilio_client(f"http://127.0.0.1:{daemon.api_port}", *auth)
        created = sdk.calls(call_sid).streams.create(
            url=agent.url, name="rest", parameter1_name="k", parameter1_value="v"
        )
        assert created.sid.startswith("MZ") and created.status == "in-progress"
        assert created.name == "rest" and created.call_sid == call_sid
        assert created.date_updated is not None and created.date_updated.year >= 2026
        time.sleep(1.0)
        stopped = sdk.calls(call_sid).streams("rest").update(status="stopped")
        assert stopped.status == "stopped" and stopped.sid == created.sid
        with daemon.api() as api:  # the Restcomm base
            again = api.post(f"/Calls/{call_sid}/Streams/rest.json", data={"Status": "stopped"})
            assert again.status_code == 404
    finally:
        caller.join(20)
    start = agent.events("start")[0]
    assert start["streamSid"] == created.sid
    assert start["start"]["customParameters"] == {"k": "v"}
    assert len(agent.events("stop")) == 1
    assert frequency(agent.inbound_audio()) == pytest.approx(500, abs=5)


def test_stream_limits_per_call_are_notified_and_the_document_goes_on(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, agent: StreamAgent, tmp_path: Path
) -> None:
    status = webhooks.route(f"/streams/{dial}", Reply("", 204))
    starts = [
        f'<Start><Stream url="{agent.url}" name="{name}" statusCallback="{status}"/></Start>'
        for name in ("a", "a", "b", "c", "d", "e")  # a twice; four may run at once
    ]
    number(daemon, webhooks, dial, rcml(*starts, '<Pause length="1"/>'))
    call(daemon, dial, tmp_path / "heard.wav", "--seconds", "10")
    events = callbacks(webhooks, f"/streams/{dial}", 10)
    errors = sorted(e["StreamError"] for e in events if e["StreamEvent"] == "stream-error")
    assert errors == ["a stream named 'a' is running", "more than 4 streams"], events
    started = [e["StreamName"] for e in events if e["StreamEvent"] == "stream-started"]
    assert sorted(started) == ["a", "b", "c", "d"]
    with daemon.api() as api:
        found = api.get("/Notifications.json").json()["notifications"]
    call_sid = events[0]["CallSid"]
    codes = sorted(n["error_code"] for n in found if n["call_sid"] == call_sid)
    assert codes == [31940, 31941], codes
