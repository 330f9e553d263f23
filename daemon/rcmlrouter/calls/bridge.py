"""``<Dial>``: ring every noun in parallel and bridge the caller to the first that answers.

A back-to-back user agent without media of its own: the caller's SDP offer goes out on every
INVITE and the winner's answer comes back to the caller, so RTP flows end to end. 180 is relayed
as 180, 183 with SDP as 183 with that SDP (early media, the first leg that sends one). The caller
is answered only when a callee answers (a caller answered earlier gets a re-INVITE with the
callee's SDP instead). The other legs are cancelled (a 2xx crossing the CANCEL is ACKed and
BYEd by the SIP core). Once connected the bridge owns both parties' re-INVITEs (relayed both
ways, answers relayed back) and their in-dialog requests (through each call's
:class:`~rcmlrouter.calls.in_dialog.InDialog`: INFO is relayed, REFER goes to
:mod:`rcmlrouter.calls.transfer`).

The bridge ends when the callee hangs up, at ``timeLimit`` (the callee gets a BYE), when a
transfer (REFER, :mod:`rcmlrouter.calls.transfer`) replaces the running RCML, or when the
caller hangs up, or the API hangs up or redirects the call: the call's task is then cancelled and
the cleanup here ends every leg and posts the ``action`` (DialCallStatus as it stands) through
the durable outbox (its document does not run). Otherwise the executor
decides what happens to the caller next (the ``action``, the next verb, or a BYE).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import structlog

from rcmlrouter.calls.call_events import post_action_after_hangup
from rcmlrouter.calls.call_state import CallState
from rcmlrouter.calls.dialed_leg import DialedLeg
from rcmlrouter.calls.in_dialog import InDialog, PeerCall
from rcmlrouter.calls.live_call import stopped_by_redirect
from rcmlrouter.calls.transfer import on_refer
from rcmlrouter.calls.wiring import CallWiring
from rcmlrouter.rcml.model import Dial, Document
from rcmlrouter.rcml.ports import DialOutcome
from rcmlrouter.sip.call import IncomingCall, IncomingRequest
from rcmlrouter.sip.message import SipResponse

log = structlog.get_logger(__name__)

RELEASE_WAIT = 5.0  # seconds the cleanup waits for cancelled legs to end (487, BYE response)


class CallerLeg(Protocol):
    """What the bridge needs from the caller's side (``InboundLeg``, ``TransferredLeg``)."""

    state: CallState
    wiring: CallWiring
    in_dialog: InDialog

    @property
    def call(self) -> PeerCall: ...

    @property
    def answered(self) -> bool: ...

    async def answer_bridged(self, sdp: bytes) -> bool: ...


