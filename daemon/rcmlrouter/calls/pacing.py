"""Pacing of the calls the API places: at most ``rate`` calls per second per key (an account, a
trunk), each call taking the first slot every one of its keys allows.

GCRA's virtual scheduling, one float per key: a key's next free slot. Reserving for a call takes
the latest of ``now`` and its keys' next slots, then moves each key on by ``1 / rate``. Slots are
handed out in the order calls ask, so calls of one account leave in the order they were
created; a call cancelled while it waits leaves its slot unused (the rate is an upper bound).
Pure: the caller owns the clock and the sleeping (``calls/originate.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

PRUNE_AT = 10_000  # keys kept before the idle ones (their slot passed) are forgotten

Limit = tuple[str, float]  # (key, calls per second); a rate <= 0 does not limit


class Pacer:
    """The next free slot of each key."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next: dict[str, float] = {}

    def reserve(self, limits: Sequence[Limit], now: float) -> float:
        """The time (on ``now``'s clock) the call limited by ``limits`` may be dialled."""
        slot = now
        for key, rate in limits:
            if rate > 0:
                slot = max(slot, self._next.get(key, now))
        for key, rate in limits:
            if rate > 0:
                self._next[key] = slot + 1.0 / rate
        if len(self._next) > PRUNE_AT:
            self._next = {k: t for k, t in self._next.items() if t > now}
        return slot

    def reserve_by(self, limits: Sequence[Limit], now: float, latest: float) -> float | None:
        """As :meth:`reserve`, when the slot comes by ``latest``; else None, and nothing is
        taken (a trunk failover's try, which has only the rest of the call's timeout)."""
        slot = max([now, *(self._next.get(key, now) for key, rate in limits if rate > 0)])
        return self.reserve(limits, now) if slot <= latest else None

    def backlog(self, key: str, now: float) -> float:
        """Seconds of slots ``key`` has handed out beyond ``now``."""
        return max(0.0, self._next.get(key, now) - now)
