"""Inbound SIP MESSAGE (SPEC §5): check, route, store, then ``202 Accepted``; process after.

``MessageHandler.on_message`` is the SIP endpoint's hook for out-of-dialog MESSAGE requests. The
one invariant: **a message is durable before it is acknowledged.** Its record (status
``accepted``) is group-committed through the outbox journal and only then answered 202; the
processing (SMS URL, RCML) happens afterwards in :class:`~rcmlrouter.messaging.processing.
MessageProcessor`, which marks the record ``received`` (or ``failed``) when done. At start
:meth:`MessageHandler.start` queues every message an earlier run accepted but did not finish, and
reloads the dedupe keys of the last 32 s, before SIP listens.

Refusals carry a ``Reason`` header: 415 (+ ``Accept: text/plain``), 400, 413, 404 (no number:
notification 11005; no SMS URL: 12003), 503 + ``Retry-After`` when draining or the processing
backlog is full, 500 when the store fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import structlog

from rcmlrouter.destination import find_destination, routed_number
from rcmlrouter.errors import OverloadError, RcmlRouterError, RouteNotFoundError, SipError
from rcmlrouter.messaging.accept import DEDUPE_SECONDS, RecentMessages, dedupe_key, message_text
from rcmlrouter.messaging.params import x_headers
from rcmlrouter.messaging.processing import (
    ACCEPTED,
    MessageProcessor,
    notify_message,
    sms_target,
)
from rcmlrouter.routing.numbers import normalize_dialed
from rcmlrouter.services import Services
from rcmlrouter.sip.call import IncomingRequest
from rcmlrouter.sip.message import Header, SipRequest
from rcmlrouter.sip.response import reason_header
from rcmlrouter.sip.uri import parse_uri
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import MessageRecord

log = structlog.get_logger("rcmlrouter.messages")

MAX_BACKLOG = 20_000  # accepted messages waiting for processing before new ones get 503
Answer = SipError | None  # how a MESSAGE was answered: None = 202 Accepted


class MessageHandler:
    """Owns inbound messages: acceptance here, processing in its :class:`MessageProcessor`."""

    def __init__(self, services: Services, *, workers: int = 128) -> None:
        self.services = services
        self.processor = MessageProcessor(services, workers=workers)
        self.recent: RecentMessages[Answer] = RecentMessages()
        self.draining = False
        self._accepting: set[asyncio.Task[None]] = set()

    async def start(self, unfinished: Sequence[MessageRecord]) -> int:
        """Before SIP listens: reload recent dedupe keys, queue the unfinished messages of
        earlier runs (claimed by ``cluster/work.py``), start the workers. Returns how many
        messages were recovered."""
        store = self.services.directory.store
        now = time.time()
        for key, _sid in await store.recent_message_keys(now - DEDUPE_SECONDS):
            self.recent.add(key, _accepted())
        for record in unfinished:
            self.processor.submit(record)
        self.processor.start()
        if unfinished:
            log.warning("messages.recovered", count=len(unfinished))
        return len(unfinished)

    def adopt(self, records: Sequence[MessageRecord]) -> None:
        """Process accepted messages a dead cluster node left (claimed by ``cluster/work.py``)."""
        for record in records:
            self.processor.submit(record)

    async def drain(self, grace: float) -> None:
        """Refuse new messages (503); finish accepting; give processing ``grace`` seconds.
        What is still unprocessed stays ``accepted`` in the store for the next start."""
        self.draining = True
        if self._accepting:
            await asyncio.wait(list(self._accepting), timeout=grace)
        await self.processor.stop(grace)

    # -- the SIP hook --------------------------------------------------------------------------

    def on_message(self, incoming: IncomingRequest) -> None:
        request = incoming.request
        try:
            if self.draining or self.processor.backlog >= MAX_BACKLOG:
                raise OverloadError("draining" if self.draining else "too many messages queued")
            text = message_text(request, incoming.source[0])
            key = dedupe_key(request)
        except SipError as exc:
            _refuse(incoming, exc)
            return
        stored = self.recent.get(key)
        if stored is not None:  # a re-send: the first one's answer, once it is known
            stored.add_done_callback(lambda done: _answer(incoming, done.result()))
            return
        stored = asyncio.get_running_loop().create_future()
        self.recent.add(key, stored)
        task = asyncio.create_task(self._accept(incoming, text, key, stored))
        self._accepting.add(task)
        task.add_done_callback(self._accepting.discard)

    async def _accept(
        self, incoming: IncomingRequest, text: str, key: str, stored: asyncio.Future[Answer]
    ) -> None:
        try:
            record = await self._record(incoming.request, text, key)
            await asyncio.shield(self.services.outbox.commit(message=record))
        except SipError as exc:
            self._refused(incoming, key, stored, exc)
            return
        except RcmlRouterError as exc:  # the store failed: not durable, so not acknowledged
            log.error("message.store_failed", error=str(exc))
            self._refused(incoming, key, stored, SipError("message not stored", sip_status=500))
            return
        except Exception as exc:
            log.exception("message.error", error=repr(exc))
            self._refused(incoming, key, stored, SipError("internal error", sip_status=500))
            return
        stored.set_result(None)
        incoming.respond(202)
        self.processor.submit(record)

    def _refused(
        self, incoming: IncomingRequest, key: str, stored: asyncio.Future[Answer], error: SipError
    ) -> None:
        """Answer ``error``, to this request and to re-sends waiting for it; a later re-send
        is judged afresh."""
        self.recent.forget(key)
        stored.set_result(error)
        _refuse(incoming, error)

    async def _record(self, request: SipRequest, text: str, key: str) -> MessageRecord:
        """Route the message; the record to store. ``SipError`` 404 when it has nowhere to go."""
        services = self.services
        ruri = parse_uri(request.uri)
        # "sip:mms:+1234@host" parses as user "mms", password "+1234": the user meant both.
        user = ruri.user or ""
        if ruri.password is not None:
            user = f"{user}:{ruri.password}"
        dialed = normalize_dialed(user)
        from_uri = request.from_addr.uri
        destination = await find_destination(
            services, dialed, (ruri.host, request.to_addr.uri.host), from_uri.host
        )
        if destination.match is None:
            notify_message(
                services,
                services.admin_account_sid,
                None,
                11005,
                f"MESSAGE to {dialed!r}: no number matches in {destination.organization.domain}",
            )
            raise RouteNotFoundError(f"no number matches {dialed or 'the empty string'}")
        routed = await routed_number(services, destination.match)
        number = routed.number
        sid = new_sid("SM")
        if await sms_target(services, number) is None:
            notify_message(
                services,
                number.account_sid,
                sid,
                12003,
                f"number {number.phone_number} has no SmsUrl or SmsApplicationSid",
            )
            raise RouteNotFoundError(f"number {number.phone_number} has no SMS URL")
        return MessageRecord(
            sid=sid,
            account_sid=number.account_sid,
            number_sid=number.sid,
            from_=from_uri.user or "",
            to=dialed,
            body=text,
            direction="inbound",
            status=ACCEPTED,
            date_created=time.time(),
            sip_headers=x_headers(request.headers),
            dedupe_key=key,
        )


def _refuse(incoming: IncomingRequest, error: SipError) -> None:
    headers: list[Header] = [reason_header(error.sip_status, error.reason)]
    if error.sip_status == 415:
        headers.append(("Accept", "text/plain"))
    if isinstance(error, OverloadError):
        headers.append(("Retry-After", str(error.retry_after)))
    incoming.respond(error.sip_status, headers=headers)


def _answer(incoming: IncomingRequest, answer: Answer) -> None:
    if answer is None:
        incoming.respond(202)
    else:
        _refuse(incoming, answer)


def _accepted() -> asyncio.Future[Answer]:
    future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future
