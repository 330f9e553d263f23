"""A transferred call: RCML running on an answered ``<Dial>`` leg (REFER from the caller).

When the caller of a bridge sends REFER (SPEC §5) the transferee is the dialed party, whose leg
is an :class:`~rcmlrouter.sip.outgoing.OutgoingCall`. :func:`hand_over` takes that leg out of its
bridge and runs the refer document on it in a task of its own, through :class:`OutboundCallLeg`
(the executor's ``CallLeg`` for an answered outbound leg); the caller is then hung up.

Decisions (Twilio-like):

- The surviving call keeps its own CallSid (the leg's, ``Direction`` ``outbound-dial``,
  ``ParentCallSid`` the caller). The original call's record and the number's status callbacks
  end with ``completed`` when the caller is hung up (they carry the transfer parameters); the
  leg's per-noun status callbacks go on and its ``completed`` comes when the transferred call ends.
- The refer URL is fetched with the original call's parameters (``OutboundCallSid`` is the
  transferee's CallSid); later documents of the transferred call (``action``, ``<Redirect>``)
  get the leg's parameters plus ``ReferTarget``, ``Transferor``, ``Transferee``, signed with the
  number's auth token, without fallback.
- ``answer`` is a no-op (the leg is answered), ``reject`` does not apply (ignored), ``hangup``
  sends BYE, ``<Pause>`` waits, ``<Dial>`` bridges the leg onward (its SDP is the offer; the new
  party's answer reaches it in a re-INVITE). A ``<Dial>``'s legs stay children of the original
  call (``ParentCallSid``). rcmlrouter has no media on a bridged leg: ``<Say>``/``<Play>`` are
  skipped with notification 12200, ``<Gather>`` hears no digits, ``<Record>`` ends the document.
- The transferee hanging up stops the document; a BYE ends the call when the document ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import structlog

from rcmlrouter.calls.bridge import Bridge
from rcmlrouter.calls.context import CallContext
from rcmlrouter.calls.outbound_leg import OutboundLeg
from rcmlrouter.dates import rfc2822
from rcmlrouter.errors import MediaError, RcmlError
from rcmlrouter.rcml.execute import RcmlExecutor
from rcmlrouter.rcml.fetch import WebhookTarget
from rcmlrouter.rcml.model import Dial, Document, GatherChild, Record
from rcmlrouter.rcml.ports import DialOutcome, RecordingOutcome, SmsChannel, SmsOrigin
from rcmlrouter.sip.call import IncomingRequest
from rcmlrouter.sip.outgoing import OutgoingCall
from rcmlrouter.store.base import Notification, new_sid

log = structlog.get_logger(__name__)

NOT_ON_THIS_LEG = 12200  # notification: a media verb on a leg without media of ours
REMOTE_ENDS = frozenset({"remote-bye", "transport-error"})
_RUNNING: set[asyncio.Task[None]] = set()  # transferred calls, for :func:`drain`


class OutboundCallLeg:
    """The executor's ``CallLeg`` (and the bridge's caller side) on an answered outbound leg."""

    rejected = False

    def __init__(self, leg: OutboundLeg, ctx: CallContext, params: Mapping[str, str]) -> None:
        assert leg.call is not None
        self.leg = leg
        self.call: OutgoingCall = leg.call
        self.ctx = ctx  # the original call's (a <Dial>'s legs are its children)
        self.transfer_params = dict(params)
        self.bridge: Bridge | None = None
        self.call.on_in_dialog_request(self._in_dialog)
        self.call.on_reinvite(self._reinvite)

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
        self.bridge = Bridge(self, verb)
        try:
            return await self.bridge.run()
        finally:
            self.bridge = None

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

    # -- in-dialog requests ------------------------------------------------------------------

    def _in_dialog(self, request: IncomingRequest) -> None:
        from rcmlrouter.calls.transfer import route_in_dialog  # transfer imports this module

        route_in_dialog(request, self.ctx, self.bridge, from_callee=False)

    def _reinvite(self, request: IncomingRequest) -> None:
        """Outside a bridge the offer we sent stays the answer (no media of ours)."""
        sdp = self.call.local_sdp or b""
        request.respond(200, body=sdp, content_type="application/sdp")

    # -- documents and notifications ---------------------------------------------------------

    async def fetch(self, url: str, method: str, extra: Mapping[str, str]) -> Document:
        """The executor's ``DocumentSource``: the leg's parameters plus the transfer's."""
        params = self.leg.callback_params()
        params["CallStatus"] = "completed" if self.call.ended.done() else "in-progress"
        params["Timestamp"] = rfc2822(time.time())
        params.update(self.transfer_params)
        params.update(extra)
        fetcher = self.ctx.services.fetcher
        outcome = await fetcher.fetch_with_fallback(
            WebhookTarget(url, method), None, params, self.ctx.auth_token
        )
        return outcome.document

    def notify(self, error_code: int, message: str) -> None:
        self.ctx.services.notifications.add(
            Notification(
                sid=new_sid("NO"),
                account_sid=self.ctx.account_sid,
                call_sid=self.leg.sid,
                error_code=error_code,
                level="error",
                message=message[:1000],
                request_url=None,
                date_created=time.time(),
            )
        )
        log.info("call.notification", error_code=error_code, message=message[:200])


def hand_over(
    leg: OutboundLeg, ctx: CallContext, document: Document, params: Mapping[str, str]
) -> None:
    """Run ``document`` on ``leg`` (taken out of its bridge by the caller) in a task of its own."""
    call_leg = OutboundCallLeg(leg, ctx, params)
    task = asyncio.get_running_loop().create_task(_run(call_leg, document))
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)


async def drain(grace: float) -> None:
    """Wait up to ``grace`` for transferred calls to end, then hang up the rest."""
    if _RUNNING:
        await asyncio.wait(list(_RUNNING), timeout=grace)
    for task in list(_RUNNING):
        task.cancel()
    if _RUNNING:
        await asyncio.wait(list(_RUNNING), timeout=5)


async def _run(call_leg: OutboundCallLeg, document: Document) -> None:
    """The transferred call's task: cancelled when the transferee hangs up."""
    structlog.contextvars.bind_contextvars(call_sid=call_leg.leg.sid)
    task = asyncio.current_task()
    assert task is not None
    running = True

    def on_end(ended: asyncio.Future[str]) -> None:
        if running and not ended.cancelled() and ended.result() in REMOTE_ENDS:
            task.cancel()

    call_leg.call.ended.add_done_callback(on_end)
    ctx = call_leg.ctx
    origin = SmsOrigin(ctx.account_sid, call_leg.leg.to, ctx.dialed, "outbound-call")
    sms = SmsChannel(ctx.services.sms, origin)
    executor = RcmlExecutor(call_leg, call_leg, call_leg.notify, sms)
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
        running = False
        call_leg.leg.finish()
        log.info("call.transferred_completed", call_status=call_leg.leg.status)
