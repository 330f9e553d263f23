"""What a call leaves behind, for any leg: its record, its status callbacks, its notifications.

Every leg is a call record of its own, and its status callbacks form one stream: numbered
``SequenceNumber`` 0, 1, 2… in the order sent, delivered in that order under the leg's sid, and
committed in the same transaction as the record that says how far the leg got (through the
durable outbox). The record carries the stream's next number, its URL and the parameters a
restart needs, so a call a crash left unfinished is closed with the final event it owes
(:func:`owed_final_event`, used by ``calls/recovery.py``).

- :class:`CallEvents`: an inbound call (SPEC §4): RINGING, IN_PROGRESS and the final event to the
  number's StatusCallback, the record checkpointed as the call goes. Live call control
  (``POST Calls/{CA}`` with ``StatusCallback``) moves the remaining events elsewhere
  (:meth:`CallEvents.switch_callbacks`): the record says so at once, so a restart sends the
  final event there too.
- :class:`LegEvents`: a leg this side placed (a ``<Dial>`` noun; it goes on as a transferred
  call): the ``statusCallbackEvent`` events its noun asked for, to its ``statusCallback``.
- :func:`post_action_after_hangup`: an ``action`` whose document cannot run any more (the caller
  hung up during ``<Dial>`` or ``<Record>``) still gets its request, through the outbox.
- :func:`notify_call`: a notification (``Accounts/{AC}/Notifications``) about a call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Protocol

import structlog

from rcmlrouter.callbacks import CallbackOutbox
from rcmlrouter.calls.call_state import CallState
from rcmlrouter.dates import rfc2822
from rcmlrouter.journal import BatchWriter
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import API_VERSION, CallRecord, Notification, OutboxEvent

log = structlog.get_logger("rcmlrouter.calls")

# Twilio's CallStatus for each statusCallbackEvent (the final one is the leg's outcome).
EVENT_STATUS = {"initiated": "initiated", "ringing": "ringing", "answered": "in-progress"}


def notify_call(
    notifications: BatchWriter[Notification],
    account_sid: str,
    call_sid: str,
    error_code: int,
    message: str,
    url: str | None = None,
) -> None:
    """Record a notification about call ``call_sid`` (and log it)."""
    notifications.add(
        Notification(
            sid=new_sid("NO"),
            account_sid=account_sid,
            call_sid=call_sid,
            error_code=error_code,
            level="error",
            message=message[:1000],
            request_url=url,
            date_created=time.time(),
        )
    )
    log.info("call.notification", error_code=error_code, message=message[:200])


class CallEvents:
    """The record and the number's status callbacks of one inbound call."""

    __slots__ = ("final_commit", "final_only", "outbox", "override", "sequence", "state")

    def __init__(self, state: CallState, outbox: CallbackOutbox) -> None:
        self.state = state
        self.outbox = outbox
        self.sequence = 0
        self.override: tuple[str, str] | None = None  # (url, method) set through the API
        self.final_only = False  # the API's URL gets only the final event (see switch_callbacks)
        self.final_commit: asyncio.Future[None] | None = None  # the final record's, once sent

    def target(self) -> tuple[str, str] | None:
        """Where the call's events go: the API's choice, else the number's StatusCallback."""
        if self.override is not None:
            return self.override if self.override[0] else None
        number = self.state.number
        if number is None or not number.status_callback:
            return None
        return number.status_callback, number.status_callback_method

    def switch_callbacks(self, url: str, method: str) -> asyncio.Future[None]:
        """Send the remaining events to ``url`` (``""``: none): the events the call reported
        so far, or only the final one when it reported none (Twilio: "when the call ends"); the
        future resolves when the record saying so is durable."""
        if self.final_commit is not None:  # the call has ended: its events are all sent
            return self.final_commit
        if self.override is None:
            self.final_only = self.target() is None
        self.override = (url, method)
        return self.outbox.commit(call=self._record(self.state.current_status(), None, None))

    def checkpoint(self, status: str) -> asyncio.Future[None]:
        """Record the call as it stands ("ringing", "in-progress") together with its status
        callback, in one commit; the future resolves when both are durable. A call still
        unfinished when the process dies is closed at the next start, which sends the final
        callback it owes (its sequence and URL are in this record)."""
        events = self._status_events(status, None)
        return self.outbox.commit(call=self._record(status, None, None), events=events)

    def finish(self, end: float) -> str:
        """The final record with the final callback (one commit); returns the CallStatus."""
        state = self.state
        if state.end_cause == "cancel" and state.answer_time is None:
            state.sip_status = 487  # the endpoint answered the INVITE with 487
        status = state.final_call_status()
        duration = int(end - state.answer_time) if state.answer_time is not None else 0
        extra = {"CallDuration": str(duration)}
        if state.answer_time is None and state.sip_status is not None:
            extra["SipResponseCode"] = str(state.sip_status)
        events = self._status_events(status, extra)
        self.final_commit = self.outbox.commit(
            call=self._record(status, end, duration), events=events
        )
        return status

    def _status_events(self, status: str, extra: Mapping[str, str] | None) -> list[OutboxEvent]:
        """The next status callback (RINGING / IN_PROGRESS / final), if the number has one."""
        state = self.state
        target = self.target()
        if target is None or (self.final_only and extra is None):  # extra: the final event
            return []
        params = state.voice_params(status)
        params["Timestamp"] = rfc2822(time.time())
        params["SequenceNumber"] = str(self.sequence)
        if extra:
            params.update(extra)
        event = self.outbox.event(
            state.call_sid,
            state.account_sid,
            self.sequence,
            target[0],
            target[1],
            params,
        )
        self.sequence += 1
        return [event]

    def _record(self, status: str, end: float | None, duration: int | None) -> CallRecord:
        state = self.state
        number = state.number
        target = self.target()
        return CallRecord(
            sid=state.call_sid,
            account_sid=state.account_sid,
            number_sid=number.sid if number else None,
            from_=state.facts.from_user,
            to=state.facts.dialed,
            direction="inbound",
            status=status,
            match_kind=state.match.kind if state.match else None,
            start_time=state.start_time,
            answer_time=state.answer_time,
            end_time=end,
            duration=None if duration is None else float(duration),
            sip_status=state.sip_status,
            urls=list(state.fetches.urls),
            used_fallback=state.fetches.used_fallback,
            error_code=state.error_code,
            next_sequence=self.sequence,
            status_callback=target[0] if target else None,
            status_callback_method=target[1] if target else "POST",
            # the voice parameters a restart needs to send this call's final callback
            callback_params=state.base_params() if target else {},
        )


