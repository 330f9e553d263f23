"""The endpoint's overload signal: a 10 ms heartbeat that notes how late the event loop runs
it and how many bytes wait in the UDP receive buffers.

Every SIP message, webhook response and call step runs on one event loop; when the loop is
saturated, work queues in two places: its ready callbacks (the heartbeat runs late) and the
kernel's socket buffer (4 MiB holds seconds of INVITEs; the loop reads a few dozen datagrams per
iteration and never sees the rest waiting). While either exceeds its limit the endpoint is
overloaded and answers new INVITEs 503 from their raw bytes (:mod:`rcmlrouter.sip.shed`), which
costs a small fraction of a call, so the queues drain, the admitted calls keep their latency and
the daemon keeps completing calls at its maximum rate however much more is offered.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable

HEARTBEAT = 0.01
BACKLOG_LIMIT = 256 * 1024  # bytes queued in the UDP receive buffers (~120 INVITEs)
SUSTAIN = 0.1  # seconds over a limit, beat after beat: a GC pause and its catch-up are not overload
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class LoopLag:
    """``overloaded`` while the heartbeat runs more than ``limit`` seconds late or ``backlog()``
    exceeds ``backlog_limit`` bytes, every beat for ``sustain`` seconds (``limit`` 0: never);
    one beat under both limits ends it."""

    def __init__(
        self,
        limit: float,
        interval: float = HEARTBEAT,
        backlog: Callable[[], int] | None = None,
        backlog_limit: int = BACKLOG_LIMIT,
        sustain: float = SUSTAIN,
    ) -> None:
        self.limit = limit
        self.interval = interval
        self.backlog = backlog
        self.backlog_limit = backlog_limit
        self.lag = 0.0
        # every beat's lateness, bucketed by LAG_BUCKETS (+Inf last): /metrics' loop lag
        self.lag_counts = [0] * (len(LAG_BUCKETS) + 1)
        self.lag_sum = 0.0
        self.queued = 0
        self.sustain = sustain
        self._over_since: float | None = None  # first beat of the current run over a limit
        self.overloaded = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.limit <= 0:
            return
        self._loop = loop
        self._due = loop.time() + self.interval
        self._handle = loop.call_at(self._due, self._beat)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.overloaded = False

    def _beat(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        self.lag = lag = now - self._due
        self.lag_sum += lag
        self.lag_counts[bisect.bisect_left(LAG_BUCKETS, lag)] += 1
        self.queued = self.backlog() if self.backlog is not None else 0
        if self.lag > self.limit or self.queued > self.backlog_limit:
            if self._over_since is None:
                self._over_since = now
            self.overloaded = now - self._over_since >= self.sustain
        else:
            self._over_since = None
            self.overloaded = False
        self._due = now + self.interval
        self._handle = self._loop.call_at(self._due, self._beat)
