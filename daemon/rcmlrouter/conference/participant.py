"""One call in a conference: its settings, what it sends into the mix, and what it should hear.

The room (``conference/room.py``) decides a participant's :class:`Mode`; the call behind it
(``calls/conference_call.py``) watches :attr:`Participant.changed` and plays what the mode asks
for (the wait or hold RCML), and :attr:`Participant.gone` to leave. While the mode is
``MIX`` the mixer (``conference/engine.py``) drives the call's RTP session: it takes the
participant's audio from :meth:`Participant.take_frame` and sends it what the others say.

Input is a small jitter buffer of encoded bytes (any packet size): the mixer takes 160 bytes
(20 ms) per tick; more than :data:`MAX_BUFFERED` frames waiting (the sender's clock runs fast,
or a burst after a stall) drops the oldest, so the delay stays bounded. A muted or held
participant's audio is not buffered at all. Key presses (RFC 4733) never reach the buffer: the
session hands them to its DTMF receiver, so they are not mixed.
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass
from typing import Final

from rcmlrouter.media.session import MediaSession

FRAME_BYTES: Final = 160
MAX_BUFFERED: Final = 4  # frames (80 ms)


class Mode(enum.Enum):
    WAIT = "wait"  # the conference has not started: the wait RCML
    HOLD = "hold"  # held over the API: the hold RCML; not heard, hears nobody
    MIX = "mix"  # hears the others and is heard
    ALONE = "alone"  # a started conference with nobody else to hear: silence


@dataclass(frozen=True, slots=True)
class Settings:
    """A participant's ``<Conference>`` attributes (Twilio's names and defaults)."""

    muted: bool = False
    beep: str = "true"  # true, false, onEnter, onExit
    start_conference_on_enter: bool = True
    end_conference_on_exit: bool = False
    coach: str | None = None  # the CallSid this participant coaches (only it hears them)
    label: str | None = None

    @property
    def beep_on_enter(self) -> bool:
        return self.beep in ("true", "onEnter")

    @property
    def beep_on_exit(self) -> bool:
        return self.beep in ("true", "onExit")


class Participant:
    """A call in a room (one per call sid)."""

    def __init__(self, call_sid: str, session: MediaSession, settings: Settings) -> None:
        self.call_sid = call_sid
        self.session = session
        self.settings = settings
        self.muted = settings.muted
        self.hold = False
        self.hold_url: str | None = None
        self.hold_method = "GET"
        self.coaching = settings.coach
        self.mode = Mode.WAIT
        self.joined_at = time.time()
        self.updated_at = self.joined_at
        self.status = "connected"
        self.gone: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.changed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()
        self._in_codec = ""
        self.frames_dropped = 0

    @property
    def heard(self) -> bool:
        """Whether what this participant says goes into the mix now."""
        return self.mode is Mode.MIX and not self.muted

    # -- the mode, and telling the call ---------------------------------------------------------

    def set_mode(self, mode: Mode) -> None:
        if mode is self.mode:
            return
        self.mode = mode
        self._listen(mode is Mode.MIX)
        self.signal()

    def signal(self) -> None:
        """Wake the call's loop (mode, hold URL or the end changed)."""
        changed, self.changed = self.changed, asyncio.get_running_loop().create_future()
        if not changed.done():
            changed.set_result(None)

    def leave(self, reason: str) -> None:
        """Out of the room: the call goes on with its next verb (``reason`` for the record)."""
        self._listen(False)
        self.status = "completed"
        self.updated_at = time.time()
        if not self.gone.done():
            self.gone.set_result(reason)
        self.signal()

    def _listen(self, on: bool) -> None:
        self._buffer.clear()
        self.session.audio_sink = self._hear if on else None

    # -- audio in -------------------------------------------------------------------------------

    def _hear(self, codec: str, payload: bytes) -> None:
        if self.muted:
            return
        if codec != self._in_codec:
            self._in_codec = codec
            self._buffer.clear()
        buffer = self._buffer
        buffer += payload
        excess = len(buffer) - MAX_BUFFERED * FRAME_BYTES
        if excess > 0:
            excess += -excess % FRAME_BYTES
            del buffer[:excess]
            self.frames_dropped += excess // FRAME_BYTES

    def take_frame(self) -> tuple[str, bytes] | None:
        """The next 20 ms of what this participant said (codec, 160 bytes), if any arrived."""
        buffer = self._buffer
        if len(buffer) < FRAME_BYTES:
            return None
        frame = bytes(buffer[:FRAME_BYTES])
        del buffer[:FRAME_BYTES]
        return self._in_codec, frame
