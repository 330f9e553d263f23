"""Who may send us requests: trusted networks and a per-source flood guard, sans-I/O.

:class:`SourceGuard` decides per request, from the source address alone and before any
parsing:

- ``trusted`` (CIDRs): a request from elsewhere is refused ``403`` (``untrusted = "reject"``)
  or dropped without an answer (``"drop"``). Empty: every source is trusted (the demo).
- ``flood_limit`` requests per ``flood_window`` seconds per source address (pike-like, fixed
  windows): the first request over the limit gets ``503`` + Retry-After, the rest of the window
  is dropped silently. It counts the sources outside ``trusted`` (every source when ``trusted``
  is empty); trusted trunks are never limited. Untrusted sources over the limit stop getting
  their 403s. At most ``max_sources`` addresses are remembered (the oldest window goes first).

Responses (``SIP/2.0 …``) are never screened: they only match our own client transactions.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from rcmlrouter.sip.message import Header

PASS, DROP, FORBID, BUSY = 0, 1, 2, 3
MAX_SOURCES = 65536
_TRUST_CACHE = 4096


@dataclass(slots=True)
class GuardStats:
    untrusted_rejected: int = 0  # 403 sent
    untrusted_dropped: int = 0  # untrusted = "drop", or untrusted and over the flood limit
    flood_rejected: int = 0  # 503 sent (the first request over the limit in a window)
    flood_dropped: int = 0  # the rest of that window


class SourceGuard:
    """See the module docstring. ``check(host)`` → PASS, DROP, FORBID (403) or BUSY (503)."""

    def __init__(
        self,
        trusted: Sequence[str] = (),
        *,
        untrusted: str = "reject",
        flood_limit: int = 0,
        flood_window: float = 1.0,
        max_sources: int = MAX_SOURCES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.networks = [ipaddress.ip_network(cidr, strict=False) for cidr in trusted]
        self.drop_untrusted = untrusted == "drop"
        self.flood_limit = flood_limit
        self.flood_window = flood_window
        self.max_sources = max_sources
        self.stats = GuardStats()
        self._clock = clock
        self._trust: dict[str, bool] = {}
        self._windows: dict[str, list[float]] = {}  # host -> [window start, requests]

    @property
    def active(self) -> bool:
        return bool(self.networks) or self.flood_limit > 0

    @property
    def tracked_sources(self) -> int:
        return len(self._windows)

    def trusted(self, host: str) -> bool:
        if not self.networks:
            return True
        known = self._trust.get(host)
        if known is None:
            try:
                address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
            except ValueError:
                known = False
            else:
                known = any(address in network for network in self.networks)
            if len(self._trust) >= _TRUST_CACHE:
                self._trust.clear()
            self._trust[host] = known
        return known

    def check(self, host: str) -> int:
        stats = self.stats
        if self.trusted(host):
            if self.networks or not self.flood_limit:
                return PASS  # trusted sources are not limited
            over = self._count(host)
            if over == 0:
                return PASS
            if over == 1:
                stats.flood_rejected += 1
                return BUSY
            stats.flood_dropped += 1
            return DROP
        if self.flood_limit and self._count(host) > 0:
            stats.untrusted_dropped += 1
            return DROP
        if self.drop_untrusted:
            stats.untrusted_dropped += 1
            return DROP
        stats.untrusted_rejected += 1
        return FORBID

    def _count(self, host: str) -> int:
        """Count a request from ``host``: how far over the limit it is (0: within)."""
        now = self._clock()
        window = self._windows.get(host)
        if window is None or now - window[0] >= self.flood_window:
            if window is not None:
                del self._windows[host]  # re-inserted last: the dict stays in window order
            elif len(self._windows) >= self.max_sources:
                del self._windows[next(iter(self._windows))]
            self._windows[host] = [now, 1.0]
            return 0
        window[1] += 1
        return max(0, int(window[1]) - self.flood_limit)


class RawRefuser(Protocol):
    def refuse_raw(
        self,
        data: bytes,
        source: tuple[str, str, int],
        status: int,
        text: str,
        headers: list[Header],
    ) -> None: ...


class GuardScreen:
    """The transports' pre-parse hook: True when the request was refused or dropped."""

    def __init__(self, guard: SourceGuard, refuser: RawRefuser) -> None:
        self.guard = guard
        self._refuse = refuser.refuse_raw
        self._retry_after = [("Retry-After", str(max(1, round(guard.flood_window))))]

    def __call__(self, data: bytes, source: tuple[str, str, int]) -> bool:
        if data.startswith(b"SIP/2.0 "):
            return False
        verdict = self.guard.check(source[1])
        if verdict == PASS:
            return False
        if verdict == FORBID:
            self._refuse(data, source, 403, "source address not trusted", [])
        elif verdict == BUSY:
            self._refuse(data, source, 503, "request rate limit", self._retry_after)
        return True


__all__ = ["BUSY", "DROP", "FORBID", "PASS", "GuardScreen", "GuardStats", "SourceGuard"]
