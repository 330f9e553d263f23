"""The SIP side of a call as the RCML executor sees it (the ``CallLeg`` protocol)."""

from __future__ import annotations

import asyncio
import time

from rcmlrouter.calls.bridge import Bridge
from rcmlrouter.calls.context import CallContext
from rcmlrouter.calls.media_leg import CallMedia
from rcmlrouter.calls.transfer import route_in_dialog
from rcmlrouter.rcml.model import Dial, GatherChild, Record
from rcmlrouter.rcml.ports import DialOutcome, RecordingOutcome
from rcmlrouter.services import Services
from rcmlrouter.sip.endpoint import IncomingCall, IncomingRequest


class SipCallLeg:
    """Answers, rejects and hangs up one inbound call; emits the matching status callbacks."""

    def __init__(self, call: IncomingCall, ctx: CallContext, services: Services) -> None:
        self.call = call
        self.ctx = ctx
        self.services = services
        self.rejected = False
        self.media = CallMedia(call, ctx, services)
        self.bridge: Bridge | None = None  # the running <Dial>
        call.on_in_dialog_request(self._in_dialog)

    @property
    def answered(self) -> bool:
        return self.ctx.answer_time is not None

    def ring(self) -> asyncio.Future[None]:
        """180 Ringing; the ringing record and RINGING callback, durable when the future is."""
        self.call.ring()
        self.ctx.sip_status = 180
        return self.ctx.checkpoint("ringing")

    async def answer(self) -> None:
        sdp = await self.media.local_sdp()  # late offer: ours; the answer comes in the ACK
        if await self.call.answer(sdp):
            self.media.on_answered()
            self.ctx.answer_time = time.time()
            self.ctx.sip_status = 200
            self.ctx.checkpoint("in-progress")
        else:  # no ACK: the endpoint hangs up and ends the call; wait to be cancelled
            await self.call.ended

    async def answer_bridged(self, sdp: bytes) -> bool:
        """Answer with the callee's SDP (a ``<Dial>`` bridge: no media of our own)."""
        if not await self.call.answer(sdp):
            return False
        self.ctx.answer_time = time.time()
        self.ctx.sip_status = 200
        self.ctx.checkpoint("in-progress")
        return True

    async def dial(self, verb: Dial) -> DialOutcome:
        self.bridge = Bridge(self, verb)
        self.media.suspend()
        try:
            return await self.bridge.run()
        finally:
            self.bridge = None
            await self.media.resume()

    def _in_dialog(self, request: IncomingRequest) -> None:
        method = request.request.method
        if method == "INFO" and self.bridge is None and self.media.on_info(request):
            return  # a key press for <Gather> / <Record>
        route_in_dialog(request, self.ctx, self.bridge, from_callee=False)

    def reject(self, status: int, reason: str, retry_after: int | None = None) -> None:
        if self.rejected or self.call.ended.done():
            return
        self.rejected = True
        self.ctx.sip_status = status
        headers = [("Retry-After", str(retry_after))] if retry_after is not None else None
        self.call.reject(status, headers=headers, reason_header=reason)

    async def hangup(self) -> None:
        await self.call.hangup()

    async def pause(self, seconds: float) -> None:
        await self.media.pause(seconds)

    async def play(self, verb: GatherChild, *, interruptible: bool = False) -> str | None:
        return await self.media.play(verb, interruptible=interruptible)

    async def collect_digits(
        self, num_digits: int, finish_on_key: str, digit_timeout: float
    ) -> str:
        return await self.media.collect_digits(num_digits, finish_on_key, digit_timeout)

    async def send_digits(self, digits: str) -> None:
        await self.media.send_digits(digits)

    async def record(self, verb: Record) -> RecordingOutcome:
        return await self.media.record(verb)

    async def fail(self, status: int, reason: str, retry_after: int | None = None) -> None:
        """End the call after an error: reject it if unanswered, else hang up."""
        if self.answered:
            await self.hangup()
        else:
            self.reject(status, reason, retry_after)

    async def hangup_or_reject(self) -> None:
        await self.fail(503, "the server is shutting down")

    def release(self) -> None:
        self.media.close()
