"""Record what the caller sends: decoded inbound RTP to a 16-bit 8 kHz mono WAV file.

The recording ends on ``timeout`` seconds of silence (frame energy below a threshold, or no
audio at all), on ``max_length``, on a finish key, or when the call ends. Trailing silence is
trimmed (Twilio's default ``trim-silence``), keeping a short tail after the last sound.
RTP timestamps place the frames: a gap (lost packets) is filled with silence, a packet from the
past (reordered or duplicated) is dropped.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np

from rcmlrouter.media.audio import RATE

SILENCE_RMS: Final = 400.0  # about -38 dBFS
TAIL_SECONDS: Final = 0.3
MAX_GAP_SAMPLES: Final = 2 * RATE
_HEADER_SIZE: Final = 44


@dataclass(frozen=True, slots=True)
class RecordingResult:
    """How a recording ended: ``reason`` is finish-key, timeout, max-length or hangup."""

    path: Path
    duration: float
    reason: str
    digits: str = ""

    @property
    def digits_param(self) -> str:
        """The ``Digits`` posted to the action: the key, ``hangup``, or empty."""
        return "hangup" if self.reason == "hangup" else self.digits


def wav_header(data_bytes: int, channels: int = 1) -> bytes:
    """A 44-byte RIFF header for 16-bit PCM at 8 kHz, ``channels`` interleaved."""
    block = 2 * channels
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, RATE, RATE * block, block, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def frame_rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], "<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples * samples))) if len(samples) else 0.0


class Recorder:
    """Writes frames as they arrive; :meth:`check` decides timeouts on the loop clock."""

    def __init__(self, path: Path, max_length: float, timeout: float) -> None:
        self.path = path
        self.max_length = max_length
        self.timeout = timeout
        self.done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._file: BinaryIO | None = None
        self._samples = 0
        self._last_sound = 0  # sample position just after the last loud frame
        self._next_timestamp: int | None = None
        self._started = 0.0
        self._last_sound_time = 0.0

    def start(self, now: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("wb")
        self._file.write(wav_header(0))
        self._started = self._last_sound_time = now

    def feed(self, timestamp: int, pcm: bytes, now: float) -> None:
        """One decoded frame (little-endian 16-bit) with its RTP timestamp."""
        if self._file is None or self.done.done():
            return
        if self._next_timestamp is not None:
            gap = (timestamp - self._next_timestamp) & 0xFFFFFFFF
            if gap >= 0x80000000:
                return  # from the past: reordered or duplicated
            if 0 < gap <= MAX_GAP_SAMPLES:
                self._write(bytes(2 * gap))
        self._next_timestamp = (timestamp + len(pcm) // 2) & 0xFFFFFFFF
        self._write(pcm)
        if frame_rms(pcm) >= SILENCE_RMS:
            self._last_sound = self._samples
            self._last_sound_time = now
        self.check(now)

    def _write(self, pcm: bytes) -> None:
        assert self._file is not None
        room = round(self.max_length * RATE) - self._samples
        self._file.write(pcm[: 2 * max(room, 0)])
        self._samples += min(len(pcm) // 2, max(room, 0))

    def check(self, now: float) -> None:
        """End the recording on silence or length (wall clock as well as samples)."""
        if self.done.done():
            return
        if self._samples >= round(self.max_length * RATE) or now - self._started >= self.max_length:
            self.finish("max-length")
        elif self.timeout > 0 and now - self._last_sound_time >= self.timeout:
            self.finish("timeout")

    def finish(self, reason: str) -> None:
        if not self.done.done():
            self.done.set_result(reason)

    def close(self, trim: bool = True) -> float:
        """Trim trailing silence, fix the header, close; the duration in seconds."""
        if self._file is None:
            return 0.0
        keep = self._samples
        if trim:
            keep = min(self._samples, self._last_sound + round(TAIL_SECONDS * RATE))
            if self._last_sound == 0:
                keep = 0
        self._file.truncate(_HEADER_SIZE + 2 * keep)
        self._file.seek(0)
        self._file.write(wav_header(2 * keep))
        self._file.close()
        self._file = None
        return keep / RATE
