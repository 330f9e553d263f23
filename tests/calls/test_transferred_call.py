"""transferred_call.py: a transferred call runs on its own state. Its ``<Dial>`` to a third
party once overwrote the original call's OutboundCallSid, so the caller's final callback could
name the third party instead of the transferee (test_refer.py, intermittently)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from rcmlrouter.calls.bridge import Bridge
from rcmlrouter.calls.transferred_call import TransferredLeg
from rcmlrouter.calls.wiring import CallWiring
from rcmlrouter.config import load_config
from rcmlrouter.rcml.model import Dial, DialSip
from support.call_parts import AnsweredCall, RecordingNotifications, RecordingOutbox, handover


class Dialer:
    def __init__(self) -> None:
        self.calls: list[AnsweredCall] = []

    def start_call(self, target_uri: str, **kwargs: Any) -> AnsweredCall:
        call = AnsweredCall(f"third-{len(self.calls)}")
        self.calls.append(call)
        return call


async def test_the_transferred_calls_dial_leaves_the_original_call_alone() -> None:
    outbox = RecordingOutbox()
    moved, transferee = handover(outbox)
    original = moved.state
    services: Any = SimpleNamespace(
        config=load_config(None, {}), outbox=outbox, notifications=RecordingNotifications()
    )
    dialer = Dialer()
    wiring = CallWiring(services, dialer, transferred=None)  # type: ignore[arg-type]
    leg = TransferredLeg(moved, wiring)
    assert leg.state is not original and leg.state.call_sid == original.call_sid
    bridge = Bridge(leg, Dial(targets=(DialSip("sip:third@example.net"),)))
    bridge._start_legs()
    [third] = bridge.legs
    assert await bridge._connect(third)  # the third party answers: the transferee re-INVITEd
    assert transferee.sent == ["INVITE"]
    assert leg.state.outbound_call_sid == third.sid
    assert original.outbound_call_sid == moved.leg.sid  # what the caller's final callback says
    assert third.parent.call_sid == original.call_sid  # its legs stay the original's children
    await asyncio.sleep(0)
