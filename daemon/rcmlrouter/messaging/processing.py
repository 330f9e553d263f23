"""Processing accepted messages: SMS URL (with fallback), the SMS document, the final record.

A bounded pool of workers takes accepted messages in order of acceptance. Each one fetches the
number's SMS URL (``SmsApplicationSid`` wins over ``SmsUrl``) with the parameters of
:func:`~rcmlrouter.messaging.params.message_params`; the first failure of any kind of SPEC §3.2,
including a document with a verb an SMS document cannot run (12100), goes to ``SmsFallbackUrl``
with ``ErrorCode`` and ``ErrorUrl``. The document then runs (``<Sms>``/``<Message>`` send,
``<Redirect>`` and ``action`` fetch more). Last, the record is committed again with its outcome:
status ``received`` (processed) or ``failed``, the URLs fetched, whether the fallback was used, the
error code. Each failure becomes a notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Mapping

import structlog

from rcmlrouter import metrics
from rcmlrouter.errors import NotFoundError, RcmlError
from rcmlrouter.messaging.document import check_message_document, run_message_document
from rcmlrouter.messaging.params import message_params
from rcmlrouter.rcml.fallback import FetchLog, fetch_once_with_fallback
from rcmlrouter.rcml.fetch import WebhookTarget, webhook_failures
from rcmlrouter.rcml.model import Document
from rcmlrouter.services import Services
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import IncomingNumber, MessageRecord, Notification

log = structlog.get_logger("rcmlrouter.messages")

ACCEPTED = "accepted"  # stored and answered 202, not processed yet
PROCESSED = "received"  # the SMS URL answered and its document ran
FAILED = "failed"


async def sms_target(services: Services, number: IncomingNumber) -> WebhookTarget | None:
    """Where the number's messages go: its SMS application's URL, else its own ``SmsUrl``."""
    if number.sms_application_sid:
        try:
            app = await services.directory.application(number.sms_application_sid)
        except NotFoundError:
            app = None
        if app is not None and app.sms_url:
            return WebhookTarget(app.sms_url, app.sms_method)
    if number.sms_url:
        return WebhookTarget(number.sms_url, number.sms_method)
    return None


def notify_message(
    services: Services,
    account_sid: str,
    sms_sid: str | None,
    error_code: int,
    message: str,
    url: str | None = None,
) -> None:
    """Record a notification about a message (its sid in the notification's call_sid field)."""
    services.notifications.add(
        Notification(
            new_sid("NO"), account_sid, sms_sid, error_code, "error", message[:1000], url,
            time.time(),
        )
    )  # fmt: skip
    log.info("message.notification", sms_sid=sms_sid, error_code=error_code, message=message[:200])


class InboundMessage:
    """One received message while its documents run (``messaging.document.MessageSession``)."""

    def __init__(
        self, services: Services, record: MessageRecord, number: IncomingNumber, auth_token: str
    ) -> None:
        self.services = services
        self.record = record
        self.number = number
        self.sid = record.sid
        self.account_sid = record.account_sid
        self.auth_token = auth_token
        self.number_sid = record.number_sid
        self.default_to = record.from_
        self.default_from = record.to
        self.fetches = FetchLog()  # the URLs fetched, and whether the fallback was used
        self._params = message_params(record, number.api_version)

    async def fetch(self, url: str, method: str, extra: Mapping[str, str]) -> Document:
        """The SMS document at ``url`` with the message's parameters plus ``extra``; the first
        failure of the message goes to the number's ``SmsFallbackUrl`` (SPEC §3.2)."""
        number = self.number
        fallback = None
        if number.sms_fallback_url:
            fallback = WebhookTarget(number.sms_fallback_url, number.sms_fallback_method)
        params = {**self._params, **extra} if extra else self._params
        return await fetch_once_with_fallback(
            self.services.fetcher,
            self.fetches,
            WebhookTarget(url, method),
            fallback,
            params,
            self.auth_token,
            self.notify,
            check_message_document,
        )

    def notify(self, error_code: int, message: str, url: str | None = None) -> None:
        notify_message(self.services, self.account_sid, self.sid, error_code, message, url)


class MessageProcessor:
    """At most ``workers`` messages processed at once, in order of acceptance."""

    def __init__(self, services: Services, *, workers: int = 128) -> None:
        self.services = services
        self.workers = workers
        self._queue: asyncio.Queue[MessageRecord] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._running = 0

    @property
    def backlog(self) -> int:
        """Accepted messages not processed yet (queued or in progress)."""
        return self._queue.qsize() + self._running

    def submit(self, record: MessageRecord) -> None:
        self._queue.put_nowait(record)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"message-worker-{i}")
            for i in range(self.workers)
        ]

    async def stop(self, grace: float) -> None:
        """Give the queue ``grace`` seconds, then stop the workers (unprocessed messages stay
        ``accepted`` in the store)."""
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
                await self.process(record)
            finally:
                self._running -= 1
                self._queue.task_done()

    async def process(self, record: MessageRecord) -> None:
        """Run one accepted message to its end and commit its final record."""
        started = time.perf_counter()
        services = self.services
        session: InboundMessage | None = None
        status, error_code = PROCESSED, None
        try:
            assert record.number_sid is not None
            number = await services.directory.number(record.number_sid)
            token = await services.directory.auth_token(record.account_sid)
            session = InboundMessage(services, record, number, token)
            target = await sms_target(services, number)
            if target is None:
                raise RcmlError(f"number {number.phone_number} has no SMS URL", 12003)
            document = await session.fetch(target.url, target.method, {})
            await run_message_document(document, session, services.sms)
        except NotFoundError as exc:  # the number was deleted after the message was accepted
            status, error_code = FAILED, 11005
            self._notify_failure(record, RcmlError(str(exc), 11005))
        except RcmlError as exc:
            status, error_code = FAILED, exc.error_code
            self._notify_failure(record, exc)
        except Exception as exc:
            log.exception("message.error", sms_sid=record.sid, error=repr(exc))
            status, error_code = FAILED, 11100
            self._notify_failure(record, RcmlError(f"internal error: {exc!r}", 11100))
        final = dataclasses.replace(
            record,
            status=status,
            urls=session.fetches.urls if session else [],
            used_fallback=session.fetches.used_fallback if session else False,
            error_code=error_code,
        )
        services.outbox.commit(message=final)
        metrics.MESSAGES_TOTAL.labels(status).inc()
        log.info(
            "message.processed",
            sms_sid=record.sid,
            status=status,
            error_code=error_code,
            used_fallback=final.used_fallback,
            seconds=round(time.perf_counter() - started, 4),
        )

    def _notify_failure(self, record: MessageRecord, exc: RcmlError) -> None:
        for failure in webhook_failures(exc) or (exc,):
            notify_message(
                self.services,
                record.account_sid,
                record.sid,
                failure.error_code,
                str(failure),
                failure.url,
            )
