"""Repeated authentication failures from one address get 429 with Retry-After (issue 11).

Each remote address has a fixed window: its first failure opens it, ``limit`` failures inside
it close the API to that address (every request, right or wrong credentials: 429, code 20429)
until the window ends. A success resets nothing (an attacker holding one valid account cannot
wipe its own counter). Memory is bounded: at most ``max_sources`` addresses are tracked, the
least recently failed forgotten first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from aiohttp import web

from rcmlrouter.errors import ApiError

TOO_MANY_CODE = 20429


class TooManyFailuresError(ApiError):
    """429: the address failed authentication too often; ``retry_after`` seconds to wait."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429,
            TOO_MANY_CODE,
            f"Too many failed authentications from this address; retry in {retry_after} s",
        )
        self.retry_after = retry_after


@dataclass(slots=True)
class AuthFailures:
    limit: int = 10
    window: float = 60.0
    max_sources: int = 100_000
    _sources: OrderedDict[str, tuple[float, int]] = field(default_factory=OrderedDict)

    def check(self, source: str) -> None:
        """Raise :class:`TooManyFailuresError` while ``source`` is over the limit."""
        entry = self._sources.get(source)
        if entry is None:
            return
        opened, failures = entry
        left = opened + self.window - time.monotonic()
        if left <= 0:
            del self._sources[source]
        elif failures >= self.limit:
            raise TooManyFailuresError(max(1, math.ceil(left)))

    def failed(self, source: str) -> None:
        now = time.monotonic()
        entry = self._sources.get(source)
        if entry is None or entry[0] + self.window <= now:
            entry = (now, 0)
        self._sources[source] = (entry[0], entry[1] + 1)
        self._sources.move_to_end(source)
        while len(self._sources) > self.max_sources:
            self._sources.popitem(last=False)

    def __len__(self) -> int:
        return len(self._sources)


AUTH_FAILURES_KEY = web.AppKey("auth_failures", AuthFailures)


def source_of(request: web.Request) -> str:
    return request.remote or "unknown"
