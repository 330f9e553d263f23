"""The called party's side of an API call (``POST Calls``), as the RCML executor sees it.

An API call is an INVITE we send (an :class:`~rcmlrouter.sip.outgoing.OutgoingCall`) that,
once answered, runs its document as an inbound call does, with our media (``<Say>``,
``<Play>``, ``<Gather>``, ``<Record>``), ``<Dial>`` bridges and in-dialog requests (as any leg
with media of ours: ``calls/media_leg.py``).

:class:`~rcmlrouter.calls.in_dialog.DialingCall` is the SIP call under the media and the
in-dialog router from before the INVITE exists: our SDP offer has to be in the INVITE, so the
call's media binds its port and builds the offer first, then the ``OutgoingCall`` is attached
and everything forwards to it (the callee's answer is its ``remote_sdp``).
:class:`OutboundLeg` is the executor's ``CallLeg`` (and a bridge's caller side) over it,
answered from the start.
"""

from __future__ import annotations

from rcmlrouter.calls.call_state import CallState
from rcmlrouter.calls.in_dialog import DialingCall
from rcmlrouter.calls.media_leg import LegWithMedia
from rcmlrouter.calls.wiring import CallWiring
from rcmlrouter.sip.outgoing import OutgoingCall


class OutboundLeg(LegWithMedia):
    """The executor's ``CallLeg`` on an answered API call (``answer`` and ``reject`` do not
    apply any more: it is answered); ``<Dial>`` bridges it onward, re-INVITEing it with the
    new party's SDP, and our media comes back after the bridge."""

    rejected = False

    def __init__(self, state: CallState, wiring: CallWiring) -> None:
        self.dialing = DialingCall()
        super().__init__(self.dialing, state, wiring)

    @property
    def call(self) -> OutgoingCall:
        """The INVITE (a bridge's caller side); only once dialled."""
        assert self.dialing.call is not None
        return self.dialing.call

    async def answer(self) -> None:
        return None

    async def answer_bridged(self, sdp: bytes) -> bool:
        return True  # answered already: the bridge re-INVITEs it with the other party's SDP

    def reject(self, status: int, reason: str) -> None:
        return None

    async def hangup(self) -> None:
        if self.dialing.call is not None:
            await self.dialing.call.hangup()

    def release(self) -> None:
        """The run is over: close the media, let go of the in-dialog owners."""
        self.dialing.end("released")
        self.media.close()
        self.in_dialog.close()
