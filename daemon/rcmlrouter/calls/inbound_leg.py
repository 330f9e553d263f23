"""The caller's side of an inbound call, as the RCML executor sees it (its ``CallLeg`` port).

:class:`InboundLeg` rings, answers (with our media, or with a callee's SDP for a ``<Dial>``
bridge), rejects and hangs up the caller's ``IncomingCall``, and checkpoints the call's record
with its status callback at each step (``calls/call_events.py``). The media verbs go to the
call's :class:`~rcmlrouter.calls.call_media.CallMedia`; ``<Dial>`` to a
:class:`~rcmlrouter.calls.bridge.Bridge`, during which our media is on hold (both as any leg
with media of ours: ``calls/media_leg.py``). The call's in-dialog requests belong to its
:class:`~rcmlrouter.calls.in_dialog.InDialog`.
"""

from __future__ import annotations

import asyncio
import time

from rcmlrouter.calls.call_events import CallEvents
from rcmlrouter.calls.call_state import CallState
from rcmlrouter.calls.call_streams import CallStreams
from rcmlrouter.calls.media_leg import LegWithMedia
from rcmlrouter.calls.wiring import CallWiring
from rcmlrouter.sip.call import IncomingCall


class InboundLeg(LegWithMedia):
    """Answers, rejects and hangs up one inbound call; emits the matching status callbacks."""

    def __init__(
        self, call: IncomingCall, state: CallState, events: CallEvents, wiring: CallWiring
    ) -> None:
        super().__init__(call, state, wiring)
        self._call = call
        self.events = events
        self.rejected = False
        self._answering: asyncio.Future[None] | None = None
        self.streams = CallStreams(self.media, state, wiring)

    @property
    def call(self) -> IncomingCall:
        return self._call

    def ring(self) -> asyncio.Future[None]:
        """180 Ringing; the ringing record and RINGING callback, durable when the future is."""
        self.call.ring()
        self.state.sip_status = 180
        return self.events.checkpoint("ringing")

    async def answer(self) -> None:
        """Answer with our media. Runs to its end even when the verb that asked is stopped (a
        redirect from the API): the next verb then finds the call answered, not half so."""
        if self._answering is None:
            self._answering = asyncio.ensure_future(self._answer())
        await asyncio.shield(self._answering)

    async def _answer(self) -> None:
        sdp = await self.media.local_sdp()  # late offer: ours; the answer comes in the ACK
        if await self.call.answer(sdp):
            self.media.on_answered()
            self._answered()
        else:  # no ACK: the endpoint hangs up and ends the call; wait to be cancelled
            await self.call.ended

    async def answer_bridged(self, sdp: bytes) -> bool:
        """Answer with the callee's SDP (a ``<Dial>`` bridge: no media of our own)."""
        if not await self.call.answer(sdp):
            return False
        self._answered()
        return True

    def _answered(self) -> None:
        self.state.answer_time = time.time()
        self.state.sip_status = 200
        self.events.checkpoint("in-progress")

    def reject(self, status: int, reason: str, retry_after: int | None = None) -> None:
        if self.rejected or self.call.ended.done():
            return
        self.rejected = True
        self.state.sip_status = status
        headers = [("Retry-After", str(retry_after))] if retry_after is not None else None
        self.call.reject(status, headers=headers, reason_header=reason)

    async def hangup(self) -> None:
        await self.call.hangup()

    async def fail(self, status: int, reason: str, retry_after: int | None = None) -> None:
        """End the call after an error: reject it if unanswered, else hang up."""
        if self.answered:
            await self.hangup()
        else:
            self.reject(status, reason, retry_after)

    async def hangup_or_reject(self) -> None:
        await self.fail(503, "the server is shutting down")

    def release(self) -> None:
        """The run is over: close the media (and its streams), let go of the in-dialog owners."""
        self.streams.close()
        self.media.close()
        self.in_dialog.close()
