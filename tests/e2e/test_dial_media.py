"""<Dial> with two pjsua2 peers: the SDP answer passes through and RTP flows end to end (the
daemon relays no media): each side records the other's tone."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from support.webhooks import rcml

pytestmark = pytest.mark.e2e
SCRIPT = Path(__file__).resolve().parents[1] / "support" / "pjsua_media.py"
RATE = 8000


def tone(path: Path, frequency: float, seconds: float = 6.0) -> Path:
    t = np.arange(int(RATE * seconds)) / RATE
    samples = (0.4 * 32767 * np.sin(2 * np.pi * frequency * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())
    return path


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


def pjsua(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result(proc: subprocess.Popen[str], timeout: float = 30) -> dict[str, object]:
    out, err = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith('{"states"')]
    assert lines, f"pjsua2 printed no result (rc={proc.returncode}):\n{err[-2000:]}"
    return dict(json.loads(lines[-1]))


def test_pjsua2_to_pjsua2_through_dial_hears_each_other(daemon, webhooks, tmp_path, dial) -> None:
    callee = pjsua(
        "answer",
        "--play", str(tone(tmp_path / "callee.wav", 1000.0)),
        "--record", str(tmp_path / "callee-heard.wav"),
        "--seconds", "15",
    )  # fmt: skip
    assert callee.stdout is not None
    line = ""
    while not line.startswith('{"ready"'):
        line = callee.stdout.readline()
        assert line, "the pjsua2 callee exited before it was ready"
    ready = json.loads(line)
    url = webhooks.route(
        f"/voice/{dial}", rcml(f"<Dial><Sip>sip:bob@127.0.0.1:{ready['port']}</Sip></Dial>")
    )
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=url)
    caller = pjsua(
        "call", f"sip:{dial}@127.0.0.1:{daemon.sip_port}",
        "--play", str(tone(tmp_path / "caller.wav", 600.0)),
        "--record", str(tmp_path / "caller-heard.wav"),
        "--hangup-after", "3", "--seconds", "12",
    )  # fmt: skip
    caller_result = result(caller)
    callee_result = result(callee)
    assert caller_result["confirmed_at"] is not None, caller_result
    assert callee_result["done"], callee_result  # the caller's BYE reached the callee
    assert caller_result["codec"] == callee_result["codec"] == "PCMU"
    heard_by_caller = dominant_frequency(tmp_path / "caller-heard.wav")
    heard_by_callee = dominant_frequency(tmp_path / "callee-heard.wav")
    assert abs(heard_by_caller[0] - 1000.0) < 20 and heard_by_caller[1] > 500, heard_by_caller
    assert abs(heard_by_callee[0] - 600.0) < 20 and heard_by_callee[1] > 500, heard_by_callee
