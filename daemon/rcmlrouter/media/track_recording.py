"""A whole-call recording of either or both directions (``RecordingTrack`` ``inbound``,
``outbound`` or ``both``; ``RecordingChannels`` ``mono`` or ``dual``) as a session tap.

:class:`TrackRecording` is a :class:`~rcmlrouter.media.session.MediaTap`: it hears the far end's
audio as it arrives (``inbound``) and every frame the session sends (``outbound``: what
rcmlrouter plays, silence included, on the 20 ms media clock, which stays on while a tap
listens). Each frame is decoded and placed in a 20 ms slot of one timeline that starts with the
recording: a track's next frame goes to the slot after its last one while it keeps up with the
loop clock (jitter absorbed), and back to the clock's slot when it drifts more than
:data:`RESYNC_SLOTS` (a pause in its RTP: the gap is silence). Slots older than :data:`LAG_SLOTS`
are written out in order, every slot once, so the file has the call's real length:

- ``mono``: the two tracks summed, saturating to 16 bits (what a listener on the line hears);
- ``dual``: a stereo file, the far end (inbound) on the first channel, rcmlrouter's audio
  (outbound) on the second.

The timeline is ``clock`` (monotonic seconds). The file is 16-bit PCM at 8 kHz, written as
it goes (its header fixed at :meth:`close`), at most ``max_length`` seconds long. Nothing is
trimmed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np

from rcmlrouter.media import g711
from rcmlrouter.media.audio import FRAME_SAMPLES, RATE
from rcmlrouter.media.recorder import wav_header

FRAME: Final = FRAME_SAMPLES  # samples in one 20 ms slot
SLOT_SECONDS: Final = FRAME / RATE
LAG_SLOTS: Final = 10  # a slot is written 200 ms after its time: late frames still land
RESYNC_SLOTS: Final = 5  # a track more than 100 ms off the clock is put back on it
TRACKS: Final = ("inbound", "outbound", "both")
CHANNELS: Final = ("mono", "dual")
_SILENCE: Final = np.zeros(FRAME, np.int32)


class TrackRecording:
    """Records the tracks ``track`` names to ``path``; feed it as a session tap."""

    def __init__(
        self,
        path: Path,
        max_length: float,
        track: str = "both",
        channels: str = "mono",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if track not in TRACKS or channels not in CHANNELS:
            raise ValueError(f"track {track!r}, channels {channels!r}")
        self.path = path
        self.channels = 2 if channels == "dual" else 1
        self._inbound = track in ("inbound", "both")
        self._outbound = track in ("outbound", "both")
        self._max_slots = int(max_length / SLOT_SECONDS)
        self._clock = clock
        self._started = clock()
        self._slots: dict[int, list[np.ndarray | None]] = {}
        self._next: list[int | None] = [None, None]  # per track: the slot its next frame takes
        self._written = 0  # slots written so far (the next slot to write)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO | None = path.open("wb")
        self._file.write(wav_header(0, self.channels))

    # -- the session tap ---------------------------------------------------------------------

    def inbound(self, payload: bytes, codec: str) -> None:
        if self._inbound:
            self._place(0, payload, codec)

    def outbound(self, payload: bytes, codec: str) -> None:
        if self._outbound:
            self._place(1, payload, codec)

    def digit(self, digit: str) -> None:
        return None  # key presses are heard as the audio they came with, or not at all

    @property
    def written(self) -> float:
        """Seconds of the timeline written so far (the rest waits :data:`LAG_SLOTS`)."""
        return self._written * SLOT_SECONDS

    # -- the end -----------------------------------------------------------------------------

    def close(self) -> float:
        """Write what is left, fix the header, close; the duration in seconds."""
        if self._file is None:
            return 0.0
        pending = [slot for slot in self._slots if slot >= self._written]
        self._flush(max(pending, default=self._written - 1) + 1)
        self._flush(self._clock_slot())  # up to now: trailing silence is part of the call
        file, self._file = self._file, None
        data = self._written * FRAME * 2 * self.channels
        file.seek(0)
        file.write(wav_header(data, self.channels))
        file.close()
        return self._written * SLOT_SECONDS

    # -- inside ------------------------------------------------------------------------------

    def _clock_slot(self) -> int:
        return int((self._clock() - self._started) / SLOT_SECONDS + 1e-6)  # 0.3 / 0.02 < 15

    def _place(self, track: int, payload: bytes, codec: str) -> None:
        if self._file is None:
            return
        from_clock = self._clock_slot()
        slot = self._next[track]
        if slot is None or abs(slot - from_clock) > RESYNC_SLOTS:
            slot = from_clock
        slot = max(slot, self._written)  # too late for its slot: the earliest still open
        pcm = g711.decode(payload[:FRAME], codec).astype(np.int32)
        if len(pcm) < FRAME:
            pcm = np.pad(pcm, (0, FRAME - len(pcm)))
        self._slots.setdefault(slot, [None, None])[track] = pcm
        self._next[track] = slot + 1
        self._flush(from_clock - LAG_SLOTS)

    def _flush(self, until: int) -> None:
        """Write the slots before ``until`` (silence where a track had nothing)."""
        file = self._file
        if file is None:
            return
        until = min(until, self._max_slots)
        chunks = []
        while self._written < until:
            inbound, outbound = self._slots.pop(self._written, (None, None))
            chunks.append(self._frame(inbound, outbound))
            self._written += 1
        if chunks:
            file.write(b"".join(chunks))

    def _frame(self, inbound: np.ndarray | None, outbound: np.ndarray | None) -> bytes:
        first = _SILENCE if inbound is None else inbound
        second = _SILENCE if outbound is None else outbound
        if self.channels == 2:
            both = np.empty(2 * FRAME, np.int16)
            both[0::2], both[1::2] = first, second
            return both.astype("<i2").tobytes()
        return np.clip(first + second, -32768, 32767).astype("<i2").tobytes()
