"""SIP timer values and the one timer heap that drives every SIP timer.

No asyncio task per transaction or call: every timer is an entry in one heap, and a single loop
callback (``loop.call_at``) is armed for the earliest deadline.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """RFC 3261 T1/T2/T4 in seconds. Tests shorten them."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    trying: float = 0.2  # §17.2.1: 100 Trying only if the TU has not answered within 200 ms

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J and the 2xx retransmission limit."""
        return 64 * self.t1


def _spent() -> None:
    """The callback of a timer that fired or was cancelled."""


class Timer:
    """A scheduled callback; :meth:`cancel` makes it a no-op (lazy deletion).

    A cancelled or fired timer lets go of its callback at once: a cancelled entry may wait in
    the heap for up to 64*T1 (Timer H/J/L), and its callback holds a transaction with its last
    response (and whatever the transaction's owner hangs on it).
    """

    __slots__ = ("callback", "cancelled", "heap", "when")

    def __init__(
        self, when: float, callback: Callable[[], None], heap: TimerHeap | None = None
    ) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False
        self.heap = heap

    def cancel(self) -> None:
        if self.cancelled:
            return  # fired, or cancelled already
        self.cancelled = True
        self.callback = _spent
        if self.heap is not None:
            self.heap.on_cancelled()


class Timers(Protocol):
    def schedule(self, delay: float, callback: Callable[[], None]) -> Timer: ...


COMPACT_MIN = 1024  # cancelled entries before the heap is worth compacting


class TimerHeap:
    """All SIP timers of one endpoint, driven by a single ``loop.call_at`` handle.

    Cancelled timers stay in the heap until they come up (most SIP timers are cancelled long
    before: Timer H waits 32 s for an ACK that comes in milliseconds); when they outnumber the
    live ones the heap is rebuilt without them, so its size follows the live timers.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._armed: asyncio.TimerHandle | None = None
        self._armed_at = float("inf")
        self.cancelled = 0  # cancelled entries still in the heap

    def __len__(self) -> int:
        return len(self._heap)

    def on_cancelled(self) -> None:
        self.cancelled += 1
        if self.cancelled >= COMPACT_MIN and 2 * self.cancelled > len(self._heap):
            self._heap[:] = [entry for entry in self._heap if not entry[2].cancelled]
            heapq.heapify(self._heap)  # in place: _fire may be iterating over this list
            self.cancelled = 0

    def schedule(self, delay: float, callback: Callable[[], None]) -> Timer:
        when = self._loop.time() + max(delay, 0.0)
        timer = Timer(when, callback, self)
        heapq.heappush(self._heap, (when, next(self._seq), timer))
        if when < self._armed_at:
            self._arm(when)
        return timer

    def close(self) -> None:
        if self._armed is not None:
            self._armed.cancel()
        self._armed = None
        self._heap.clear()
        self.cancelled = 0

    def _arm(self, when: float) -> None:
        if self._armed is not None:
            self._armed.cancel()
        self._armed_at = when
        self._armed = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._armed = None
        self._armed_at = float("inf")
        now = self._loop.time()
        heap = self._heap
        while heap and heap[0][0] <= now:
            timer = heapq.heappop(heap)[2]
            if timer.cancelled:
                self.cancelled -= 1
                continue
            timer.cancelled = True
            callback, timer.callback = timer.callback, _spent
            callback()
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
            self.cancelled -= 1
        if heap:
            self._arm(heap[0][0])


class ManualTimers:
    """A timer source driven by hand, for sans-I/O unit tests."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return sum(1 for _, _, t in self._heap if not t.cancelled)

    def schedule(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(self.now + delay, callback)
        heapq.heappush(self._heap, (timer.when, next(self._seq), timer))
        return timer

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while self._heap and self._heap[0][0] <= target:
            when, _, timer = heapq.heappop(self._heap)
            self.now = max(self.now, when)
            if not timer.cancelled:
                timer.cancelled = True
                callback, timer.callback = timer.callback, _spent
                callback()
        self.now = target
