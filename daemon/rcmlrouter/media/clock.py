"""One clock for every active RTP sender: a single loop callback per 20 ms tick.

Streams join on the clock's grid (their first packet is due at the next tick). Packet ``n`` of a
stream is due at ``start + n * 20 ms``, computed from the stream's start, so timing never drifts.
When the loop is late, each stream sends the packets that came due since the last tick (at most
:data:`MAX_CATCH_UP` of them); a stream further behind than that skips ahead by moving its start,
so a long stall does not turn into a burst.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Final

import structlog

PTIME: Final = 0.020
MAX_CATCH_UP: Final = 5  # packets per stream per tick (100 ms)
_EPSILON: Final = 1e-6

log = structlog.get_logger(__name__)


def packets_due(start: float, now: float, ptime: float = PTIME) -> int:
    """How many packets of a stream that started at ``start`` are due by ``now`` (0 before)."""
    if now + _EPSILON < start:
        return 0
    return math.floor((now - start) / ptime + _EPSILON) + 1


def next_grid_time(origin: float, now: float, ptime: float = PTIME) -> float:
    """The first grid point ``origin + k * ptime`` strictly after ``now``."""
    k = math.floor((now - origin) / ptime + _EPSILON) + 1
    return origin + max(k, 0) * ptime


class ClockStream:
    """A registration: ``tick()`` is called once per packet due; ``sent`` counts them."""

    __slots__ = ("sent", "skipped", "start", "tick")

    def __init__(self, tick: Callable[[], None], start: float) -> None:
        self.tick = tick
        self.start = start
        self.sent = 0
        self.skipped = 0

    def run_due(self, now: float) -> None:
        behind = packets_due(self.start, now) - self.sent
        if behind > MAX_CATCH_UP:
            skip = behind - MAX_CATCH_UP
            self.start += skip * PTIME
            self.skipped += skip
            behind = MAX_CATCH_UP
        for _ in range(behind):
            self.sent += 1
            self.tick()


class MediaClock:
    """Drives every registered stream from one ``loop.call_at`` chain on a 20 ms grid."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._streams: dict[int, ClockStream] = {}
        self._origin = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._next_tick = 0.0
        self.ticks = 0
        self.late_ticks = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def __len__(self) -> int:
        return len(self._streams)

    def register(self, tick: Callable[[], None]) -> ClockStream:
        """Start calling ``tick`` once per 20 ms, from the next grid point on."""
        now = self.loop.time()
        if self._handle is None:
            self._origin = now
            self._schedule(now)
        stream = ClockStream(tick, self._next_tick)
        self._streams[id(stream)] = stream
        return stream

    def unregister(self, stream: ClockStream) -> None:
        self._streams.pop(id(stream), None)
        if not self._streams and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self, now: float) -> None:
        self._next_tick = next_grid_time(self._origin, now)
        self._handle = self.loop.call_at(self._next_tick, self._on_tick)

    def _on_tick(self) -> None:
        now = self.loop.time()
        self.ticks += 1
        if now - self._next_tick > PTIME:
            self.late_ticks += 1
        for stream in list(self._streams.values()):
            try:
                stream.run_due(now)
            except Exception:  # one broken stream must not stop the others
                log.exception("media.clock.stream_failed")
                self._streams.pop(id(stream), None)
        if self._streams:
            self._schedule(now)
        else:
            self._handle = None

    def close(self) -> None:
        self._streams.clear()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