class PlacedLeg(Protocol):
    """What the record and callbacks of a leg this side placed are made of (``DialedLeg``)."""

    sid: str
    from_: str
    to: str
    start_time: float
    answer_time: float | None
    end_time: float | None
    status: str

    @property
    def sip_status(self) -> int | None: ...

    @property
    def duration(self) -> int: ...

    @property
    def sip_call_id(self) -> str | None: ...


class StatusCallback(Protocol):
    """Where a placed leg reports (a ``<Dial>`` noun's attributes)."""

    @property
    def status_callback(self) -> str | None: ...

    @property
    def status_callback_event(self) -> tuple[str, ...]: ...

    @property
    def status_callback_method(self) -> str: ...


class LegEvents:
    """The record and the status callbacks of one leg this side placed (``Direction``
    ``outbound-dial``, ``ParentCallSid`` the dialing call)."""

    __slots__ = (
        "account_sid",
        "callback",
        "direction",
        "outbox",
        "override",
        "parent_call_sid",
        "sequence",
    )

    def __init__(
        self,
        outbox: CallbackOutbox,
        callback: StatusCallback,
        *,
        account_sid: str,
        parent_call_sid: str,
        direction: str = "outbound-dial",
    ) -> None:
        self.outbox = outbox
        self.callback = callback
        self.account_sid = account_sid
        self.parent_call_sid = parent_call_sid
        self.direction = direction
        self.sequence = 0
        self.override: tuple[str, str] | None = None  # (url, method) set through the API

    def target(self) -> tuple[str, str, tuple[str, ...]] | None:
        """(url, method, events): the API's URL (with ``completed`` among the events), else
        the noun's ``statusCallback``; None when the leg reports nowhere."""
        callback = self.callback
        events = callback.status_callback_event
        if self.override is not None:
            url, method = self.override
            return (url, method, (*events, "completed")) if url else None
        if not callback.status_callback:
            return None
        return callback.status_callback, callback.status_callback_method, events

    def switch_callbacks(self, leg: PlacedLeg, url: str, method: str) -> asyncio.Future[None]:
        """Send the leg's remaining events to ``url`` (``""``: none); the future resolves when
        the record saying so is durable."""
        self.override = (url, method)
        return self.outbox.commit(call=self._record(leg))

    def commit(self, leg: PlacedLeg, event: str) -> asyncio.Future[None]:
        """Commit the leg's record with the callback of ``event`` (initiated, ringing,
        answered, completed) when its noun asked for that one; resolves when durable."""
        events = self._events(leg, event)  # first: the record carries the next number
        return self.outbox.commit(call=self._record(leg), events=events)

    def params(self, leg: PlacedLeg) -> dict[str, str]:
        """The leg's own parameters (its callbacks; a transferred call's webhooks)."""
        return {
            "CallSid": leg.sid,
            "ParentCallSid": self.parent_call_sid,
            "AccountSid": self.account_sid,
            "From": leg.from_,
            "To": leg.to,
            "Direction": self.direction,
            "ApiVersion": API_VERSION,
            "CallTimestamp": rfc2822(leg.start_time),
        }

    def _events(self, leg: PlacedLeg, event: str) -> list[OutboxEvent]:
        target = self.target()
        if target is None or event not in target[2]:
            return []
        params = self.params(leg)
        params["CallStatus"] = EVENT_STATUS.get(event, leg.status)
        params["Timestamp"] = rfc2822(time.time())
        params["SequenceNumber"] = str(self.sequence)
        params["CallbackSource"] = "call-progress-events"
        if event == "completed":
            params["CallDuration"] = str(leg.duration)
            if leg.sip_status is not None:
                params["SipResponseCode"] = str(leg.sip_status)
        if leg.sip_call_id is not None:
            params["SipCallId"] = leg.sip_call_id
        item = self.outbox.event(
            leg.sid, self.account_sid, self.sequence, target[0], target[1], params
        )
        self.sequence += 1
        return [item]

    def _record(self, leg: PlacedLeg) -> CallRecord:
        target = self.target()
        wants_final = target is not None and "completed" in target[2]
        ended = leg.end_time is not None
        return CallRecord(
            sid=leg.sid,
            account_sid=self.account_sid,
            number_sid=None,
            from_=leg.from_,
            to=leg.to,
            direction=self.direction,
            status=leg.status,
            match_kind=None,
            start_time=leg.start_time,
            answer_time=leg.answer_time,
            end_time=leg.end_time,
            duration=float(leg.duration) if ended else None,
            sip_status=leg.sip_status,
            next_sequence=self.sequence,
            status_callback=target[0] if target and wants_final else None,
            status_callback_method=target[1] if target else "POST",
            callback_params=self.params(leg) if wants_final else {},
            parent_call_sid=self.parent_call_sid,
        )


