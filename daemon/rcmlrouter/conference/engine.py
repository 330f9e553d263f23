"""The mixer of the process: one 20 ms clock stream for every conference that is mixing.

Each tick it takes one frame from every mixed participant (``Participant.take_frame``), decodes
them per codec in one table lookup, mixes every room at once (:func:`~.mixer.mix`), encodes per
codec and sends each participant its packet through its own RTP session
(``MediaSession.tick_with``), in the same tick, so the mix is never a tick late. A room is here
only while it mixes (started, two or more participants who are not held) or records: a
participant alone, waiting or held is not mixed, and its session is back on its own clock with
its idle rules (a lone caller in silence costs the clock nothing, as any quiet call); a recorded
room that has nobody to mix is handed silence each tick, so its recording keeps time.

The layout (which rows belong to which room) is rebuilt only when membership changes; the
per-tick work is a few array operations plus, per participant, one dequeue and one send.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt
import structlog

from rcmlrouter import metrics
from rcmlrouter.conference.mixer import FRAME, Frames, Index, mix
from rcmlrouter.conference.participant import Participant
from rcmlrouter.media import g711
from rcmlrouter.media.clock import ClockStream, MediaClock

log = structlog.get_logger(__name__)

TICK_SAMPLES: Final = 512  # tick durations kept for the figures (a ring)
_SILENCE: Final = np.zeros(FRAME, dtype=np.int32)


class MixedRoom(Protocol):
    """What the engine needs of a room."""

    def mixed(self) -> Sequence[Participant]:
        """The participants to mix now (in a stable order)."""
        ...

    def announcement(self) -> npt.NDArray[np.int32] | None:
        """This tick's frame of what the room plays to everyone (a beep), or None."""
        ...

    def recorded(self, frame: Frames) -> None:
        """The room's mix of this tick (for its recording), as int32 samples."""
        ...


class MixEngine:
    """Mixes every registered room on one clock stream."""

    def __init__(self, clock: MediaClock) -> None:
        self.clock = clock
        self._rooms: dict[int, MixedRoom] = {}
        self._stream: ClockStream | None = None
        self._dirty = True
        self._rows: list[Participant] = []
        self._room_list: list[MixedRoom] = []
        self._starts: Index = np.zeros(0, dtype=np.intp)
        self._room_of: Index = np.zeros(0, dtype=np.intp)
        self._coached: list[tuple[int, int]] = []
        self._silent: list[MixedRoom] = []  # here for their recording only: nobody to mix
        self.ticks = 0
        self.tick_seconds: list[float] = []

    def __len__(self) -> int:
        return len(self._rooms)

    def add(self, room: MixedRoom) -> None:
        """Mix ``room`` from the next tick on (again: its membership changed)."""
        self._rooms[id(room)] = room
        self._dirty = True
        if self._stream is None:
            self._stream = self.clock.register(self._tick)

    def remove(self, room: MixedRoom) -> None:
        self._rooms.pop(id(room), None)
        self._dirty = True
        if not self._rooms and self._stream is not None:
            self.clock.unregister(self._stream)
            self._stream = None
            self._rows, self._room_list, self._silent = [], [], []
            metrics.CONFERENCE_MIXED.set(0)

    def changed(self) -> None:
        """A room's membership or a participant's codec changed: rebuild before the next mix."""
        self._dirty = True

    # -- layout ---------------------------------------------------------------------------------

    def _layout(self) -> None:
        rows: list[Participant] = []
        starts: list[int] = []
        room_of: list[int] = []
        rooms: list[MixedRoom] = []
        by_size = sorted(((list(r.mixed()), r) for r in self._rooms.values()), key=_size)
        self._silent = [room for members, room in by_size if not members]
        for members, room in by_size:  # rooms of one size side by side: summed as one block
            if not members:
                continue
            starts.append(len(rows))
            room_of.extend([len(rooms)] * len(members))
            rows.extend(members)
            rooms.append(room)
        by_sid = {p.call_sid: i for i, p in enumerate(rows)}
        self._coached = [
            (i, by_sid[p.coaching])
            for i, p in enumerate(rows)
            if p.coaching is not None and p.coaching in by_sid
        ]
        self._rows, self._room_list = rows, rooms
        self._starts = np.array(starts, dtype=np.intp)
        self._room_of = np.array(room_of, dtype=np.intp)
        self._dirty = False
        metrics.CONFERENCE_MIXED.set(len(rows))

    # -- the tick -------------------------------------------------------------------------------

    def _tick(self) -> None:
        started = time.thread_time()  # CPU time: what the tick costs, not what the OS lent
        if self._dirty:
            self._layout()
        rows = self._rows
        if rows:
            self._mix_and_send(rows)
        for room in self._silent:
            room.recorded(_SILENCE)
        self.ticks += 1
        samples = self.tick_seconds
        if len(samples) >= TICK_SAMPLES:
            del samples[: TICK_SAMPLES // 2]
        spent = time.thread_time() - started
        samples.append(spent)
        if rows:
            metrics.CONFERENCE_TICK_SECONDS.observe(spent)

    def _mix_and_send(self, rows: list[Participant]) -> None:
        spoken = self._spoken(rows)
        whisper = None
        if self._coached:
            whisper = np.zeros_like(spoken)
            for coach, coached in self._coached:
                whisper[coached] += spoken[coach]
            for coach, _ in self._coached:
                spoken[coach] = 0
        announcement = self._announcements()
        heard, totals = mix(
            spoken, self._starts, self._room_of, whisper=whisper, announcement=announcement
        )
        for index, room in enumerate(self._room_list):
            room.recorded(totals[index])
        self._send(rows, heard)

    def _spoken(self, rows: list[Participant]) -> Frames:
        spoken = np.zeros((len(rows), FRAME), dtype=np.int32)
        by_codec: dict[str, tuple[list[int], list[bytes]]] = {}
        for index, participant in enumerate(rows):
            if not participant.heard:
                continue
            taken = participant.take_frame()
            if taken is None:
                continue
            codec, frame = taken
            group = by_codec.get(codec)
            if group is None:
                group = by_codec[codec] = ([], [])
            group[0].append(index)
            group[1].append(frame)
        for codec, (indexes, frames) in by_codec.items():
            decoded = g711.decode(b"".join(frames), codec).reshape(len(indexes), FRAME)
            spoken[indexes] = decoded
        return spoken

    def _announcements(self) -> Frames | None:
        frames = [room.announcement() for room in self._room_list]
        if all(frame is None for frame in frames):
            return None
        out = np.zeros((len(frames), FRAME), dtype=np.int32)
        for index, frame in enumerate(frames):
            if frame is not None:
                out[index] = frame
        return out

    def _send(self, rows: list[Participant], heard: npt.NDArray[np.int16]) -> None:
        by_codec: dict[str, list[int]] = {}
        for index, participant in enumerate(rows):
            codec = participant.session.sender.codec
            group = by_codec.get(codec)
            if group is None:
                by_codec[codec] = [index]
            else:
                group.append(index)
        for codec, indexes in by_codec.items():
            encoded = g711.encode(heard[indexes], codec)
            for k, index in enumerate(indexes):
                frame = encoded[k * FRAME : (k + 1) * FRAME]
                try:
                    rows[index].session.sender.tick(frame)
                except Exception:  # one broken session must not stop the others
                    log.exception("conference.send_failed", call_sid=rows[index].call_sid)


def _size(entry: tuple[list[Participant], MixedRoom]) -> int:
    return len(entry[0])
