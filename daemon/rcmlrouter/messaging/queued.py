"""Messages the API queued (``POST Messages``): each sent once, durably, as a SIP MESSAGE through
the SMS gateway (or straight to a ``sip:`` URI), as ``<Sms>`` sends (``messaging/outbound.py``).

The API writes the message ``queued`` (one transaction, with its Idempotency-Key record) and
answers 201; then it hands the message to :meth:`QueuedMessages.submit` (the ``WorkQueue`` the
composition root wires). A pool of workers sends in order of arrival:

1. ``queued`` → ``sending``: the record, **with the identity of its MESSAGE request** (Call-ID,
   CSeq, From tag and URI, Via branch; ``store.records.MessageWire``) and the ``sending`` status
   callback, is committed and awaited **before** the request leaves;
2. the MESSAGE goes out (Timer E retransmissions, Timer F / ``[sms] timeout``); a 401/407 of the
   gateway is answered once (CSeq + 1, a new branch: committed again before it leaves);
3. ``sent`` (2xx) or ``failed`` (ErrorCode as ``<Sms>``'s), committed with its status callback.

Status callbacks (``StatusCallback``, ``StatusCallbackMethod``) go through the durable outbox in
order: ``sending`` (SequenceNumber 0), then ``sent`` / ``failed`` (1); a message that fails before
anything is sent (a body too long, no gateway) gets only ``failed`` (0). None is posted for
``queued`` (as Twilio: the 201 says it). Parameters: ``MessageSid``/``SmsSid``,
``MessageStatus``/``SmsStatus``, ``AccountSid``, ``From``, ``To``, ``Body``, ``ApiVersion`` (of
the base the message was created on), ``Direction`` (``outbound-api``), ``SequenceNumber``,
``ErrorCode`` when failed.

**The guarantee after a crash** (``kill -9``, or a cluster node dying): at start (or when a
survivor claims a dead node's rows, ``cluster/work.py``) every message still ``queued`` or
``sending`` is handed here again:

- ``queued``: nothing left the process; it is sent as above.
- ``sending``: the request may have reached the gateway. It is sent **again with the stored
  identity**: the same Call-ID, CSeq, From tag, From URI, Via branch, body and Authorization
  header, byte for byte the same request but for the Via sent-by of another node. The gateway
  sees a retransmission (RFC 3261 §17.2.3 matches its transaction while it lives; RFC 3428
  receivers, rcmlrouter's own included, drop a MESSAGE whose Call-ID and CSeq they already
  took), never a second message. Its ``sending`` callback is not posted twice. From another
  node (another Via sent-by) a gateway still in the original transaction may answer ``482 Loop
  Detected`` (a merged request, RFC 3261 §8.2.2.2): to a resend that means ``sent``.
- a message queued more than ``VALIDITY`` (10 h, Twilio's default and maximum ValidityPeriod)
  before it could be sent is not sent: it ends ``failed`` with ErrorCode 30036 and its callback.

So from the 201 on, a message reaches the gateway as **one** message (possibly retransmitted) or
ends ``failed`` with its status callback; it is never lost and never sent as two.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Sequence

import structlog

from rcmlrouter import metrics
from rcmlrouter.callbacks import CallbackOutbox
from rcmlrouter.messaging.delivery import DeliveryOutcome
from rcmlrouter.messaging.outbound import SmsSender, status_callback_params
from rcmlrouter.store.records import MessageRecord, MessageWire, OutboxEvent

log = structlog.get_logger(__name__)

QUEUED, SENDING, SENT, FAILED = "queued", "sending", "sent", "failed"
VALIDITY = 36_000.0  # s a queued message may wait (Twilio's default and maximum ValidityPeriod)
ERROR_EXPIRED = 30036  # Twilio: Validity Period Expired
MAX_QUEUED = 20_000  # messages waiting in this process before the API answers 429
# To a resend, the gateway's "merged request" answer (RFC 3261 §8.2.2.2): it is in the middle of
# the original transaction (the resend came from another node's Via): the message is there.
LOOP_DETECTED = 482


class QueuedMessages:
    """Sends the API's queued messages; the API's ``WorkQueue`` (``full``, ``submit``)."""

    def __init__(
        self,
        sms: SmsSender,
        outbox: CallbackOutbox,
        *,
        workers: int = 128,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self.sms = sms
        self.outbox = outbox
        self.workers = workers
        self.max_queued = max_queued
        self.draining = False
        self._queue: asyncio.Queue[MessageRecord] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._running = 0
        metrics.API_MESSAGES_WAITING.set_function(lambda: self.backlog)

    @property
    def backlog(self) -> int:
        """Messages handed over and not finished (waiting or being sent)."""
        return self._queue.qsize() + self._running

    def full(self) -> bool:
        return self.draining or self.backlog >= self.max_queued

    def submit(self, item: MessageRecord) -> None:
        self._queue.put_nowait(item)

    def adopt(self, records: Sequence[MessageRecord]) -> None:
        """Messages an earlier run (or a dead node) left queued or sending, oldest first."""
        for record in sorted(records, key=lambda r: (r.date_created, r.sid)):
            self.submit(record)
        if records:
            resent = sum(1 for r in records if r.status == SENDING)
            log.warning("messages.outbound_recovered", count=len(records), resent=resent)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"api-message-worker-{i}")
            for i in range(self.workers)
        ]

    async def drain(self, grace: float) -> None:
        """Take no more (the API answers 429); give the queue ``grace`` seconds; stop. What is
        not finished stays queued or sending in the store for the next start."""
        self.draining = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._queue.join()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        self._tasks = []

    async def _work(self) -> None:
        while True:
            record = await self._queue.get()
            self._running += 1
            try:
                await self.send(record)
            except Exception as exc:  # the worker must go on; the message stays in the store
                log.exception("sms.api_send_error", sms_sid=record.sid, error=repr(exc))
            finally:
                self._running -= 1
                self._queue.task_done()

    async def send(self, record: MessageRecord) -> MessageRecord:
        """Send one message to its end (see the module docstring); its final record."""
        if time.time() - record.date_created > VALIDITY:
            detail = f"queued for over {VALIDITY:.0f} s (the validity period) before it was sent"
            return await self._finish(record, DeliveryOutcome(None, ERROR_EXPIRED, detail))
        addressed = self.sms.address(record)
        if isinstance(addressed, DeliveryOutcome):  # it cannot be sent at all
            return await self._finish(record, addressed)
        target, from_uri = addressed
        current = record

        async def before_send(wire: MessageWire) -> None:
            nonlocal current
            first = current.status == QUEUED
            current = dataclasses.replace(current, status=SENDING, wire=wire)
            events = self._event(current, 0) if first else []
            await asyncio.shield(self.outbox.commit(message=current, events=events))

        outcome = await self.sms.delivery.deliver(
            target, from_uri, record.body, wire=record.wire, before_send=before_send
        )
        resent = record.status == SENDING
        if resent and outcome.sip_status == LOOP_DETECTED:
            outcome = DeliveryOutcome(LOOP_DETECTED, None, "482: the gateway has the original")
        return await self._finish(current, outcome, resent=resent)

    async def _finish(
        self, record: MessageRecord, outcome: DeliveryOutcome, *, resent: bool = False
    ) -> MessageRecord:
        sequence = 1 if record.status == SENDING else 0  # after the sending event, if any
        status = SENT if outcome.sent else FAILED
        final = dataclasses.replace(record, status=status, error_code=outcome.error_code)
        await asyncio.shield(self.outbox.commit(message=final, events=self._event(final, sequence)))
        if outcome.error_code is not None:
            self.sms.notify_failure(final, outcome)
        metrics.API_MESSAGES_TOTAL.labels(status).inc()
        log.info(
            "sms.completed",
            sms_sid=final.sid,
            status=status,
            error_code=outcome.error_code,
            sip_status=outcome.sip_status,
            detail=outcome.detail,
            direction=final.direction,
            resent=resent,
        )
        return final

    def _event(self, record: MessageRecord, sequence: int) -> list[OutboxEvent]:
        if not record.status_callback:
            return []
        params = status_callback_params(record, sequence)
        return [
            self.outbox.event(
                record.sid,
                record.account_sid,
                sequence,
                record.status_callback,
                record.status_callback_method,
                params,
            )
        ]
