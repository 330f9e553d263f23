"""The agent's audio on a bidirectional stream: a bounded buffer played out on the media clock.

The agent sends µ-law in messages of any length, in bursts or faster than real time.
:class:`AgentAudio` cuts it into 20 ms frames and keeps them, with the agent's marks in between,
in arrival order. :class:`AgentPlayout` is the call's playout source: the RTP sender takes one
frame per 20 ms tick of the one media clock (silence while the buffer is empty), so the caller
hears steady 20 ms packets whatever the agent's timing.

- A mark is echoed (``echo``) once every frame queued before it has been taken for sending; a
  mark with nothing before it is echoed at once.
- ``clear`` drops the buffered audio at once (the next tick sends silence) and echoes the marks
  it drops, in order.
- Overflow policy: at most ``max_frames`` frames are buffered (``[streams] buffer_seconds``).
  Audio arriving past that bound is dropped (the newest: what is playing stays continuous), and
  ``on_overflow`` is told once per burst; marks are always kept, so they still come back in
  order.
- A trailing part-frame is played (padded with silence) when a mark follows it, or when it has
  waited one tick with nothing after it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Final

from rcmlrouter.media import g711

FRAME_BYTES: Final = 160  # 20 ms of 8 kHz µ-law
ULAW_SILENCE: Final = 0xFF


class AgentAudio:
    """Buffered agent audio (µ-law frames) and marks, in arrival order."""

    __slots__ = (
        "_frames",
        "_held",
        "_items",
        "_partial",
        "dropped_frames",
        "echo",
        "max_frames",
        "on_overflow",
        "overflowing",
    )

    def __init__(self, max_frames: int, echo: Callable[[str], None]) -> None:
        self.max_frames = max_frames
        self.echo = echo
        self.on_overflow: Callable[[], None] | None = None
        self.dropped_frames = 0
        self.overflowing = False
        self._items: deque[bytes | str] = deque()  # a frame, or a mark's name
        self._frames = 0
        self._partial = b""
        self._held = False

    @property
    def buffered_frames(self) -> int:
        return self._frames

    def add_media(self, payload: bytes) -> None:
        data = self._partial + payload if self._partial else payload
        whole = len(data) - len(data) % FRAME_BYTES
        self._partial = data[whole:]
        self._held = False
        room = self.max_frames - self._frames
        frames = whole // FRAME_BYTES
        if frames > room:
            self.dropped_frames += frames - room
            whole = max(room, 0) * FRAME_BYTES
            self._partial = b""
            if not self.overflowing and self.on_overflow is not None:
                self.on_overflow()
            self.overflowing = True
        else:
            self.overflowing = False
        items = self._items
        for offset in range(0, whole, FRAME_BYTES):
            items.append(data[offset : offset + FRAME_BYTES])
        self._frames += whole // FRAME_BYTES

    def add_mark(self, name: str) -> None:
        self._flush_partial()
        if not self._items:
            self.echo(name)
        else:
            self._items.append(name)

    def clear(self) -> None:
        """Drop every buffered frame now; echo the marks dropped with them, in order."""
        marks = [item for item in self._items if isinstance(item, str)]
        self._items.clear()
        self._frames = 0
        self._partial = b""
        self.overflowing = False
        for name in marks:
            self.echo(name)

    def next_frame(self) -> bytes | None:
        """The frame to send at this tick (None: nothing buffered); echoes the marks it passes."""
        items = self._items
        frame: bytes | None = None
        if items:
            item = items.popleft()
            assert isinstance(item, bytes)  # marks never stay at the head
            frame = item
            self._frames -= 1
        elif self._partial:
            if not self._held:
                self._held = True  # more may follow within the next 20 ms
                return None
            self._flush_partial()
            return self.next_frame()
        while items and isinstance(items[0], str):
            self.echo(items.popleft())  # type: ignore[arg-type]
        return frame

    def _flush_partial(self) -> None:
        if self._partial:
            frame = self._partial.ljust(FRAME_BYTES, bytes([ULAW_SILENCE]))
            self._partial = b""
            self._held = False
            self._items.append(frame)
            self._frames += 1


class AgentPlayout:
    """The playout source of a bidirectional stream (a ``media.player.Source``): the agent's
    frames, or silence, one per tick, until :meth:`finish`."""

    __slots__ = ("audio", "finished")

    def __init__(self, audio: AgentAudio) -> None:
        self.audio = audio
        self.finished = False

    def finish(self) -> None:
        self.finished = True

    def frames(self, codec: str) -> Iterator[bytes]:
        silence = g711.silence(codec, FRAME_BYTES)
        audio = self.audio
        while not self.finished:
            frame = audio.next_frame()
            if frame is None:
                yield silence
            else:
                yield g711.transcode(frame, "PCMU", codec)
