"""What a pjsua2 caller heard, measured: WAVs made and read, loud 20 ms frames, frequencies; and
one call placed with support/pjsua_media.py (tests/e2e/test_media.py and test_streams.py)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np

from rcmlrouter.media import audio
from support.daemon import DaemonProcess
from support.tones import dominant_frequency

SCRIPT = Path(__file__).resolve().parent / "pjsua_media.py"
RATE = 8000


def wav_bytes(pcm: np.ndarray) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.astype("<i2").tobytes())
    return out.getvalue()


def tone_wav(frequency: float, seconds: float, lead: float = 0.0) -> bytes:
    """A tone at 40 % of full scale, after ``lead`` seconds of silence."""
    pcm = audio.tone(frequency, seconds, amplitude=0.4).pcm
    return wav_bytes(np.concatenate([np.zeros(int(lead * RATE), np.int16), pcm]))


def read_wav(data: bytes | Path) -> np.ndarray:
    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    with wave.open(source) as w:
        assert w.getframerate() == RATE
        return np.frombuffer(w.readframes(w.getnframes()), "<i2")


def loud_frames(pcm: np.ndarray) -> np.ndarray:
    """Per 20 ms frame: whether any sample is loud."""
    loud = np.abs(pcm.astype(np.float64)) > 3000
    return loud[: len(loud) // 160 * 160].reshape(-1, 160).any(axis=1)


def runs(frames: np.ndarray) -> list[tuple[float, float]]:
    """(start, length) in seconds of each loud stretch (gaps under 100 ms joined)."""
    found: list[list[float]] = []
    for index in np.flatnonzero(frames):
        at = index / 50
        if found and at - (found[-1][0] + found[-1][1]) < 0.1:
            found[-1][1] = at + 0.02 - found[-1][0]
        else:
            found.append([at, 0.02])
    return [(round(s, 2), round(n, 2)) for s, n in found]


def frequency(pcm: np.ndarray) -> float:
    """The strongest frequency of 8 kHz audio heard on a call."""
    return dominant_frequency(pcm, RATE)


def call(daemon: DaemonProcess, dial: str, heard: Path, *args: str) -> dict[str, Any]:
    target = f"sip:{dial}@127.0.0.1:{daemon.sip_port}"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "call", target, "--record", str(heard), *args],
        capture_output=True,
        text=True,
        timeout=40,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"pjsua2 printed no result (rc={proc.returncode}):\n{proc.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert result["done"], result  # the daemon hung up
    return result


def answering(*args: str) -> tuple[subprocess.Popen[str], int]:
    """A pjsua2 callee (``pjsua_media.py answer ARGS``) once it listens: the process and its SIP
    port. Read what happened with :func:`answered`."""
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "answer", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = ""
    while not line.startswith('{"ready"'):
        line = proc.stdout.readline()
        assert line, "the pjsua2 callee exited before it was ready"
    return proc, int(json.loads(line)["port"])


def answered(proc: subprocess.Popen[str], timeout: float = 30) -> dict[str, Any]:
    """What the pjsua2 callee of :func:`answering` (or any pjsua_media.py process) printed
    last: its call states, digits, codec, when the call was confirmed and whether it ended."""
    out, err = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith('{"states"')]
    assert lines, f"pjsua2 printed no result (rc={proc.returncode}):\n{err[-2000:]}"
    return dict(json.loads(lines[-1]))
