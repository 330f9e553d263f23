"""One call placed through the API (``POST Calls``), from its 201 to its record: queued → paced
→ initiated → ringing → answered → its document → completed (or busy / no-answer / failed /
canceled).

The call is one task of the supervisor (a :class:`~rcmlrouter.calls.live_call.LiveCall`,
``inbound=False``) for its whole life, so :meth:`LiveCall.interrupt` reaches it in any state:

- ``canceled`` / ``api-hangup`` while it waits for its slot: it is never dialled and ends
  ``canceled``; while it rings: CANCEL, ``canceled``; answered (``api-hangup``): BYE,
  ``completed``;
- ``time-limit`` (``TimeLimit``): BYE, ``completed``;
- ``drain`` while it waits: nothing is sent and the call stays ``queued`` in the store, dialled
  at the next start (or by the node that claims it); once dialled: as ``api-hangup``.

Durability: the queued record holds the request (``CallRecord.originate``). The ``initiated``
record, which clears it, is committed **before** the INVITE leaves, so a crash dials a call
again only if it never reached the network (a number's later tries on its trunk's failover
chain, ``calls/trunk_chain.py``, are the same call: never dialled again either). Status
callbacks (``StatusCallbackEvent``: initiated, ringing, answered, completed; only completed by
default) go through the durable outbox in order with ``SequenceNumber``, ``Timestamp`` and
``CallbackSource`` (``calls/call_events.py``). Once answered the call runs ``Twiml``, or the
document at ``Url`` / the ``ApplicationSid``'s voice URL (``FallbackUrl`` on failure), through
the executor as an inbound call runs its own, with ``Direction=outbound-api``; ``SendDigits``
are sent first.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Protocol

import structlog

from rcmlrouter import metrics
from rcmlrouter.calls.call_events import ALL_EVENTS, CallEvents, StatusTarget
from rcmlrouter.calls.call_state import CallFacts, CallState
from rcmlrouter.calls.dialed_leg import DialAddress, leg_status
from rcmlrouter.calls.documents import CallDocuments
from rcmlrouter.calls.live_call import LiveCall
from rcmlrouter.calls.outbound_address import call_address, call_trunks, from_uri, trunk_of
from rcmlrouter.calls.outbound_leg import OutboundLeg
from rcmlrouter.calls.recording import store_call_recording
from rcmlrouter.calls.trunk_chain import TrunkChain
from rcmlrouter.calls.wiring import CallWiring
from rcmlrouter.config import TrunkConfig
from rcmlrouter.errors import RcmlError, SipError
from rcmlrouter.rcml.execute import RcmlExecutor
from rcmlrouter.rcml.fetch import WebhookTarget, webhook_failures
from rcmlrouter.rcml.model import Document
from rcmlrouter.rcml.parse import parse_rcml
from rcmlrouter.rcml.ports import SmsChannel, SmsOrigin
from rcmlrouter.sip.message import SipResponse
from rcmlrouter.sip.outgoing import OutgoingCall
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import CallRecord, OriginateRequest

log = structlog.get_logger(__name__)

OUTBOUND_API = "outbound-api"
CANCELS = frozenset({"canceled", "api-hangup"})  # before the answer both end it "canceled"
ERROR_NOT_DIALED = 13227  # notification: the call could not be dialled
ERROR_INTERNAL = 11100


class DialSlots(Protocol):
    """When a queued call may be dialled (``calls/originate.py``: per account and trunk)."""

    async def wait(self, record: CallRecord, trunk: TrunkConfig | None) -> None:
        """Return at the call's slot; cancellable."""
        ...

    async def wait_trunk(self, trunk: TrunkConfig, deadline: float) -> bool:
        """A failover try's slot on ``trunk``, if it comes by ``deadline`` (loop clock)."""
        ...


@functools.lru_cache(maxsize=256)
def twiml_document(twiml: str) -> Document:
    """The parsed ``Twiml`` of a call (cached: campaigns place many calls with one document;
    a Document is immutable)."""
    return parse_rcml(twiml.encode())


