"""One pooled HTTP/1.1 connection: an asyncio protocol carrying one :class:`Exchange` at a time,
with a between-reads timeout and a total deadline.

A response body is complete at its ``Content-Length``, at the chunked terminator, or (neither
given) when the server closes the connection; a kept body over ``max_body`` stops the exchange
(and the connection is not reused). A connection closed before the response is complete is
:class:`Disconnected` (:class:`ConnectionReset` after a socket error);
:attr:`Connection.received_nothing` then tells whether any byte of the response came back: only
then may the request be sent again (see :mod:`rcmlrouter.httpclient.client`).
"""

from __future__ import annotations

import asyncio

from rcmlrouter.httpclient.exchange import Exchange
from rcmlrouter.httpclient.failures import (
    ConnectionReset,
    Disconnected,
    HttpFailure,
    ReadTimedOut,
)

__all__ = ["Connection"]


class Connection(asyncio.Protocol):
    """One connection; one exchange at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._exchange: Exchange | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._received = False
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        exchange = self._exchange
        if exchange is None:
            self.close()  # bytes nobody asked for: this connection cannot be trusted
            return
        self._received = True
        self._last_read = self._loop.time()
        try:
            exchange.feed(data)
        except HttpFailure as exc:
            self.close()
            self._finish(exc)
            return
        if exchange.complete or exchange.oversize:
            self._finish(None)  # an oversize body: stop reading, never reuse

    def eof_received(self) -> bool | None:
        exchange = self._exchange
        if exchange is not None and exchange.headers_done and not exchange.delimited:
            exchange.complete = True  # a body delimited by the connection's end
        self._lost(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(exc)

    def _lost(self, exc: Exception | None) -> None:
        self.closed = True
        exchange = self._exchange
        if exchange is None:
            return
        if exchange.complete:
            self._finish(None)
        elif isinstance(exc, OSError):
            self._finish(ConnectionReset(f"connection error ({exc!r})"))
        else:
            stale = " (stale)" if not self._received else ""
            self._finish(Disconnected("the server closed the connection" + stale))

    def _finish(self, error: Exception | None) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    async def exchange(
        self, head: bytes, body: bytes | None, exchange: Exchange, read: float, deadline: float
    ) -> None:
        """Send a request and parse its response into ``exchange``; raise an
        :class:`HttpFailure`."""
        assert self.transport is not None
        loop = self._loop
        self._exchange = exchange
        self._received = False
        self._last_read = loop.time()
        self._waiter = waiter = loop.create_future()
        if self.closed:  # the server closed it between the pool and now: nothing was sent
            self._lost(None)
        else:
            self.transport.write(head + body if body else head)
        self._timer = loop.call_at(
            min(self._last_read + read, deadline), self._check_timeout, read, deadline
        )
        try:
            await waiter
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            exchange.release()
            self._exchange = None
            self._waiter = None

    @property
    def received_nothing(self) -> bool:
        """No byte of the last exchange's response arrived."""
        return not self._received

    def _check_timeout(self, read: float, deadline: float) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        now = self._loop.time()
        due = min(self._last_read + read, deadline)
        if now >= due:
            self.close()
            waiter.set_exception(ReadTimedOut("timed out waiting for the response"))
            return
        self._timer = self._loop.call_at(due, self._check_timeout, read, deadline)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
