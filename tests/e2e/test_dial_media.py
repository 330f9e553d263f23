"""<Dial> with two pjsua2 peers: the SDP answer passes through and RTP flows end to end (the
daemon relays no media): each side records the other's tone."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from support.call_audio import answered, answering, call, tone_wav
from support.webhooks import rcml

pytestmark = pytest.mark.e2e


def dominant_frequency(path: Path) -> tuple[float, float]:
    """(the strongest frequency, the RMS level) of a recorded WAV."""
    with wave.open(str(path), "rb") as source:
        rate = source.getframerate()
        data = np.frombuffer(source.readframes(source.getnframes()), dtype="<i2")
    data = data.astype(float)
    if data.size < rate // 2:
        return 0.0, 0.0
    spectrum = np.abs(np.fft.rfft(data * np.hanning(data.size)))
    frequencies = np.fft.rfftfreq(data.size, 1 / rate)
    return float(frequencies[int(np.argmax(spectrum))]), float(np.sqrt(np.mean(data**2)))


def test_pjsua2_to_pjsua2_through_dial_hears_each_other(daemon, webhooks, tmp_path, dial) -> None:
    played = {"callee": tmp_path / "callee.wav", "caller": tmp_path / "caller.wav"}
    played["callee"].write_bytes(tone_wav(1000.0, 6.0))
    played["caller"].write_bytes(tone_wav(600.0, 6.0))
    callee, port = answering(
        "--play", str(played["callee"]),
        "--record", str(tmp_path / "callee-heard.wav"),
        "--seconds", "15",
    )  # fmt: skip
    url = webhooks.route(
        f"/voice/{dial}", rcml(f"<Dial><Sip>sip:bob@127.0.0.1:{port}</Sip></Dial>")
    )
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=url)
    caller_result = call(
        daemon, dial, tmp_path / "caller-heard.wav",
        "--play", str(played["caller"]),
        "--hangup-after", "3", "--seconds", "12",
    )  # fmt: skip
    callee_result = answered(callee)
    assert caller_result["confirmed_at"] is not None, caller_result
    assert callee_result["done"], callee_result  # the caller's BYE reached the callee
    assert caller_result["codec"] == callee_result["codec"] == "PCMU"
    heard_by_caller = dominant_frequency(tmp_path / "caller-heard.wav")
    heard_by_callee = dominant_frequency(tmp_path / "callee-heard.wav")
    assert abs(heard_by_caller[0] - 1000.0) < 20 and heard_by_caller[1] > 500, heard_by_caller
    assert abs(heard_by_callee[0] - 600.0) < 20 and heard_by_callee[1] > 500, heard_by_callee
