"""A transferred call: RCML running on an answered ``<Dial>`` leg (REFER from the caller).

When the caller of a bridge sends REFER (SPEC §5) the transferee is the dialed party, whose leg
is an :class:`~rcmlrouter.sip.outgoing.OutgoingCall`. The transfer hands that leg, with its
in-dialog owner, to the supervisor, which runs the refer document on it in a task of its own
(:func:`run_transferred_call`) through :class:`TransferredLeg` (the executor's ``CallLeg`` for an
answered outbound leg); the caller is then hung up.

Decisions (Twilio-like):

- The surviving call keeps its own CallSid (the leg's, ``Direction`` ``outbound-dial``,
  ``ParentCallSid`` the caller) and its own :class:`~rcmlrouter.calls.call_state.CallState`
  (``CallState.transferred``): its ``<Dial>`` never touches the original call's
  ``OutboundCallSid`` or transfer parameters, which the original's final callback carries.
  The original call's record and the number's status callbacks end with ``completed`` when
  the caller is hung up (they carry the transfer parameters); the leg's per-noun status
  callbacks go on and its ``completed`` comes when the transferred call ends.
- The refer URL is fetched with the original call's parameters (``OutboundCallSid`` is the
  transferee's CallSid); later documents of the transferred call (``action``, ``<Redirect>``)
  get the leg's parameters plus ``ReferTarget``, ``Transferor``, ``Transferee``, signed with the
  number's auth token, without fallback (``calls/documents.py``, ``LegDocuments``).
- ``answer`` is a no-op (the leg is answered), ``reject`` does not apply (ignored), ``hangup``
  sends BYE, ``<Pause>`` waits, ``<Dial>`` bridges the leg onward (its SDP is the offer; the new
  party's answer reaches it in a re-INVITE). A ``<Dial>``'s legs stay children of the original
  call (``ParentCallSid``). rcmlrouter has no media on a bridged leg: ``<Say>``/``<Play>`` are
  skipped with notification 12200, ``<Gather>`` hears no digits, ``<Record>`` ends the document.
- The transferee hanging up stops the document; a BYE ends the call when the document ends.
"""

from __future__ import annotations

import asyncio

import structlog

from rcmlrouter.calls.bridge import Bridge
from rcmlrouter.calls.call_events import notify_call
from rcmlrouter.calls.documents import LegDocuments
from rcmlrouter.calls.live_call import LiveCall
from rcmlrouter.calls.wiring import CallWiring, Handover
from rcmlrouter.errors import MediaError, RcmlError
from rcmlrouter.rcml.execute import RcmlExecutor
from rcmlrouter.rcml.model import Dial, Document, GatherChild, Record
from rcmlrouter.rcml.ports import DialOutcome, RecordingOutcome, SmsChannel, SmsOrigin
from rcmlrouter.sip.call import IncomingRequest
from rcmlrouter.sip.outgoing import OutgoingCall

log = structlog.get_logger(__name__)

NOT_ON_THIS_LEG = 12200  # notification: a media verb on a leg without media of ours


class TransferredLeg:
    """The executor's ``CallLeg`` (and the bridge's caller side) on an answered outbound leg.

    Built when the leg is handed over: it takes the leg's in-dialog requests (out of the bridge
    it was the callee of) and answers its re-INVITEs with the SDP it has."""

    rejected = False

    def __init__(self, handover: Handover, wiring: CallWiring) -> None:
        leg = handover.leg
        assert leg.call is not None
        self.leg = leg
        self.call: OutgoingCall = leg.call
        self.state = handover.state.transferred(handover.params)  # its own, from the original
        self.wiring = wiring
        self.documents = LegDocuments(leg, self.state, wiring, handover.params)
        self.in_dialog = handover.in_dialog
        self.in_dialog.hand_to(self.state)
        self.in_dialog.own_reinvites(self._reinvite)

    @property
    def answered(self) -> bool:
        return True

    async def answer(self) -> None:
        return None

    async def answer_bridged(self, sdp: bytes) -> bool:
        return True  # answered already; the bridge re-INVITEs it with the new party's SDP

    def reject(self, status: int, reason: str) -> None:
        return None

    async def hangup(self) -> None:
        await self.call.hangup()

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def dial(self, verb: Dial) -> DialOutcome:
        if verb.conference is not None:
            self.notify(NOT_ON_THIS_LEG, "<Conference> on a transferred call (no media of ours)")
            return DialOutcome("failed", False, {"DialCallStatus": "failed"})
        return await Bridge(self, verb).run()

    async def play(self, verb: GatherChild, *, interruptible: bool = False) -> str | None:
        raise MediaError(f"<{type(verb).__name__}> on a transferred call", NOT_ON_THIS_LEG)

    async def collect_digits(
        self, num_digits: int, finish_on_key: str, digit_timeout: float
    ) -> str:
        self.notify(NOT_ON_THIS_LEG, "<Gather> on a transferred call hears no digits")
        return ""

    async def send_digits(self, digits: str) -> None:
        self.notify(NOT_ON_THIS_LEG, "<Play digits> on a transferred call is not sent")

    async def record(self, verb: Record) -> RecordingOutcome:
        self.notify(NOT_ON_THIS_LEG, "<Record> on a transferred call; the document ends")
        return RecordingOutcome(caller_hung_up=True)

    def _reinvite(self, request: IncomingRequest) -> None:
        """Outside a bridge the offer we sent stays the answer (no media of ours)."""
        sdp = self.call.local_sdp or b""
        request.respond(200, body=sdp, content_type="application/sdp")

    def notify(self, error_code: int, message: str) -> None:
        """A notification about the transferred call (its own CallSid)."""
        notifications = self.wiring.services.notifications
        notify_call(notifications, self.state.account_sid, self.leg.sid, error_code, message)


async def run_transferred_call(
    call_leg: TransferredLeg, document: Document, live: LiveCall
) -> None:
    """The transferred call's task: cancelled when the transferee hangs up, or stopped by the
    supervisor (drain: then it is hung up)."""
    structlog.contextvars.bind_contextvars(call_sid=call_leg.leg.sid)
    live.watch(call_leg.call.ended)
    state = call_leg.state
    origin = SmsOrigin(state.account_sid, call_leg.leg.to, state.facts.dialed, "outbound-call")
    sms = SmsChannel(call_leg.wiring.services.sms, origin)
    executor = RcmlExecutor(call_leg, call_leg.documents, call_leg.notify, sms)
    try:
        await executor.run(document)
    except asyncio.CancelledError:
        if not call_leg.call.ended.done():  # the daemon is draining
            await call_leg.hangup()
    except RcmlError as exc:
        call_leg.notify(exc.error_code, f"transferred call: {exc}")
        await call_leg.hangup()
    except Exception as exc:
        log.exception("call.transfer_error", error=repr(exc))
        call_leg.notify(11100, f"internal error: {exc!r}")
        await call_leg.hangup()
    finally:
        live.settle()
        call_leg.in_dialog.close()
        final = call_leg.leg.finish()
        if final is not None:
            live.closing(final)  # a hang-up through the API answers once it is durable
        log.info("call.transferred_completed", call_status=call_leg.leg.status)
