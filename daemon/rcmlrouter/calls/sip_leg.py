"""The SIP side of a call as the RCML executor sees it (the ``CallLeg`` protocol)."""

from __future__ import annotations

import asyncio
import time

from rcmlrouter.calls.bridge import Bridge
from rcmlrouter.calls.context import CallContext
from rcmlrouter.calls.transfer import route_in_dialog
from rcmlrouter.errors import OverloadError
from rcmlrouter.rcml.execute import DialOutcome
from rcmlrouter.rcml.model import Dial
from rcmlrouter.services import Services
from rcmlrouter.sip.endpoint import IncomingCall, IncomingRequest
from rcmlrouter.sip.sdp import build_answer, build_offer, parse_offer


class SipCallLeg:
    """Answers, rejects and hangs up one inbound call; emits the matching status callbacks."""

    def __init__(self, call: IncomingCall, ctx: CallContext, services: Services) -> None:
        self.call = call
        self.ctx = ctx
        self.services = services
        self.rejected = False
        self._port: int | None = None
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
        media = self.services.config.media
        try:
            self._port = self.services.ports.acquire()
        except LookupError as exc:
            raise OverloadError("no free RTP port") from exc
        remote = self.call.remote_sdp
        if remote:
            sdp = build_answer(parse_offer(remote), media.rtp_address, self._port).sdp
        else:  # late offer: ours goes in the 200 OK, the answer comes in the ACK
            sdp = build_offer(media.rtp_address, self._port)
        if await self.call.answer(sdp):
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
        try:
            return await self.bridge.run()
        finally:
            self.bridge = None

    def _in_dialog(self, request: IncomingRequest) -> None:
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
        await asyncio.sleep(seconds)

    async def fail(self, status: int, reason: str, retry_after: int | None = None) -> None:
        """End the call after an error: reject it if unanswered, else hang up."""
        if self.answered:
            await self.hangup()
        else:
            self.reject(status, reason, retry_after)

    async def hangup_or_reject(self) -> None:
        await self.fail(503, "the server is shutting down")

    def release(self) -> None:
        if self._port is not None:
            self.services.ports.release(self._port)
            self._port = None
