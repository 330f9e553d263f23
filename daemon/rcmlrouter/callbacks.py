"""Status callbacks: a durable outbox in the store and the workers that deliver it.

``CallbackOutbox.enqueue`` never blocks the call: the event is group-committed to the store's
outbox by a :class:`~rcmlrouter.journal.BatchWriter`, which then wakes the sender. The sender asks
the store for due events (at most the first undelivered event of each call, so every call's events
go out in order), posts them concurrently across calls, marks the 2xx ones delivered in one
transaction and reschedules the others with exponential backoff. Undelivered events survive a
restart because they live in the store until marked delivered.

Delivery is at-least-once at the transport level: an event whose 2xx arrived but whose
"delivered" mark was lost to a ``kill -9`` in the same instant is sent again after restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import structlog

from rcmlrouter import metrics
from rcmlrouter.config import CallbacksConfig
from rcmlrouter.errors import FetchError, RcmlRouterError
from rcmlrouter.journal import BatchWriter
from rcmlrouter.rcml.fetch import RcmlFetcher
from rcmlrouter.store.base import OutboxEvent, Store

log = structlog.get_logger(__name__)


class CallbackOutbox:
    """Durable, ordered, retried delivery of status callbacks."""

    def __init__(
        self,
        store: Store,
        fetcher: RcmlFetcher,
        auth_token: Callable[[str], Awaitable[str]],
        config: CallbacksConfig,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.auth_token = auth_token
        self.config = config
        self._wake = asyncio.Event()
        self._writer: BatchWriter[OutboxEvent] = BatchWriter(
            "callbacks", store.enqueue_callbacks, on_written=lambda _b: self._wake.set()
        )
        self._marks: BatchWriter[int] = BatchWriter(
            "callback-marks", store.mark_callbacks_delivered, on_written=self._delivered_written
        )
        self._in_flight: set[int] = set()
        self._tasks: set[asyncio.Task[bool]] = set()
        self._task: asyncio.Task[None] | None = None
        self._limit = asyncio.Semaphore(max(1, config.workers) * 16)

    def enqueue(
        self,
        call_sid: str,
        account_sid: str,
        sequence: int,
        url: str,
        method: str,
        params: Mapping[str, str],
    ) -> None:
        now = time.time()
        self._writer.add(
            OutboxEvent(
                id=None,
                call_sid=call_sid,
                account_sid=account_sid,
                sequence=sequence,
                url=url,
                method=method,
                params=dict(params),
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )

    def start(self) -> None:
        self._writer.start()
        self._marks.start()
        self._task = asyncio.create_task(self._send_loop(), name="callback-sender")

    async def stop(self, grace: float = 5.0) -> None:
        """Persist everything queued, give in-flight deliveries ``grace`` seconds, stop."""
        await self._writer.stop(grace)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace)
        await self._marks.stop(grace)
        for task in [self._task, *self._tasks]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = None

    async def flush(self, grace: float = 10.0) -> bool:
        return await self._writer.flush(grace)

    async def _send_loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                due = await self.store.due_callbacks(time.time(), 2000)
            except RcmlRouterError as exc:
                log.warning("callbacks.poll_failed", error=str(exc))
                due = []
            for event in due:
                if event.id is not None and event.id not in self._in_flight:
                    self._in_flight.add(event.id)
                    task = asyncio.create_task(self._deliver(event))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.poll_interval):
                    await self._wake.wait()

    def _delivered_written(self, ids: Sequence[int]) -> None:
        self._in_flight.difference_update(ids)
        metrics.CALLBACKS_SENT.inc(len(ids))
        self._wake.set()

    async def _deliver(self, event: OutboxEvent) -> bool:
        async with self._limit:
            error = await self._post(event)
        assert event.id is not None
        if error is None:
            self._marks.add(event.id)
            return True
        metrics.CALLBACKS_FAILED.inc()
        attempts = event.attempts + 1
        delay = min(self.config.retry_max, self.config.retry_initial * 2 ** min(attempts - 1, 20))
        delay *= random.uniform(0.8, 1.2)
        log.info(
            "callback.retry",
            call_sid=event.call_sid,
            sequence=event.sequence,
            attempts=attempts,
            retry_in=round(delay, 2),
            error=error,
        )
        try:
            await self.store.reschedule_callback(event.id, time.time() + delay, attempts, error)
        except RcmlRouterError as exc:
            log.warning("callbacks.reschedule_failed", error=str(exc))
        self._in_flight.discard(event.id)
        return False

    async def _post(self, event: OutboxEvent) -> str | None:
        """Send one event; None when the receiver answered 2xx, else the error text."""
        try:
            token = await self.auth_token(event.account_sid)
            status = await self.fetcher.post_callback(event.url, event.method, event.params, token)
        except FetchError as exc:
            return f"{exc.error_code}: {exc}"
        except RcmlRouterError as exc:
            return str(exc)
        if 200 <= status < 300:
            return None
        return f"HTTP {status}"
