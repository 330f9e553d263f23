"""RTP port allocation from the configured range (even ports; RTCP takes the odd one above).

Other processes share the host and often the range: a second rcmlrouter with the same
``rtp_ports``, SIPp's media, a PBX. The pool is built for that, as media servers' are:

- each process starts at a random point of the range, so two daemons do not move in lockstep;
- ports are handed out least recently used first (a FIFO of free ports): a port is reused as late
  as possible, so stray packets of an ended call rarely reach the next one;
- a port whose bind fails because another process holds it (or its odd neighbour) is *busy*:
  skipped for :data:`BUSY_FOR` seconds, then offered again;
- :meth:`RtpPortPool.claim` keeps binding across the whole range, so a call fails only when the
  range is truly used up: every port is ours or was found busy in the last
  :data:`RECHECK_AFTER` seconds (a busy port that old is tried again before giving up).

The pool itself does no I/O: the caller passes the bind function (``media/rtp.py`` owns the
sockets). A bind attempt is a few microseconds (two ``bind`` calls on non-blocking sockets), so
a scan over busy ports is cheap; :meth:`claim` still stops after ``attempts`` tries so that a
long scan yields to the event loop between batches.
"""

from __future__ import annotations

import errno
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Final, TypeVar

BUSY_FOR: Final = 10.0  # seconds a port another process held is skipped
RECHECK_AFTER: Final = 1.0  # with no free port left, busy ports older than this are retried
CLAIM_BATCH: Final = 256  # bind attempts per claim() call before it yields (~2 ms)
# errors that say "this port" (another process holds it, or it is a privileged port); any other
# bind error (no file descriptors left, the address is not ours) is not the port's fault
PORT_ERRNOS: Final = frozenset({errno.EADDRINUSE, errno.EACCES})

Bound = TypeVar("Bound")


class RtpPortPool:
    """Even ports in ``[low, high)``: ours in use, free (LRU order) or busy elsewhere."""

    def __init__(
        self,
        low: int,
        high: int,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        first = low + (low % 2)
        ports = list(range(first, high - 1, 2))
        if not ports:
            raise ValueError(f"no even port in [{low}, {high})")
        start = (rng or random.Random()).randrange(len(ports))
        self._free: deque[int] = deque(ports[start:] + ports[:start])
        self._in_use: set[int] = set()
        self._busy: deque[tuple[float, int]] = deque()  # (when marked, port), oldest first
        self._clock = clock
        self.size = len(ports)
        self.busy_found = 0  # bind attempts that met another process's port (a counter)

    # -- the allocation ---------------------------------------------------------------------------

    def acquire(self) -> int:
        """A port to bind; raises LookupError when every port is ours or recently busy."""
        now = self._clock()
        while self._busy and now - self._busy[0][0] >= BUSY_FOR:
            self._free.append(self._busy.popleft()[1])
        if self._free:
            port = self._free.popleft()
        elif self._busy and now - self._busy[0][0] >= RECHECK_AFTER:
            port = self._busy.popleft()[1]  # nothing else left: it may have been let go
        else:
            raise LookupError(f"all {self.size} RTP ports are in use")
        self._in_use.add(port)
        return port

    def release(self, port: int) -> None:
        """Our socket on ``port`` is closed: the port goes to the back of the free list."""
        if port in self._in_use:
            self._in_use.discard(port)
            self._free.append(port)

    def mark_busy(self, port: int) -> None:
        """Binding ``port`` failed because another process holds it (or ``port + 1``)."""
        if port in self._in_use:
            self._in_use.discard(port)
            self._busy.append((self._clock(), port))
            self.busy_found += 1

    def claim(
        self, bind: Callable[[int], Bound], attempts: int = CLAIM_BATCH
    ) -> tuple[int, Bound] | None:
        """Acquire a port and ``bind`` it, skipping ports other processes hold. ``None`` after
        ``attempts`` busy ports (call again, after letting the loop run); LookupError when the
        range is used up. A bind error that is not about the port (EMFILE, EADDRNOTAVAIL…)
        gives the port back and propagates."""
        for _ in range(attempts):
            port = self.acquire()
            try:
                return port, bind(port)
            except OSError as exc:
                if exc.errno not in PORT_ERRNOS:
                    self.release(port)
                    raise
                self.mark_busy(port)
        return None

    # -- what it holds ----------------------------------------------------------------------------

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    @property
    def busy(self) -> int:
        """Ports currently skipped because another process held them."""
        return len(self._busy)
