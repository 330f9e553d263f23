"""The last status-callback delivery attempts of this process, kept in memory.

The outbox deletes an event once its receiver answered 2xx and keeps retries in memory, so the
store shows only what is still pending. Each attempt's outcome is appended here (a tuple into a
bounded deque: well under a microsecond, nothing on the store), so the console's call page can
show when each event was delivered and why an attempt failed. It is per node and forgets the
oldest attempts first; a restart forgets everything.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

DEFAULT_SIZE = 20_000


@dataclass(frozen=True, slots=True)
class CallbackAttempt:
    """One POST/GET of an outbox event: ``error`` None means the receiver answered 2xx."""

    call_sid: str
    sequence: int
    url: str
    attempt: int
    at: float
    error: str | None


class CallbackAttempts:
    """A bounded, newest-last log of delivery attempts."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._items: deque[tuple[str, int, str, int, float, str | None]] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, call_sid: str, sequence: int, url: str, attempt: int, error: str | None) -> None:
        self._items.append((call_sid, sequence, url, attempt, time.time(), error))

    def of_call(self, call_sid: str) -> list[CallbackAttempt]:
        """The attempts still remembered for ``call_sid`` (a call or message sid), oldest first."""
        return [CallbackAttempt(*item) for item in list(self._items) if item[0] == call_sid]
