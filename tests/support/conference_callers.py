"""pjsua2 callers for the conference tests: each plays its own tone, records what it hears, and
reports when its recording began (wall clock), so a phase of a test maps to a stretch of its WAV."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np

from rcmlrouter.media import audio

SCRIPT = Path(__file__).resolve().parent / "pjsua_media.py"
RATE = 8000


def wav_bytes(frequency: float, seconds: float, amplitude: float = 0.3) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(audio.tone(frequency, seconds, amplitude=amplitude).pcm.tobytes())
    return out.getvalue()


def peaks(pcm: np.ndarray, floor: float = 0.12) -> set[int]:
    """The frequencies (to 10 Hz) whose spectral peak is at least ``floor`` of the strongest,
    if the stretch is not near silence."""
    data = pcm.astype(np.float64)
    if data.size < RATE // 4 or np.sqrt(np.mean(data**2)) < 150:
        return set()
    spectrum = np.abs(np.fft.rfft(data * np.hanning(data.size)))
    spectrum[:8] = 0
    frequencies = np.fft.rfftfreq(data.size, 1 / RATE)
    top = spectrum.max()
    found = set()
    for i in range(1, spectrum.size - 1):
        value = spectrum[i]
        if value >= floor * top and value >= spectrum[i - 1] and value >= spectrum[i + 1]:
            found.add(int(round(frequencies[i] / 10) * 10))
    return found


def near(found: set[int], frequency: int) -> bool:
    return any(abs(f - frequency) <= 20 for f in found)


class Caller:
    """One pjsua2 caller playing ``frequency`` into the call and recording what it hears."""

    def __init__(
        self, name: str, uri: str, workdir: Path, hangup_after: float, frequency: float
    ) -> None:
        self.name = name
        self.heard = workdir / f"{name}-heard.wav"
        play = workdir / f"{name}.wav"
        play.write_bytes(wav_bytes(frequency, 40.0))
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), "call", uri, "--play", str(play),
             "--record", str(self.heard), "--hangup-after", str(hangup_after),
             "--seconds", str(hangup_after + 4)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.result: dict[str, Any] = {}

    def finish(self) -> dict[str, Any]:
        out, err = self.proc.communicate(timeout=60)
        lines = [line for line in out.splitlines() if line.startswith('{"states"')]
        assert lines, f"pjsua2 {self.name} printed no result:\n{err[-2000:]}"
        self.result = json.loads(lines[-1])
        return self.result

    def hang_up(self) -> dict[str, Any]:
        """Hang up now (SIGTERM: pjsua_media.py ends the call and finishes its WAV), then
        :meth:`finish`: for a test that has heard all it needs before ``hangup_after``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.finish()

    def window(self, start: float, end: float) -> set[int]:
        """The tones this caller heard between two wall-clock times."""
        with wave.open(str(self.heard), "rb") as source:
            data = np.frombuffer(source.readframes(source.getnframes()), dtype="<i2")
        origin = float(self.result["recording_started_at"])
        first, last = int((start - origin) * RATE), int((end - origin) * RATE)
        return peaks(data[max(first, 0) : max(last, 0)])
