"""``record="record-from-start"``: the room's mix as one WAV file and one Recording resource.

The mixer hands the room's sum every tick it mixes (``Room.recorded``); frames are placed by
the wall clock (a stretch in which the room did not mix, everyone waiting or held, is silence,
up to the recorder's gap limit). When the conference ends the file is closed (not trimmed) and
the row written: ``source`` ``Conference``, ``call_sid`` empty, the conference's
``recording_sid`` pointing at it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from rcmlrouter.conference.events import ConferenceEvents
from rcmlrouter.media.audio import RATE
from rcmlrouter.media.recorder import Recorder
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import Recording

log = structlog.get_logger(__name__)
MAX_SECONDS = 4 * 3600.0


@dataclass(frozen=True, slots=True)
class RecordingSpace:
    """Where recordings go: ``directory/{AC}/{RE}.wav`` and a row through ``save``."""

    directory: Path
    save: Callable[[Recording], Awaitable[None]]


class MixRecording:
    """The room's mix to a WAV file: ``feed`` each tick's sum, ``finish`` at the end."""

    def __init__(self, feed: Callable[[bytes], None], finish: Callable[[], None]) -> None:
        self.feed = feed
        self.finish = finish


def record_room(space: RecordingSpace, events: ConferenceEvents) -> MixRecording:
    record = events.record
    sid = new_sid("RE")
    path = space.directory / record.account_sid / f"{sid}.wav"
    loop = asyncio.get_running_loop()
    recorder = Recorder(path, MAX_SECONDS, 0.0)
    started = loop.time()
    recorder.start(started)
    created = time.time()
    events.update(recording_sid=sid)

    def feed(pcm: bytes) -> None:
        now = loop.time()
        recorder.feed(round((now - started) * RATE / 160) * 160 & 0xFFFFFFFF, pcm, now)

    def finish() -> None:
        recorder.finish("completed")
        duration = recorder.close(trim=False)
        row = Recording(sid, record.account_sid, None, duration, created, source="Conference")
        task = asyncio.ensure_future(space.save(row))
        task.add_done_callback(_log_failure)

    return MixRecording(feed, finish)


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("conference.recording_not_saved", error=repr(task.exception()))
