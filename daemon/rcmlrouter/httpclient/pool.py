"""Idle keep-alive connections, by destination: bounded in number and in idle time.

A connection goes back to the pool after a complete response that allows keep-alive, and is
taken again newest first (the one least likely to have been closed by the server). A connection
idle for ``keepalive`` seconds is closed, by a sweep that runs while the pool holds any; when
more than ``max_idle`` connections are idle, the oldest is closed. A destination that has no idle
connection left is forgotten, so the pool never holds more than ``max_idle`` entries whatever
the number of hosts the tenants' URLs name.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Generic, Protocol, TypeVar

__all__ = ["IdlePool", "Pooled"]


class Pooled(Protocol):
    closed: bool
    idle_since: float

    def close(self) -> None: ...


C = TypeVar("C", bound=Pooled)
Key = tuple[str, str, int]  # scheme, host, port


class IdlePool(Generic[C]):
    def __init__(self, keepalive: float, max_idle: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._keepalive = keepalive
        self._max_idle = max_idle
        self._by_key: dict[Key, collections.deque[C]] = {}
        self._order: dict[C, Key] = {}  # every idle connection, oldest first
        self._sweeper: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._order)

    @property
    def destinations(self) -> int:
        return len(self._by_key)

    def take(self, key: Key) -> C | None:
        """The newest usable idle connection to ``key`` (stale ones are closed), or None."""
        idle = self._by_key.get(key)
        stale_before = self._loop.time() - self._keepalive
        while idle:
            connection = idle.pop()
            del self._order[connection]
            if not idle:
                del self._by_key[key]
            if not connection.closed and connection.idle_since >= stale_before:
                return connection
            connection.close()
        return None

    def put(self, key: Key, connection: C) -> None:
        connection.idle_since = self._loop.time()
        self._by_key.setdefault(key, collections.deque()).append(connection)
        self._order[connection] = key
        while len(self._order) > self._max_idle:
            self._drop_oldest()
        if self._sweeper is None:
            self._sweeper = self._loop.call_later(self._keepalive, self._sweep)

    def _drop_oldest(self) -> None:
        connection, key = next(iter(self._order.items()))
        del self._order[connection]
        idle = self._by_key[key]
        idle.popleft()  # per destination, the same order: the oldest is on the left
        if not idle:
            del self._by_key[key]
        connection.close()

    def _sweep(self) -> None:
        self._sweeper = None
        stale_before = self._loop.time() - self._keepalive
        while self._order:
            oldest = next(iter(self._order))
            if oldest.idle_since >= stale_before and not oldest.closed:
                break
            self._drop_oldest()
        if self._order:
            due = next(iter(self._order)).idle_since + self._keepalive
            self._sweeper = self._loop.call_at(due, self._sweep)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        while self._order:
            self._drop_oldest()
