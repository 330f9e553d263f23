"""Outbound messages: the sender behind ``<Sms>`` / ``<Message>`` (voice and SMS documents).

Each message gets an ``SM`` sid and a :class:`~rcmlrouter.store.records.MessageRecord` whose
status goes ``queued`` → ``sending`` → ``sent`` (a 2xx) or ``failed`` (with an ErrorCode, see
:mod:`rcmlrouter.messaging.delivery`). The ``sending`` record is written before the MESSAGE
leaves (so a crash mid-send leaves a trace); the final record and the ``statusCallback`` event
are committed together through the durable outbox. Only the final status (``sent`` or
``failed``) is posted to ``statusCallback`` (``SequenceNumber`` 0); ``queued`` and ``sending``
last milliseconds and are not posted. A failure is also a notification.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from typing import Protocol

import structlog

from rcmlrouter.callbacks import CallbackOutbox
from rcmlrouter.config import Config
from rcmlrouter.journal import BatchWriter
from rcmlrouter.messaging.delivery import (
    ERROR_UNKNOWN,
    DeliveryOutcome,
    MessageDelivery,
    MessageTarget,
    RequestSender,
    TargetError,
    resolve_target,
)
from rcmlrouter.rcml.model import Sms
from rcmlrouter.rcml.ports import SmsOrigin, SmsResult
from rcmlrouter.sip.auth import DigestCredentials
from rcmlrouter.sip.uri import SipUri, format_host
from rcmlrouter.sms_format import MAX_BODY_CHARACTERS
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import API_VERSION, MessageRecord, Notification, OutboxEvent

log = structlog.get_logger(__name__)

ERROR_BODY_TOO_LONG = 21617


class SipSide(RequestSender, Protocol):
    """The endpoint: sends requests and knows the addresses it listens on."""

    @property
    def addresses(self) -> list[tuple[str, str, int]]: ...


class SmsSender:
    """Sends messages as SIP MESSAGE requests; implements ``rcml.ports.MessageSender``.

    Built before the SIP endpoint exists; :meth:`attach` connects it once the endpoint listens.
    """

    def __init__(
        self,
        config: Config,
        outbox: CallbackOutbox,
        notifications: BatchWriter[Notification],
        endpoint: SipSide | None = None,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.notifications = notifications
        sms = config.sms
        self.credentials = DigestCredentials(sms.username, sms.password) if sms.username else None
        self._endpoint: SipSide | None = None
        self._delivery: MessageDelivery | None = None
        if endpoint is not None:
            self.attach(endpoint)

    def attach(self, endpoint: SipSide) -> None:
        self._endpoint = endpoint
        self._delivery = MessageDelivery(
            endpoint, self.credentials, self.config.sms.timeout, self.config.sip.user_agent
        )

    async def send(self, verb: Sms, origin: SmsOrigin) -> SmsResult:
        """Send one message; never raises for a message that could not be delivered."""
        record = MessageRecord(
            sid=new_sid("SM"),
            account_sid=origin.account_sid,
            number_sid=origin.number_sid,
            from_=verb.from_ or origin.default_from,
            to=verb.to or origin.default_to,
            body=verb.body,
            direction=origin.direction,
            status="queued",
            date_created=time.time(),
        )
        outcome = await self._deliver(record)
        return self._finish(record, verb, outcome)

    async def _deliver(self, record: MessageRecord) -> DeliveryOutcome:
        addressed = self.address(record)
        if isinstance(addressed, DeliveryOutcome):
            return addressed
        target, from_uri = addressed
        self._commit(dataclasses.replace(record, status="sending"))
        return await self.delivery.deliver(target, from_uri, record.body)

    def address(self, record: MessageRecord) -> tuple[MessageTarget, str] | DeliveryOutcome:
        """Where ``record`` goes and its From URI; or the failure that stops it unsent."""
        if len(record.body) > MAX_BODY_CHARACTERS:
            detail = f"the body has {len(record.body)} characters (at most {MAX_BODY_CHARACTERS})"
            return DeliveryOutcome(None, ERROR_BODY_TOO_LONG, detail)
        try:
            target = resolve_target(record.to, self.config.sms.gateway)
        except TargetError as exc:
            return DeliveryOutcome(None, exc.error_code, str(exc))
        if self._delivery is None or self._endpoint is None:
            return DeliveryOutcome(None, ERROR_UNKNOWN, "SIP is not running")
        return target, self._from_uri(record.from_, target.destination[0])

    @property
    def delivery(self) -> MessageDelivery:
        """The MESSAGE client (once :meth:`attach` connected the endpoint)."""
        assert self._delivery is not None, "SmsSender.attach() first"
        return self._delivery

    def _from_uri(self, from_: str, transport: str) -> str:
        if from_.lower().startswith(("sip:", "sips:")):
            return from_
        return str(SipUri("sip", from_, format_host(self._local_host(transport))))

    def _local_host(self, transport: str) -> str:
        if self.config.sip.advertise:
            return self.config.sip.advertise
        assert self._endpoint is not None
        addresses = self._endpoint.addresses
        for kind, host, _ in addresses:
            if kind == transport:
                return host
        return addresses[0][1] if addresses else "127.0.0.1"

    def _finish(self, record: MessageRecord, verb: Sms, outcome: DeliveryOutcome) -> SmsResult:
        status = "sent" if outcome.sent else "failed"
        final = dataclasses.replace(record, status=status, error_code=outcome.error_code)
        events: list[OutboxEvent] = []
        if verb.status_callback:
            params = status_callback_params(final)
            events.append(
                self.outbox.event(
                    final.sid, final.account_sid, 0, verb.status_callback, "POST", params
                )
            )
        self._commit(final, events)
        if outcome.error_code is not None:
            self.notify_failure(final, outcome)
        log.info(
            "sms.completed",
            sms_sid=final.sid,
            status=status,
            error_code=outcome.error_code,
            sip_status=outcome.sip_status,
            detail=outcome.detail,
            direction=final.direction,
        )
        return SmsResult(final.sid, status, outcome.error_code)

    def _commit(self, record: MessageRecord, events: Sequence[OutboxEvent] = ()) -> None:
        committed = self.outbox.commit(message=record, events=events)
        committed.add_done_callback(_log_commit_failure)

    def notify_failure(self, record: MessageRecord, outcome: DeliveryOutcome) -> None:
        """A notification for a message that could not be sent."""
        assert outcome.error_code is not None
        self.notifications.add(
            Notification(
                sid=new_sid("NO"),
                account_sid=record.account_sid,
                call_sid=None,
                error_code=outcome.error_code,
                level="error",
                message=f"message {record.sid} to {record.to} failed: {outcome.detail}"[:1000],
                request_url=None,
                date_created=time.time(),
            )
        )


def status_callback_params(record: MessageRecord, sequence: int = 0) -> dict[str, str]:
    """What ``statusCallback`` gets: Restcomm's and Twilio's names for the message, in its
    status; ``SequenceNumber`` orders the events of one message (0, 1…)."""
    params = {
        "SmsSid": record.sid,
        "MessageSid": record.sid,
        "SmsStatus": record.status,
        "MessageStatus": record.status,
        "AccountSid": record.account_sid,
        "From": record.from_,
        "To": record.to,
        "Body": record.body,
        "ApiVersion": record.api_version or API_VERSION,
        "Direction": record.direction,
        "SequenceNumber": str(sequence),
    }
    if record.error_code is not None:
        params["ErrorCode"] = str(record.error_code)
    return params


def _log_commit_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("sms.record_failed", error=repr(future.exception()))
