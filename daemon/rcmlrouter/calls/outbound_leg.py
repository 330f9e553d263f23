"""The called party's side of an API call (``POST Calls``), as the RCML executor sees it.

An API call is an INVITE we send (an :class:`~rcmlrouter.sip.outgoing.OutgoingCall`) that,
once answered, runs its document as an inbound call does, with our media (``<Say>``,
``<Play>``, ``<Gather>``, ``<Record>``), ``<Dial>`` bridges and in-dialog requests.

:class:`~rcmlrouter.calls.in_dialog.DialingCall` is the SIP call under the media and the
in-dialog router from before the INVITE exists: our SDP offer has to be in the INVITE, so the
call's media binds its port and builds the offer first, then the ``OutgoingCall`` is attached
and everything forwards to it (the callee's answer is its ``remote_sdp``).
:class:`OutboundLeg` is the executor's ``CallLeg`` (and a bridge's caller side) over it,
answered from the start.
"""

from __future__ import annotations

from rcmlrouter.calls.bridge import Bridge
from rcmlrouter.calls.call_media import CallMedia
from rcmlrouter.calls.call_state import CallState
from rcmlrouter.calls.conference_call import join_conference
from rcmlrouter.calls.in_dialog import DialingCall, InDialog
from rcmlrouter.calls.wiring import CallWiring
from rcmlrouter.rcml.model import Dial, GatherChild, Record
from rcmlrouter.rcml.ports import DialOutcome, RecordingOutcome
from rcmlrouter.sip.outgoing import OutgoingCall


class OutboundLeg:
    """The executor's ``CallLeg`` on an answered API call (``answer`` and ``reject`` do not
    apply any more: it is answered); ``<Dial>`` bridges it onward, re-INVITEing it with the
    new party's SDP, and our media comes back after the bridge."""

    rejected = False

    def __init__(self, state: CallState, wiring: CallWiring) -> None:
        self.state = state
        self.wiring = wiring
        self.dialing = DialingCall()
        self.in_dialog = InDialog(self.dialing, state)
        self.media = CallMedia(self.dialing, self.in_dialog, state, wiring)
        self.in_dialog.own_digits(self.media)

    @property
    def call(self) -> OutgoingCall:
        """The INVITE (a bridge's caller side); only once dialled."""
        assert self.dialing.call is not None
        return self.dialing.call

    @property
    def answered(self) -> bool:
        return self.state.answer_time is not None

    async def answer(self) -> None:
        return None

    async def answer_bridged(self, sdp: bytes) -> bool:
        return True  # answered already: the bridge re-INVITEs it with the other party's SDP

    def reject(self, status: int, reason: str) -> None:
        return None

    async def hangup(self) -> None:
        if self.dialing.call is not None:
            await self.dialing.call.hangup()

    async def dial(self, verb: Dial) -> DialOutcome:
        if verb.conference is not None:  # on our own media: no bridge
            return await join_conference(self, verb)
        self.media.suspend()
        try:
            return await Bridge(self, verb).run()
        finally:
            await self.media.resume()

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

    def release(self) -> None:
        """The run is over: close the media, let go of the in-dialog owners."""
        self.dialing.end("released")
        self.media.close()
        self.in_dialog.close()
