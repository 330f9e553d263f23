"""Live call control on the node that runs the call: ``POST Calls/{CA}`` applied to its
:class:`~rcmlrouter.calls.live_call.LiveCall` (Twilio's semantics).

- ``Status=completed``: the call is stopped with ``api-hangup``: an answered call gets BYE and
  ends ``completed``, an unanswered one is refused and ends ``canceled`` (an API-originated call
  handles the cause in its own run). The answer comes once the call has ended and its final
  record (with its final status callback) is durable, so the API shows the ended call.
- ``Status=canceled``: only a call not yet answered (queued, ringing) is stopped (``canceled``);
  an answered call is left alone, as Twilio does.
- ``Url``/``Method`` or ``Twiml``: the running verb stops and the new document runs
  (``LiveCall.redirect``; the executor does the rest). ``FallbackUrl`` is fetched when ``Url``
  fails.
- ``StatusCallback``/``StatusCallbackMethod``: the remaining events go there, durably
  (``LiveCall.callbacks``); applied first, so a hang-up in the same request reports there.

A call this node does not run (any more), or one already being ended, is :data:`ENDED`.

:meth:`LocalCallControl.command` applies any command about a live call: an update as above, or
a stream started or stopped on the call (``POST Calls/{CA}/Streams``: the supervisor's
``start_stream`` / ``stop_stream``), answered with the stream's description, a refusal with
Twilio's code (:data:`REFUSED`: 21220, 31940, 31941), :data:`NO_STREAM`, or :data:`ENDED` when
the call does not run here for that account. A conference command goes to this node's rooms
(``conference/control.py``), answered with the conference's or participant's row, or
:data:`ENDED` when the room (or the participant) is not live here.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict

import structlog

from rcmlrouter.call_updates import (
    API_HANGUP,
    APPLIED,
    CANCELED,
    COMPLETED,
    ENDED,
    IGNORED,
    INVALID,
    NO_STREAM,
    REFUSED,
    UNSUPPORTED,
    CallCommand,
    CallUpdate,
    ConferenceCommand,
    ConferenceEnd,
    ParticipantUpdate,
    StreamStart,
    StreamStop,
    UpdateResult,
)
from rcmlrouter.calls.supervisor import CallSupervisor
from rcmlrouter.conference.control import ConferenceControl
from rcmlrouter.errors import RcmlError, StoreUnavailableError, StreamRefusedError
from rcmlrouter.rcml.model import Stream
from rcmlrouter.rcml.parse import parse_rcml
from rcmlrouter.rcml.ports import RedirectTarget
from rcmlrouter.store.conference_records import ConferenceRecord, ParticipantRecord

log = structlog.get_logger(__name__)

CLOSE_WAIT = 5.0  # seconds a hang-up waits for the call's end and its final record
COMMIT_WAIT = 3.0  # seconds a StatusCallback move waits for its record to be durable
UNANSWERED = frozenset({"queued", "initiated", "ringing"})


class LocalCallControl:
    """Applies commands to the calls of this process's supervisor (and to its rooms)."""

    def __init__(
        self, supervisor: CallSupervisor, conferences: ConferenceControl | None = None
    ) -> None:
        self.supervisor = supervisor
        self.conferences = conferences

    def runs(self, call_sid: str) -> bool:
        return self.supervisor.live_call(call_sid) is not None

    async def command(self, call_sid: str, command: CallCommand) -> UpdateResult:
        """Apply any command about a live call to ``call_sid`` here."""
        if isinstance(command, CallUpdate):
            return await self.apply(call_sid, command)
        if isinstance(command, StreamStart):
            return self._start_stream(call_sid, command)
        if isinstance(command, StreamStop):
            return self._stop_stream(call_sid, command)
        return self._conference(call_sid, command)

    def _conference(self, conference_sid: str, command: ConferenceCommand) -> UpdateResult:
        rooms = self.conferences
        row: ConferenceRecord | ParticipantRecord | None = None
        if rooms is None:
            pass
        elif isinstance(command, ConferenceEnd):
            row = rooms.end(conference_sid)
        elif isinstance(command, ParticipantUpdate):
            row = rooms.update_participant(
                conference_sid,
                command.call_sid,
                muted=command.muted,
                hold=command.hold,
                hold_url=command.hold_url,
                hold_method=command.hold_method,
            )
        elif rooms.kick(conference_sid, command.call_sid):
            return UpdateResult(APPLIED)
        if row is None:
            return UpdateResult(ENDED, "the conference (or participant) is not live here")
        return UpdateResult(APPLIED, result=asdict(row))

    def _start_stream(self, call_sid: str, start: StreamStart) -> UpdateResult:
        stream = Stream(
            url=start.url,
            name=start.name,
            track=start.track,
            status_callback=start.status_callback,
            status_callback_method=start.status_callback_method,
            parameters=start.parameters,
        )
        try:
            started = self.supervisor.start_stream(start.account_sid, call_sid, stream)
        except StreamRefusedError as exc:
            return UpdateResult(REFUSED, str(exc), code=exc.error_code)
        if started is None:
            return UpdateResult(ENDED, "the call is not running")
        return UpdateResult(APPLIED, result=dict(started))

    def _stop_stream(self, call_sid: str, stop: StreamStop) -> UpdateResult:
        try:
            stopped = self.supervisor.stop_stream(stop.account_sid, call_sid, stop.ref)
        except LookupError:
            return UpdateResult(NO_STREAM, f"no stream {stop.ref!r} runs on the call")
        if stopped is None:
            return UpdateResult(ENDED, "the call is not running")
        return UpdateResult(APPLIED, result=dict(stopped))

    async def apply(self, call_sid: str, update: CallUpdate) -> UpdateResult:
        live = self.supervisor.live_call(call_sid)
        if live is None or live.ending:
            return UpdateResult(ENDED, "the call is not running")
        status = update.status
        if status == CANCELED and live.status not in UNANSWERED:
            status = None  # Twilio: canceled does not affect a call already in progress
            if not update.redirects and update.status_callback is None:
                return UpdateResult(IGNORED, f"Status=canceled leaves a call {live.status} alone")
        try:
            target = _redirect_target(update) if update.redirects else None
        except RcmlError as exc:  # the API validated it; a node running other code may differ
            return UpdateResult(INVALID, f"Twiml: {exc}")
        if update.status_callback is not None:
            if live.callbacks is None:
                return UpdateResult(UNSUPPORTED, "this call's status callbacks cannot be moved")
            moved = live.callbacks.switch_callbacks(
                update.status_callback, update.status_callback_method
            )
            try:
                async with asyncio.timeout(COMMIT_WAIT):
                    await asyncio.shield(moved)
            except TimeoutError as exc:  # the journal retries; the API answers 503
                raise StoreUnavailableError(f"no commit within {COMMIT_WAIT:g} s") from exc
        if update.time_limit is not None and status is None:
            live.limit_time(update.time_limit)
            log.info("call.api_time_limit", call_sid=call_sid, seconds=update.time_limit)
        if status in (COMPLETED, CANCELED):
            live.interrupt(API_HANGUP if status == COMPLETED else CANCELED)
            closed = await live.wait_closed(CLOSE_WAIT)
            log.info("call.api_stop", call_sid=call_sid, status=status, closed=closed)
            return UpdateResult(APPLIED)
        if target is not None:
            live.redirect(target)
            log.info("call.api_redirect", call_sid=call_sid, url=target.url)
        return UpdateResult(APPLIED)


def _redirect_target(update: CallUpdate) -> RedirectTarget:
    """The redirect an update asks for (its ``Twiml`` was validated by the API already)."""
    if update.twiml is not None:
        return RedirectTarget(document=parse_rcml(update.twiml.encode(), update.base_url))
    return RedirectTarget(
        url=update.url,
        method=update.method,
        fallback_url=update.fallback_url,
        fallback_method=update.fallback_method,
    )