def owed_final_event(
    outbox: CallbackOutbox, record: CallRecord, status: str, duration: int, end: float
) -> OutboxEvent:
    """The final status callback a call closed by recovery owes (any leg: the record has its
    URL, its next SequenceNumber and its parameters); ``end`` is when the call ended."""
    assert record.status_callback is not None
    params = dict(record.callback_params)
    params |= {
        "CallSid": record.sid, "AccountSid": record.account_sid, "From": record.from_,
        "To": record.to, "CallStatus": status,
        "ApiVersion": params.get("ApiVersion", API_VERSION),
        "Direction": record.direction, "CallTimestamp": rfc2822(record.start_time),
        "Timestamp": rfc2822(end), "CallDuration": str(duration),
        "SequenceNumber": str(record.next_sequence),
    }  # fmt: skip
    if record.answer_time is None:
        params["SipResponseCode"] = "500"
    return outbox.event(
        record.sid, record.account_sid, record.next_sequence, record.status_callback,
        record.status_callback_method, params,
    )  # fmt: skip


def post_action_after_hangup(
    outbox: CallbackOutbox,
    state: CallState,
    key_sid: str,
    status: str,
    action: tuple[str, str],
    extra: Mapping[str, str],
) -> None:
    """POST ``action`` (URL, method) with the call's parameters (``CallStatus`` = ``status``)
    plus ``extra``, through the durable outbox, ordered under ``key_sid``: the caller hung up,
    so its document will not run, but the application still learns the verb's outcome."""
    url, method = action
    params = {**state.voice_params(status), **extra}
    outbox.enqueue(key_sid, state.account_sid, 0, url, method, params)
