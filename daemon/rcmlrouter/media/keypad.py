"""A call's key presses as they arrive (RFC 4733 events the session decodes, or keys the call
hands it), buffered in order until a verb takes them: ``<Gather>`` collects them, a ``<Play>``
or ``<Say>`` inside it stops at the first, ``<Record>`` ends on a finish key."""

from __future__ import annotations

import asyncio
from collections import deque


class Keypad:
    """The pending key presses of one media session."""

    __slots__ = ("_digits", "_signal")

    def __init__(self) -> None:
        self._digits: deque[str] = deque()
        self._signal: asyncio.Future[None] | None = None

    def press(self, digit: str) -> None:
        """A key arrived: buffer it and wake whoever waits for one."""
        self._digits.append(digit)
        signal, self._signal = self._signal, None
        if signal is not None and not signal.done():
            signal.set_result(None)

    def flush(self) -> None:
        self._digits.clear()

    def first(self) -> str | None:
        """The oldest pending key, left pending (``None`` when there is none)."""
        return self._digits[0] if self._digits else None

    def take(self) -> str | None:
        """The oldest pending key, taken (``None`` when there is none)."""
        return self._digits.popleft() if self._digits else None

    def next_press(self) -> asyncio.Future[None]:
        """Resolves at the next key press (one future shared by all who wait)."""
        if self._signal is None or self._signal.done():
            self._signal = asyncio.get_running_loop().create_future()
        return self._signal

    async def collect(
        self,
        num_digits: int,
        finish_on_key: str,
        digit_timeout: float,
        closed: asyncio.Future[None],
    ) -> str:
        """Keys until ``num_digits`` (0 = no limit), ``finish_on_key`` (not included),
        ``digit_timeout`` seconds without a key, or ``closed``."""
        collected = ""
        while True:
            while (digit := self.take()) is not None:
                if finish_on_key and digit == finish_on_key:
                    return collected
                collected += digit
                if num_digits and len(collected) >= num_digits:
                    return collected
            if closed.done():
                return collected
            await asyncio.wait([self.next_press(), closed], timeout=digit_timeout)
            if not self._digits:
                return collected
