"""What a call leg with media of ours does the same way on either side of a call.

:class:`LegWithMedia` is the base of :class:`~rcmlrouter.calls.inbound_leg.InboundLeg` (the
caller of an inbound call) and :class:`~rcmlrouter.calls.outbound_leg.OutboundLeg` (the called
party of an API call). Over the leg's SIP call it builds the call's
:class:`~rcmlrouter.calls.in_dialog.InDialog` and :class:`~rcmlrouter.calls.call_media.CallMedia`,
hands the media verbs (``<Pause>``, ``<Say>`` / ``<Play>``, ``<Gather>``'s digits, ``<Play
digits>``, ``<Record>``) to that media, and runs ``<Dial>``: into a conference on our media, or
through a :class:`~rcmlrouter.calls.bridge.Bridge` with our media on hold. Each leg adds what
differs: which SIP call it is, how it answers, rejects, hangs up and is released.
"""

from __future__ import annotations

import abc
from typing import Protocol

from rcmlrouter.calls.bridge import Bridge
from rcmlrouter.calls.call_media import CallMedia, MediaCall
from rcmlrouter.calls.call_state import CallState
from rcmlrouter.calls.conference_call import join_conference
from rcmlrouter.calls.in_dialog import DialogCall, InDialog, PeerCall
from rcmlrouter.calls.wiring import CallWiring
from rcmlrouter.rcml.model import Dial, GatherChild, Record
from rcmlrouter.rcml.ports import DialOutcome, RecordingOutcome


class LegCall(DialogCall, MediaCall, Protocol):
    """The SIP call under a leg's media and in-dialog router (the caller's ``IncomingCall``, an
    API call's ``DialingCall``)."""


class LegWithMedia(abc.ABC):
    """The media verbs and ``<Dial>`` of a leg whose media is ours (see the module docstring)."""

    def __init__(self, call: LegCall, state: CallState, wiring: CallWiring) -> None:
        self.state = state
        self.wiring = wiring
        self.in_dialog = InDialog(call, state)
        self.media = CallMedia(call, self.in_dialog, state, wiring)
        self.in_dialog.own_digits(self.media)

    @property
    @abc.abstractmethod
    def call(self) -> PeerCall:
        """The leg's SIP call (a bridge's caller side)."""

    @abc.abstractmethod
    async def answer_bridged(self, sdp: bytes) -> bool:
        """Answer (or keep) the call with a ``<Dial>`` callee's SDP; False if it did not."""

    @property
    def answered(self) -> bool:
        return self.state.answer_time is not None

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