class Bridge:
    """One ``<Dial>`` of one call; :meth:`run` returns how it ended."""

    def __init__(self, caller: CallerLeg, verb: Dial) -> None:
        self.caller = caller
        self.verb = verb
        self.state = caller.state
        self.wiring = caller.wiring
        self.legs: list[DialedLeg] = []
        self.winner: DialedLeg | None = None
        self.active = False  # both legs answered and connected
        self.transfer: asyncio.Future[Document] | None = None
        self.callee_dialog: InDialog | None = None  # the winner's, once connected
        self._early = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def caller_call(self) -> PeerCall:
        return self.caller.call

    async def run(self) -> DialOutcome:
        """Ring, connect, stay bridged; the caller's in-dialog requests come here meanwhile."""
        self.caller.in_dialog.join(self, from_callee=False)
        try:
            return await self._run()
        finally:
            self.caller.in_dialog.leave()

    async def _run(self) -> DialOutcome:
        stopped: str | None = None  # the call's status when the Dial was stopped from outside
        try:
            self._start_legs()
            winner = await self._ring()
            if winner is None or not await self._connect(winner):
                return self._outcome(None)
            document = await self._bridged(winner)
            return self._outcome(winner, document)
        except asyncio.CancelledError:
            stopped = self._stopped_status()
            raise
        finally:
            self.active = False
            await self._release()
            if stopped is not None:
                self._action_after_stop(stopped)

    # -- ringing -----------------------------------------------------------------------------

    def _start_legs(self) -> None:
        state, wiring = self.state, self.wiring
        services = wiring.services
        caller_id = self.verb.caller_id or state.facts.from_user
        sdp = self.caller.call.remote_sdp
        for target in self.verb.targets:
            leg = DialedLeg(target, state, caller_id, services.outbox)
            self.legs.append(leg)
            leg.start(
                wiring.dialer,
                services.config,
                self._notify,
                sdp,
                float(self.verb.timeout),
                self._on_progress,
            )
            if leg.call is not None and not state.outbound_call_sid:
                state.outbound_call_sid = leg.sid

    def _notify(self, error_code: int, message: str) -> None:
        self.wiring.notify(self.state, error_code, message)

    def _on_progress(self, response: SipResponse) -> None:
        call = self.caller.call
        if self.caller.answered or self.winner is not None or not isinstance(call, IncomingCall):
            return
        if response.status == 183 and response.body and not self._early:
            self._early = True
            call.progress(183, response.body)
        elif response.status == 180 and not self._early:
            call.ring()

    async def _ring(self) -> DialedLeg | None:
        """Wait for the first answer (the others are cancelled) or for every leg to fail."""
        pending: dict[asyncio.Future[Any], DialedLeg] = {
            leg.settled: leg for leg in self.legs if leg.settled is not None
        }
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                leg = pending.pop(future)
                if leg.call is not None and leg.call.answered and self.winner is None:
                    self.winner = leg
            if self.winner is not None:
                for leg in pending.values():
                    leg.cancel("answered elsewhere")
                return self.winner
        return None

    async def _connect(self, winner: DialedLeg) -> bool:
        """Give the caller the callee's SDP: answer it, or re-INVITE it if it was answered."""
        assert winner.call is not None
        winner.on_answered()
        self.state.outbound_call_sid = winner.sid
        sdp = winner.call.remote_sdp or b""
        if not self.caller.answered:
            if not await self.caller.answer_bridged(sdp):
                return False
        else:
            response = await self.caller.call.send_in_dialog("INVITE", [], sdp)
            if response is None or response.status >= 300:
                log.warning("dial.reinvite_refused", status=response and response.status)
        return not winner.call.ended.done()

    # -- bridged -----------------------------------------------------------------------------

    async def _bridged(self, winner: DialedLeg) -> Document | None:
        callee = winner.call
        assert callee is not None
        caller = self.caller.call
        self.caller.in_dialog.own_reinvites(self._relay_reinvite(caller, callee))
        self.callee_dialog = InDialog(callee, self.state)
        self.callee_dialog.own_reinvites(self._relay_reinvite(callee, caller))
        self.callee_dialog.join(self, from_callee=True)
        self.transfer = asyncio.get_running_loop().create_future()
        self.active = True
        waiters: list[asyncio.Future[Any]] = [callee.ended, self.transfer]
        done, _ = await asyncio.wait(
            waiters, timeout=float(self.verb.time_limit), return_when=asyncio.FIRST_COMPLETED
        )
        self.active = False
        if self.transfer in done and not self.transfer.cancelled():
            return self.transfer.result()
        if not done:  # timeLimit
            await callee.hangup("time limit")
        return None

    def _relay_reinvite(self, own: PeerCall, other: PeerCall) -> Callable[[IncomingRequest], None]:
        def on_reinvite(request: IncomingRequest) -> None:
            self.spawn(self._relay(request, own, other))

        return on_reinvite

    async def _relay(self, request: IncomingRequest, own: PeerCall, other: PeerCall) -> None:
        """Send the offer to the other side; its answer (or refusal) answers this one."""
        if not self.active or other.ended.done():
            request.respond(200, body=own.local_sdp or b"", content_type="application/sdp")
            return
        response = await other.send_in_dialog("INVITE", [], request.request.body)
        if response is None:
            request.respond(408, headers=[("Reason", 'SIP;cause=408;text="no answer"')])
        elif response.status < 300 and response.body:
            own.local_sdp = response.body
            request.respond(200, body=response.body, content_type="application/sdp")
        else:
            request.respond(response.status if response.status >= 300 else 488)

    def refer(self, request: IncomingRequest, from_callee: bool) -> None:
        """A REFER from either party: a transfer, if both are connected."""
        on_refer(request, self, from_callee=from_callee)

    def relay_info(self, request: IncomingRequest, from_callee: bool) -> None:
        """SIP INFO (DTMF) from one side goes to the other; answered 200 at once."""
        request.respond(200)
        winner = self.winner
        if not self.active or winner is None or winner.call is None:
            return
        other: PeerCall = self.caller.call if from_callee else winner.call
        headers = [(n, v) for n, v in request.request.headers if n.lower() == "content-type"]
        other.send_in_dialog("INFO", headers, request.request.body)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the end -----------------------------------------------------------------------------

    async def _release(self) -> None:
        """End every leg still up (CANCEL or BYE) and close their records. Runs even when the
        call's task is being cancelled (the caller hung up)."""
        for task in list(self._tasks):
            task.cancel()
        if self.transfer is not None and not self.transfer.done():
            self.transfer.cancel()
        for leg in self.legs:
            leg.stop_failover()
        calls = [leg.call for leg in self.legs if leg.call is not None]
        hangups = [asyncio.ensure_future(call.hangup()) for call in calls if not call.ended.done()]
        if hangups:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait(hangups, timeout=RELEASE_WAIT)
        for leg in self.legs:
            leg.finish()
        if self.callee_dialog is not None and self.winner in self.legs:  # not handed over
            self.callee_dialog.close()

    def _stopped_status(self) -> str:
        """The call's ``CallStatus`` once its task was cancelled during the Dial: the caller hung
        up, the API hung up (``Status=completed``) or the node drains — the call is ending; or
        the API redirected it — the call goes on with the new document."""
        answered = self.state.answer_time is not None
        if stopped_by_redirect() and not self.caller.call.ended.done():
            return "in-progress" if answered else "ringing"
        return "completed" if answered else "canceled"

    def _action_after_stop(self, status: str) -> None:
        """The Dial was stopped from outside (:meth:`_stopped_status`): the ``action`` still
        gets the outcome, as Twilio requests it when the caller hangs up or the call is modified
        (its document does not run: the call ended, or runs the API's), through the durable
        outbox in the call's order. Inbound and API-originated calls (a transferred call's Dial
        has no such post)."""
        verb, state = self.verb, self.state
        if verb.action is None:
            return
        if not isinstance(self.caller.call, IncomingCall) and state.direction != "outbound-api":
            return
        outcome = self._outcome(self.winner)
        post_action_after_hangup(
            self.wiring.services.outbox,
            state,
            state.call_sid,
            status,
            (verb.action, verb.method),
            outcome.params,
        )
        log.info(
            "dial.action_after_stop",
            call_status=status,
            dial_call_status=outcome.params["DialCallStatus"],
        )

    def _outcome(self, winner: DialedLeg | None, document: Document | None = None) -> DialOutcome:
        for leg in self.legs:
            if leg.call is None or leg.call.ended.done():
                leg.finish()
        status = self._dial_status(winner)
        reported = winner or self._reported_leg()
        params = {"DialCallStatus": status, "DialCallDuration": "0", "DialRingDuration": "0"}
        if reported is not None:
            params.update(_leg_params(reported))
        return DialOutcome(status, winner is not None, params, document)

    def _dial_status(self, winner: DialedLeg | None) -> str:
        if winner is not None:
            return "completed"
        if self.caller.call.ended.done():
            return "canceled"
        statuses = {leg.status for leg in self.legs}
        for status in ("no-answer", "busy", "canceled"):
            if status in statuses:
                return status
        return "failed"

    def _reported_leg(self) -> DialedLeg | None:
        """The leg whose details go to the action when nobody answered: the last to end."""
        ended = [leg for leg in self.legs if leg.end_time is not None]
        return max(ended, key=lambda leg: leg.end_time or 0.0) if ended else None


def _leg_params(leg: DialedLeg) -> dict[str, str]:
    end = leg.end_time or time.time()
    rang_until = leg.answer_time or end
    params = {
        "DialCallSid": leg.sid,
        "DialCallDuration": str(leg.duration),
        # rounded: a 1 s timeout may fire a hair early on the loop's clock (0.999 s, not 0)
        "DialRingDuration": str(round(rang_until - leg.start_time)),
    }
    if leg.call is not None:
        params["DialSipCallId"] = leg.call.call_id
    if leg.sip_status is not None:
        params["DialSipResponseCode"] = str(leg.sip_status)
    response = leg.response
    if response is not None:
        for name, value in response.headers:
            if name[:2] in ("X-", "x-"):
                params[f"DialSipHeader_{name}"] = value
    return params
