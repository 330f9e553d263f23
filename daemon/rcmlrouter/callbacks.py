"""Status callbacks: a durable outbox in the store and the workers that deliver it.

``CallbackOutbox.commit`` is the journal of calls and messages: a call or message record and the
outbox events it owes are group-committed to the store **in one transaction** by a
:class:`~rcmlrouter.journal.BatchWriter` (so a crash keeps both or neither), and the returned
future resolves once they are durable. It never blocks the caller: a call awaits it only where
something must be durable before the outside world sees it (before its first webhook; a MESSAGE
before its 202). An event joins its call's in-memory queue only after its commit, and one worker
per call with pending events sends them in order: the next event of a call goes out only after
the previous one got a 2xx. Failures are retried with exponential
backoff (``callbacks.retry_initial`` doubling up to ``retry_max``) until the event is
``callbacks.max_age`` old (from its creation, so across restarts): then it is given up
(removed like a delivered one, a notification with error code 15003,
``rcmlrouter_callbacks_expired_total``) and the call's next event goes on. Delivered events are
deleted from the outbox in batches. At start the undelivered events of earlier runs (a restart,
a ``kill -9``) are loaded from the store and sent the same way.

The store is read only at start: ``cluster/work.py`` claims this process's undelivered events
(an earlier run's; in a cluster, also a dead node's) and :meth:`CallbackOutbox.adopt` queues them
before any new work is taken, so recovered events always precede new ones. The send path needs
no polling query.

Delivery is at-least-once at the transport level: an event whose 2xx arrived but whose
deletion was lost to a ``kill -9`` in the same instant is sent again after restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence

import structlog

from rcmlrouter import metrics
from rcmlrouter.callback_attempts import CallbackAttempts
from rcmlrouter.config import CallbacksConfig
from rcmlrouter.errors import FetchError, RcmlRouterError
from rcmlrouter.journal import BatchWriter
from rcmlrouter.rcml.fetch import RcmlFetcher
from rcmlrouter.store.base import Store
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import CallRecord, MessageRecord, Notification, OutboxEvent

log = structlog.get_logger(__name__)

EXPIRED_ERROR_CODE = 15003  # Twilio: "Call Progress: Warning Response to Callback URL"


@dataclasses.dataclass(slots=True)
class JournalEntry:
    """Records and events that must become durable together."""

    call: CallRecord | None
    message: MessageRecord | None
    events: Sequence[OutboxEvent]
    committed: asyncio.Future[None]
    added: float = 0.0  # time.monotonic() at commit()


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
        self._writer: BatchWriter[JournalEntry] = BatchWriter(
            "journal", self._persist, linger=0.005
        )
        self._marks: BatchWriter[int] = BatchWriter(
            "callback-marks", store.mark_callbacks_delivered, linger=0.05
        )
        self._queues: dict[str, deque[OutboxEvent]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._limit = asyncio.Semaphore(max(1, config.workers) * 16)
        self.pending = 0
        self.attempts = CallbackAttempts()  # the last attempts' outcomes (the console reads)
        metrics.CALLBACKS_OLDEST_AGE.set_function(self.oldest_age)

    def oldest_age(self) -> float:
        """Seconds since the oldest undelivered event was created (0 when none is queued).

        A call's queue is in creation order, so the oldest event is one of the queue heads:
        computed when ``/metrics`` is scraped, in time proportional to the calls with events.
        """
        heads = [queue[0].created_at for queue in self._queues.values() if queue]
        return max(0.0, time.time() - min(heads)) if heads else 0.0

    @staticmethod
    def event(
        key_sid: str,
        account_sid: str,
        sequence: int,
        url: str,
        method: str,
        params: Mapping[str, str],
    ) -> OutboxEvent:
        """An event for :meth:`commit`; ``key_sid`` (a call or message sid) orders delivery."""
        now = time.time()
        return OutboxEvent(
            None, key_sid, account_sid, sequence, url, method, dict(params), 0, now, now
        )

    def commit(
        self,
        *,
        call: CallRecord | None = None,
        message: MessageRecord | None = None,
        events: Sequence[OutboxEvent] = (),
    ) -> asyncio.Future[None]:
        """Write ``call``/``message`` and ``events`` in one transaction (group-committed).

        The events are delivered only after the commit. The future resolves when all of it is
        durable; await it (``asyncio.shield`` it in a cancellable task) before acknowledging
        anything to the outside world.
        """
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writer.add(JournalEntry(call, message, events, committed, time.monotonic()))
        return committed

    def enqueue(
        self,
        call_sid: str,
        account_sid: str,
        sequence: int,
        url: str,
        method: str,
        params: Mapping[str, str],
    ) -> None:
        """Commit one event on its own."""
        self.commit(events=[self.event(call_sid, account_sid, sequence, url, method, params)])

    def start(self) -> None:
        self._writer.start()
        self._marks.start()

    async def stop(self, grace: float = 5.0) -> None:
        """Persist everything queued, give deliveries ``grace`` seconds, stop.

        What is not delivered by then stays in the store for the next start.
        """
        await self._writer.stop(grace)
        if self._workers:
            await asyncio.wait(list(self._workers.values()), timeout=grace)
        await self._marks.stop(grace)
        for task in list(self._workers.values()):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _persist(self, batch: Sequence[JournalEntry]) -> None:
        calls = [entry.call for entry in batch if entry.call is not None]
        messages = [entry.message for entry in batch if entry.message is not None]
        events = [event for entry in batch for event in entry.events]
        ids = await self.store.write_journal(calls, messages, events)
        for event, event_id in zip(events, ids, strict=True):
            self._ready(dataclasses.replace(event, id=event_id))
        now = time.monotonic()
        for entry in batch:
            metrics.JOURNAL_COMMIT_SECONDS.observe(now - entry.added)
            if not entry.committed.done():  # its awaiting task may have been cancelled
                entry.committed.set_result(None)

    def adopt(self, events: Sequence[OutboxEvent]) -> None:
        """Queue durable events this process now owns, in id order (so in order per call):
        an earlier run's (at start, before any commit) or a dead cluster node's."""
        for event in sorted(events, key=lambda e: e.id or 0):
            self._ready(event)
        if events:
            log.info("callbacks.recovered", events=len(events))

    def _ready(self, event: OutboxEvent) -> None:
        """A durable event joins its call's queue; start the call's worker if it is idle."""
        queue = self._queues.get(event.call_sid)
        if queue is None:
            queue = self._queues[event.call_sid] = deque()
        queue.append(event)
        self.pending += 1
        metrics.CALLBACKS_PENDING.set(self.pending)
        if event.call_sid not in self._workers:
            task = asyncio.create_task(self._deliver_call(event.call_sid, queue))
            self._workers[event.call_sid] = task

    async def _deliver_call(self, call_sid: str, queue: deque[OutboxEvent]) -> None:
        try:
            while queue:
                event = queue[0]
                delivered = await self._deliver(event)
                queue.popleft()
                self.pending -= 1
                metrics.CALLBACKS_PENDING.set(self.pending)
                assert event.id is not None
                self._marks.add(event.id)  # an expired event leaves the outbox too
                if delivered:
                    metrics.CALLBACKS_SENT.inc()
                else:
                    await self._expired(event)
        finally:
            del self._workers[call_sid]
            if not queue:
                del self._queues[call_sid]

    async def _deliver(self, event: OutboxEvent) -> bool:
        """Send ``event`` until its receiver answers 2xx (True) or it is ``max_age`` old (False).

        The last attempt is made when the event reaches ``max_age``."""
        attempts = event.attempts
        expires_at = event.created_at + self.config.max_age
        while True:
            async with self._limit:
                error = await self._post(event)
            attempts += 1
            self.attempts.add(event.call_sid, event.sequence, event.url, attempts, error)
            if error is None:
                return True
            metrics.CALLBACKS_FAILED.inc()
            left = expires_at - time.time()
            if left <= 0:
                log.warning(
                    "callback.expired",
                    call_sid=event.call_sid,
                    sequence=event.sequence,
                    attempts=attempts,
                    error=error,
                )
                return False
            delay = min(
                left,
                min(self.config.retry_max, self.config.retry_initial * 2 ** min(attempts - 1, 20))
                * random.uniform(0.8, 1.2),
            )
            log.info(
                "callback.retry",
                call_sid=event.call_sid,
                sequence=event.sequence,
                attempts=attempts,
                retry_in=round(delay, 2),
                error=error,
            )
            await asyncio.sleep(delay)

    async def _expired(self, event: OutboxEvent) -> None:
        """Count and record an event given up after ``max_age`` (a lost notification is only
        logged: the ``callback.expired`` line and the metric remain)."""
        metrics.CALLBACKS_EXPIRED.inc()
        age = time.time() - event.created_at
        notification = Notification(
            sid=new_sid("NO"),
            account_sid=event.account_sid,
            call_sid=event.call_sid if event.call_sid.startswith("CA") else None,
            error_code=EXPIRED_ERROR_CODE,
            level="error",
            message=(
                f"status callback {event.method} {event.url} for {event.call_sid} (sequence "
                f"{event.sequence}) given up after {age:.0f} s (callbacks.max_age "
                f"{self.config.max_age:g} s) without a 2xx answer"
            ),
            request_url=event.url,
            date_created=time.time(),
        )
        try:
            await self.store.add_notifications([notification])
        except RcmlRouterError as exc:
            log.warning("callback.expired_notification_failed", error=str(exc))

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
