"""Live call control heard by an independent peer: pjsua2 calls the real daemon into a 20 s
``<Pause>``; the API redirects the call to a ``<Play>`` of a 1 kHz tone; pjsua2 records what it
hears: the tone, soon after the redirect, then the daemon's BYE (not 20 s of silence)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from support.call_audio import SCRIPT, frequency, loud_frames, read_wav, tone_wav
from support.daemon import DaemonProcess
from support.webhooks import Reply, WebhookServer, rcml

pytest.importorskip("pjsua2")
pytestmark = pytest.mark.e2e
RATE = 8000


def test_the_caller_hears_the_document_a_redirect_brings(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, tmp_path: Path
) -> None:
    tone = webhooks.route(f"/audio/{dial}/tone.wav", Reply(tone_wav(1000, 1.0), 200, "audio/wav"))
    voice = webhooks.route(f"/voice/{dial}", rcml('<Pause length="20"/>'))
    status = webhooks.route(f"/status/{dial}", Reply("", content_type="text/plain"))
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=voice, StatusCallback=status)
    heard = tmp_path / "heard.wav"
    target = f"sip:{dial}@127.0.0.1:{daemon.sip_port}"
    args = [sys.executable, str(SCRIPT), "call", target, "--record", str(heard), "--seconds", "15"]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as peer:
        deadline = time.monotonic() + 10
        sid = ""
        while not sid:
            assert time.monotonic() < deadline, "the call was not answered"
            callbacks = webhooks.requests(f"/status/{dial}")
            answered = [r for r in callbacks if r.params["CallStatus"] == "in-progress"]
            sid = answered[0].params["CallSid"] if answered else ""
            time.sleep(0.02)
        time.sleep(1.0)  # a second of the pause: silence
        url = f"http://127.0.0.1:{daemon.api_port}/2010-04-01/Accounts/{daemon.account_sid}"
        response = httpx.post(
            f"{url}/Calls/{sid}.json",
            data={"Twiml": f"<Response><Play>{tone}</Play><Hangup/></Response>"},
            auth=(daemon.account_sid, daemon.auth_token),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        out, err = peer.communicate(timeout=30)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, err[-2000:]
    result = json.loads(lines[-1])
    assert result["done"] and result["states"][-1][1] == 200, result  # the daemon's BYE
    assert result["seconds"] < 10  # not the 20 s pause
    pcm = read_wav(heard)
    frames = loud_frames(pcm)
    assert frames.sum() / 50 == pytest.approx(1.0, rel=0.1)  # the whole tone, once
    first = int(np.argmax(frames))
    assert first / 50 > 0.8  # silence before the redirect
    assert frequency(pcm[first * 160 : first * 160 + RATE // 2]) == pytest.approx(1000, abs=10)
