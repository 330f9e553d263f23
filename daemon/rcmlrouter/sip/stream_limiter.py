"""The limits on accepted TCP/TLS connections (:class:`~rcmlrouter.sip.stream.StreamLimits`),
enforced: admission per source address and in total (over either: the connection is closed at
once), and a sweep that closes a connection idle for ``idle_timeout`` seconds unless a call
still uses it, and one holding a partial message for ``header_timeout`` seconds (slowloris).

The transports (:mod:`rcmlrouter.sip.transport`) ask :meth:`StreamLimiter.admit` for every
accepted connection and report its end with :meth:`StreamLimiter.release`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rcmlrouter.sip.stream import Source, StreamLimits, StreamProtocol, StreamStats


class StreamLimiter:
    """Counts accepted connections per source host and in total; sweeps the slow and idle."""

    def __init__(self) -> None:
        self.limits = StreamLimits()  # set before start()
        self.stats = StreamStats()
        self._per_host: dict[str, int] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._connections: dict[Source, StreamProtocol] = {}
        self._in_use: Callable[[Source], bool] = lambda source: False

    def admit(self, connection: StreamProtocol) -> bool:
        """An accepted connection: within max_connections and max_per_source?"""
        host = connection.peer[1]
        count = self._per_host.get(host, 0)
        limits, stats = self.limits, self.stats
        if (limits.max_per_source and count >= limits.max_per_source) or (
            limits.max_connections and stats.connections >= limits.max_connections
        ):
            stats.refused += 1
            return False
        self._per_host[host] = count + 1
        stats.connections += 1
        return True

    def release(self, connection: StreamProtocol) -> None:
        host = connection.peer[1]
        count = self._per_host.get(host, 1) - 1
        if count > 0:
            self._per_host[host] = count
        else:
            self._per_host.pop(host, None)
        self.stats.connections -= 1

    def start(
        self, connections: dict[Source, StreamProtocol], in_use: Callable[[Source], bool]
    ) -> None:
        """Sweep ``connections`` from now on; ``in_use(peer)``: a call still needs it."""
        self._connections = connections
        self._in_use = in_use
        self._schedule_sweep()

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()

    def _sweep(self) -> None:
        """Close idle connections (unless a call uses them) and slowloris ones."""
        now, limits, stats = asyncio.get_running_loop().time(), self.limits, self.stats
        for connection in list(self._connections.values()):
            if (
                limits.header_timeout
                and connection.buffer
                and now - connection.partial_since > limits.header_timeout
            ):
                stats.slow_closed += 1
                connection.close()
            elif (
                limits.idle_timeout
                and now - connection.last_active > limits.idle_timeout
                and not (connection.inbound and self._in_use(connection.peer))
            ):
                stats.idle_closed += 1
                connection.close()
        self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        timeouts = [t for t in (self.limits.idle_timeout, self.limits.header_timeout) if t > 0]
        if timeouts:
            interval = min(1.0, max(0.05, min(timeouts) / 4))
            self._sweeper = asyncio.get_running_loop().call_later(interval, self._sweep)


__all__ = ["StreamLimiter"]
