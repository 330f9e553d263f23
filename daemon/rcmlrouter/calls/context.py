"""Per-call state, webhook parameters, status callbacks and the final record of one call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog

from rcmlrouter import metrics
from rcmlrouter.dates import rfc2822
from rcmlrouter.errors import RcmlError, SipParseError
from rcmlrouter.rcml.fetch import WebhookTarget
from rcmlrouter.rcml.model import Document
from rcmlrouter.routing.table import RouteMatch
from rcmlrouter.services import Services
from rcmlrouter.sip.endpoint import IncomingCall
from rcmlrouter.sip.message import SipRequest
from rcmlrouter.sip.uri import parse_name_addr
from rcmlrouter.store.base import (
    API_VERSION,
    CallRecord,
    IncomingNumber,
    Notification,
    OutboxEvent,
    new_sid,
)

log = structlog.get_logger("rcmlrouter.calls")


def caller_name(request: SipRequest) -> str:
    return request.from_addr.display or ""


def _user(value: str | None) -> str:
    return value or ""


@dataclass(slots=True)
class CallContext:
    """Everything known about one call, built up as it progresses."""

    call: IncomingCall
    services: Services
    call_sid: str
    start_time: float
    from_user: str
    dialed: str = ""
    match: RouteMatch | None = None
    number: IncomingNumber | None = None
    account_sid: str = ""
    auth_token: str = ""
    caller_name: str = ""
    answer_time: float | None = None
    outcome: str | None = None
    end_cause: str | None = None
    sip_status: int | None = None
    error_code: int | None = None
    urls: list[str] = field(default_factory=list)
    used_fallback: bool = False
    outbound_call_sid: str = ""  # the <Dial> leg, once one exists (OutboundCallSid)
    transfer_params: dict[str, str] = field(default_factory=dict)  # ReferTarget, Transferor…
    _sequence: int = 0
    _params: dict[str, str] | None = None

    @classmethod
    def start(cls, call: IncomingCall, services: Services) -> CallContext:
        return cls(
            call=call,
            services=services,
            call_sid=new_sid("CA"),
            start_time=time.time(),
            from_user=_user(call.request.from_addr.uri.user),
            account_sid=services.admin_account_sid,
        )

    # -- webhook parameters ------------------------------------------------------------------

    def voice_params(self, status: str) -> dict[str, str]:
        """SPEC §3.1 voice parameters with ``CallStatus`` = ``status``."""
        if self._params is None:
            self._params = self._base_params()
        params = dict(self._params)
        params["CallStatus"] = status
        if self.outbound_call_sid:
            params["OutboundCallSid"] = self.outbound_call_sid
        params.update(self.transfer_params)
        return params

    def _base_params(self) -> dict[str, str]:
        request = self.call.request
        params = {
            "CallSid": self.call_sid,
            "AccountSid": self.account_sid,
            "From": self.from_user,
            "To": self.dialed,
            "ApiVersion": self.number.api_version if self.number else API_VERSION,
            "Direction": "inbound",
            "CallTimestamp": rfc2822(self.start_time),
        }
        if self.caller_name:
            params["CallerName"] = self.caller_name
        forwarded = forwarded_from(request)
        if forwarded:
            params["ForwardedFrom"] = forwarded
        for name, value in request.headers:
            if name[:2] in ("X-", "x-"):
                params[f"SipHeader_{name}"] = value
        return params

    def current_status(self) -> str:
        return "in-progress" if self.answer_time is not None else "ringing"

    # -- fetching ----------------------------------------------------------------------------

    async def fetch(self, url: str, method: str, extra: Mapping[str, str]) -> Document:
        """The RCML at ``url`` with the call's parameters plus ``extra`` (``DocumentSource``).

        The first failure of the call goes to the number's fallback URL (SPEC §3.2); each
        failure that the fallback absorbed is recorded as a notification.
        """
        number = self.number
        fallback = None
        if number is not None and number.voice_fallback_url and not self.used_fallback:
            fallback = WebhookTarget(number.voice_fallback_url, number.voice_fallback_method)
        params = self.voice_params(self.current_status())
        params.update(extra)
        self.urls.append(url)
        started = time.perf_counter()
        try:
            outcome = await self.services.fetcher.fetch_with_fallback(
                WebhookTarget(url, method), fallback, params, self.auth_token
            )
        except RcmlError as exc:
            metrics.WEBHOOK_FAILURES.labels(str(exc.error_code)).inc()
            if fallback is not None:
                self.urls.append(fallback.url)
                self.used_fallback = True
            raise
        finally:
            metrics.WEBHOOK_SECONDS.observe(time.perf_counter() - started)
        if outcome.used_fallback:
            assert fallback is not None
            self.used_fallback = True
            self.urls.append(fallback.url)
            for error in outcome.errors:
                self.notify(error.error_code, str(error), error.url)
        return outcome.document

    # -- status callbacks, notifications -----------------------------------------------------

    def _status_events(self, status: str, extra: Mapping[str, str] | None) -> list[OutboxEvent]:
        """The next status callback (RINGING / IN_PROGRESS / final), if the number has one."""
        number = self.number
        if number is None or not number.status_callback:
            return []
        params = self.voice_params(status)
        params["Timestamp"] = rfc2822(time.time())
        params["SequenceNumber"] = str(self._sequence)
        if extra:
            params.update(extra)
        event = self.services.outbox.event(
            self.call_sid,
            self.account_sid,
            self._sequence,
            number.status_callback,
            number.status_callback_method,
            params,
        )
        self._sequence += 1
        return [event]

    def notify(self, error_code: int, message: str, url: str | None = None) -> None:
        self.services.notifications.add(
            Notification(
                sid=new_sid("NO"),
                account_sid=self.account_sid,
                call_sid=self.call_sid,
                error_code=error_code,
                level="error",
                message=message[:1000],
                request_url=url,
                date_created=time.time(),
            )
        )
        log.info("call.notification", error_code=error_code, message=message[:200])

    # -- the end -----------------------------------------------------------------------------

    def final_call_status(self) -> str:
        if self.answer_time is not None:
            return "completed"
        if self.end_cause == "cancel":
            return "canceled"
        if self.sip_status == 486:
            return "busy"
        if self.sip_status == 603:
            return "no-answer"
        return "failed"

    def finish(self) -> None:
        """Final record with the COMPLETED callback (one commit), metrics, ``call.completed``."""
        end = time.time()
        if self.end_cause == "cancel" and self.answer_time is None:
            self.sip_status = 487  # the endpoint answered the INVITE with 487
        status = self.final_call_status()
        duration = int(end - self.answer_time) if self.answer_time is not None else 0
        extra = {"CallDuration": str(duration)}
        if self.answer_time is None and self.sip_status is not None:
            extra["SipResponseCode"] = str(self.sip_status)
        events = self._status_events(status, extra)
        kind = self.match.kind if self.match else None
        self.services.outbox.commit(call=self._record(status, end, duration, kind), events=events)
        metrics.CALLS_TOTAL.labels(self.outcome or status, kind or "none").inc()
        log.info(
            "call.completed",
            outcome=self.outcome or status,
            call_status=status,
            match_kind=kind,
            number_sid=self.number.sid if self.number else None,
            dialed=self.dialed,
            sip_status=self.sip_status,
            end_cause=self.end_cause,
            duration=round(end - self.start_time, 3),
            used_fallback=self.used_fallback,
        )
        structlog.contextvars.unbind_contextvars("call_sid")

    def checkpoint(self, status: str) -> asyncio.Future[None]:
        """Record the call as it stands ("ringing", "in-progress") together with its status
        callback, in one commit; the future resolves when both are durable. A call still
        unfinished when the process dies is closed at the next start, which sends the final
        callback it owes (its sequence and URL are in this record)."""
        events = self._status_events(status, None)
        kind = self.match.kind if self.match else None
        record = self._record(status, None, None, kind)
        return self.services.outbox.commit(call=record, events=events)

    def _record(
        self, status: str, end: float | None, duration: int | None, kind: str | None
    ) -> CallRecord:
        return CallRecord(
            sid=self.call_sid,
            account_sid=self.account_sid,
            number_sid=self.number.sid if self.number else None,
            from_=self.from_user,
            to=self.dialed,
            direction="inbound",
            status=status,
            match_kind=kind,
            start_time=self.start_time,
            answer_time=self.answer_time,
            end_time=end,
            duration=None if duration is None else float(duration),
            sip_status=self.sip_status,
            urls=list(self.urls),
            used_fallback=self.used_fallback,
            error_code=self.error_code,
            next_sequence=self._sequence,
            status_callback=self.number.status_callback if self.number else None,
            status_callback_method=(self.number.status_callback_method if self.number else "POST"),
            callback_params=self._callback_params(),
        )

    def _callback_params(self) -> dict[str, str]:
        """The voice parameters a restart needs to send this call's final callback."""
        if self.number is None or not self.number.status_callback:
            return {}
        if self._params is None:
            self._params = self._base_params()
        return self._params


def forwarded_from(request: SipRequest) -> str:
    """Who forwarded the call: the user of the first ``Diversion`` entry, else of the
    ``History-Info`` entry before the last one (the target that was retargeted)."""
    diversion = request.get("Diversion")
    if diversion:
        return _entry_user(diversion.split(",")[0])
    entries = [e for v in request.get_all("History-Info") for e in v.split(",") if e.strip()]
    return _entry_user(entries[-2]) if len(entries) >= 2 else ""


def _entry_user(value: str) -> str:
    try:
        return parse_name_addr(value).uri.user or ""
    except SipParseError:
        return ""