def outbound_state(record: CallRecord, request: OriginateRequest) -> CallState:
    """The state of the API call ``record`` (its facts come from the request, not an INVITE)."""
    facts = CallFacts(
        from_user=request.from_,
        caller_display="",
        dialed=request.to,
        destination_hosts=(),
        caller_host=None,
        request_host="",
        forwarded_from="",
        sip_headers=(),
    )
    return CallState(
        record.sid,
        record.start_time,
        facts,
        record.account_sid,
        direction=OUTBOUND_API,
        api_version=request.api_version,
    )


def status_target(request: OriginateRequest) -> StatusTarget | None:
    if not request.status_callback:
        return None
    events = frozenset(request.status_callback_events) & ALL_EVENTS
    return StatusTarget(request.status_callback, request.status_callback_method, events)


class OutboundCall:
    """The run of one API call (see the module docstring)."""

    def __init__(
        self, record: CallRecord, live: LiveCall, wiring: CallWiring, slots: DialSlots
    ) -> None:
        assert record.originate is not None
        self.record = record
        self.request = record.originate
        self.live = live
        self.wiring = wiring
        self.slots = slots
        self.state = outbound_state(record, self.request)
        self.events = CallEvents(self.state, wiring.services.outbox, status_target(self.request))
        self.events.sequence = record.next_sequence
        self.events.originate = self.request  # the queued records keep it until the INVITE
        self.state.unanswered_status = "queued"
        self.leg: OutboundLeg | None = None
        self.chain: TrunkChain | None = None  # its tries (a number: its trunks' failover)
        self.recording: tuple[str, float] | None = None  # Record=true: its sid and start
        self.dialled = False
        self.started = False
        self._rang = False

    def on_task_done(self, _task: asyncio.Task[None]) -> None:
        """A task cancelled before its first step never ran :meth:`run`: a cancel that came
        that early still ends the call ``canceled`` (a drain leaves it queued)."""
        if not self.started and self.live.stop_cause in CANCELS:
            self.state.end_cause = self.live.stop_cause
            self.state.final_status = "canceled"
            self._finish()

    async def run(self) -> None:
        self.started = True
        self.live.status_of = self.state.current_status  # live control reads it
        self.live.answered_at = lambda: self.state.answer_time
        self.live.callbacks = self.events  # StatusCallback moved by POST Calls/{CA}
        structlog.contextvars.bind_contextvars(call_sid=self.state.call_sid)
        metrics.CALLS_ACTIVE.inc()
        try:
            await self._run()
        except asyncio.CancelledError:
            self.live.uncancel()
            await self._stopped()
        except Exception as exc:  # a bug: the call ends failed, never stays queued to loop
            log.exception("call.error", error=repr(exc))
            self.state.outcome = "error"
            self.state.final_status = self.state.final_status or "failed"
            self.dialled = True
            self.wiring.notify(self.state, ERROR_INTERNAL, f"internal error: {exc!r}")
            if self.chain is not None:
                self.chain.stop()
            if self.leg is not None and self.leg.dialing.call is not None:
                await self.leg.dialing.call.hangup("internal error")  # CANCEL, or BYE
        finally:
            self.live.settle()
            metrics.CALLS_ACTIVE.dec()
            if self.leg is not None:
                if self.recording is not None:
                    await self._stop_recording(self.leg)
                self.leg.release()
            if self.dialled or self.state.final_status == "canceled":
                self._finish()
            structlog.contextvars.unbind_contextvars("call_sid")

    async def _run(self) -> None:
        config = self.wiring.services.config
        trunk = trunk_of(self.request, config)
        await self.slots.wait(self.record, trunk)
        try:
            address = call_address(self.request, config)
            self.state.auth_token = await self.wiring.services.directory.auth_token(
                self.state.account_sid
            )
            leg = self.leg = OutboundLeg(self.state, self.wiring)
            offer = await leg.media.local_sdp()
        except (SipError, RcmlError) as exc:
            await self._not_dialled(exc)
            return
        await self._dial(leg, address, offer)
        if self.state.answer_time is not None:
            await self._answered(leg)

    async def _not_dialled(self, exc: SipError | RcmlError) -> None:
        """The call cannot be dialled at all: ``failed``, with its callbacks."""
        self.dialled = True  # the record is finished below
        self.state.final_status = "failed"
        reason = exc.reason if isinstance(exc, SipError) else str(exc)
        self.state.sip_status = exc.sip_status if isinstance(exc, SipError) else None
        self.wiring.notify(self.state, ERROR_NOT_DIALED, f"call to {self.request.to}: {reason}")
        self.state.unanswered_status, self.events.originate = "initiated", None
        await asyncio.shield(self.events.checkpoint("initiated"))

    async def _dial(self, leg: OutboundLeg, address: DialAddress, offer: bytes) -> None:
        """initiated (durable before the INVITE leaves) → ringing → the final response."""
        dialer = self.wiring.dialer
        if dialer is None:
            await self._not_dialled(SipError("SIP is not running", sip_status=503))
            return
        self.state.unanswered_status, self.events.originate = "initiated", None
        await asyncio.shield(self.events.checkpoint("initiated"))
        self.dialled = True
        config = self.wiring.services.config
        chain = self.chain = TrunkChain(
            call_trunks(self.request, config),
            lambda trunk, timeout: self._invite(address, trunk, offer, timeout),
            float(self.request.timeout),
            on_try=leg.dialing.attach,
            progress=self._on_progress,
            slot=self.slots.wait_trunk,
        )
        chain.start()
        call = await asyncio.shield(chain.result)
        self.state.sip_status = call.result.result().status
        if not call.answered:
            cause = call.ended.result() if call.ended.done() else None
            self.state.final_status = leg_status(call, cause)
            return
        self.state.answer_time = time.time()
        leg.media.on_answered()
        self.events.checkpoint("in-progress")
        if self.request.record:
            self._start_recording(leg)

    def _invite(
        self, first: DialAddress, trunk: TrunkConfig | None, offer: bytes, timeout: float
    ) -> OutgoingCall:
        """One try: to the call's address, or (trunk failover) the number through ``trunk``."""
        config, dialer = self.wiring.services.config, self.wiring.dialer
        assert dialer is not None
        address = first
        if trunk is not None and trunk != trunk_of(self.request, config):
            address = call_address(self.request, config, trunk)
        return dialer.start_call(
            address.uri,
            from_uri=from_uri(self.request, config),
            sdp=offer,
            credentials=address.credentials,
            ring_timeout=timeout,
        )

    def _start_recording(self, leg: OutboundLeg) -> None:
        media = self.wiring.services.media
        if media is None:
            return
        sid = new_sid("RE")
        path = media.recordings_dir / self.state.account_sid / f"{sid}.wav"
        request = self.request
        limit = float(request.time_limit) + 60
        track, channels = request.recording_track, request.recording_channels
        if leg.media.start_call_recording(path, limit, track, channels):
            self.recording = (sid, time.time())

    async def _stop_recording(self, leg: OutboundLeg) -> None:
        """The call is over: the recording's row and its RecordingStatusCallback."""
        media, recording = self.wiring.services.media, self.recording
        duration = leg.media.stop_call_recording()
        if media is None or recording is None or duration is None:
            return
        request = self.request
        callback = None
        if request.recording_status_callback:
            callback = (request.recording_status_callback, request.recording_status_callback_method)
        channels = 2 if request.recording_channels == "dual" else 1
        await store_call_recording(
            self.state, self.wiring, media, (*recording, duration), callback, channels
        )

    def _on_progress(self, response: SipResponse) -> None:
        if not self._rang and response.status in (180, 183):
            self._rang = True
            self.state.unanswered_status = "ringing"
            self.events.checkpoint("ringing")

    async def _answered(self, leg: OutboundLeg) -> None:
        """Run the call's document; the end of it hangs up (BYE)."""
        call = leg.call
        self.live.watch(call.ended)
        self.live.limit_time(self.request.time_limit)  # an update may change it
        try:
            if self.request.send_digits:
                await leg.send_digits(self.request.send_digits)
            documents = CallDocuments(self.state, self.wiring, self._fallback())
            document = await self._first_document(documents)
            origin = SmsOrigin(
                self.state.account_sid, self.request.to, self.request.from_, "outbound-call"
            )
            sms = SmsChannel(self.wiring.services.sms, origin)
            await RcmlExecutor(leg, documents, documents.notify, sms).run(document)
        except RcmlError as exc:
            self._rcml_failed(exc)
        except Exception as exc:
            log.exception("call.error", error=repr(exc))
            self.state.outcome = "error"
            self.wiring.notify(self.state, ERROR_INTERNAL, f"internal error: {exc!r}")
        finally:
            self.live.limit_time(None)
        await leg.hangup()

    def _fallback(self) -> WebhookTarget | None:
        request = self.request
        if not request.fallback_url:
            return None
        return WebhookTarget(request.fallback_url, request.fallback_method)

    async def _first_document(self, documents: CallDocuments) -> Document:
        """The document the answered call runs: a redirect the API sent while the call was
        queued or ringing (``POST Calls/{CA}`` with ``Url`` or ``Twiml``), else its own."""
        redirect = self.live.take_redirect()
        if redirect is not None:
            if redirect.document is not None:
                return redirect.document
            if redirect.url:
                if redirect.fallback_url:
                    fallback = WebhookTarget(redirect.fallback_url, redirect.fallback_method)
                    documents = CallDocuments(self.state, self.wiring, fallback)
                return await documents.fetch(redirect.url, redirect.method, {})
        request = self.request
        if request.twiml is not None:
            return twiml_document(request.twiml)
        url, method = request.url, request.method
        if request.application_sid:
            app = await self.wiring.services.directory.application(request.application_sid)
            url, method = app.voice_url, app.voice_method
        if not url:
            raise SipError("the call has no document (Url, Twiml or ApplicationSid)")
        return await documents.fetch(url, method, {})

    def _rcml_failed(self, exc: RcmlError) -> None:
        self.state.outcome = "rcml-error"
        self.state.error_code = exc.error_code
        for failure in webhook_failures(exc) or (exc,):
            self.wiring.notify(self.state, failure.error_code, str(failure), failure.url)

    async def _stopped(self) -> None:
        """The task was cancelled: the far end hung up (nothing left to do), or the supervisor
        stopped it (``live.stop_cause``)."""
        leg = self.leg
        if self.chain is not None:
            self.chain.stop()  # no further trunk
        if self.live.remote_ended:
            assert leg is not None and leg.dialing.call is not None
            self.state.end_cause = leg.dialing.call.ended.result()
            return
        cause = self.live.stop_cause or "drain"
        self.state.end_cause = cause
        if leg is None or leg.dialing.call is None:
            if not self.dialled and cause in CANCELS:  # still queued: never dialled
                self.state.final_status = "canceled"
            return  # "drain" while queued: it stays queued in the store for the next start
        call = leg.dialing.call
        if not call.answered:
            call.cancel("canceled" if cause in CANCELS else cause)
            self.state.sip_status = 487
            self.state.final_status = "canceled" if cause in CANCELS else leg_status(call, "cancel")
            return
        await call.hangup(cause)

    def _finish(self) -> None:
        """The final record and callback, the calls metric, one ``call.completed`` line."""
        end = time.time()
        state = self.state
        self.events.originate = None  # final: nothing left to dial after a restart
        if state.answer_time is not None:
            state.final_status = "completed"
        if state.final_status == "canceled" and not self.dialled:
            state.sip_status = None
        status = self.events.finish(end)
        assert self.events.final_commit is not None
        self.live.closing(self.events.final_commit)  # Status=completed waits for it
        metrics.CALLS_TOTAL.labels(state.outcome or status, "outbound-api").inc()
        log.info(
            "call.completed",
            outcome=state.outcome or status,
            call_status=status,
            direction=OUTBOUND_API,
            to=self.request.to,
            sip_status=state.sip_status,
            end_cause=state.end_cause,
            duration=round(end - state.start_time, 3),
            used_fallback=state.fetches.used_fallback,
        )
