"""live_control.py: an update applied to a LiveCall of this process (Twilio's semantics), with a
real LiveCall and task and a stand-in for the supervisor's registry."""

from __future__ import annotations

import asyncio
from typing import Any

from rcmlrouter.call_updates import APPLIED, ENDED, IGNORED, UNSUPPORTED, CallUpdate
from rcmlrouter.calls.live_call import LiveCall
from rcmlrouter.calls.live_control import LocalCallControl


class Registry:
    def __init__(self, *calls: LiveCall) -> None:
        self.calls = {live.call_sid: live for live in calls}

    def live_call(self, sid: str) -> LiveCall | None:
        return self.calls.get(sid)


class Callbacks:
    def __init__(self) -> None:
        self.moved: list[tuple[str, str]] = []

    def switch_callbacks(self, url: str, method: str) -> asyncio.Future[None]:
        self.moved.append((url, method))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def running(status: str) -> tuple[LiveCall, Callbacks]:
    live = LiveCall("CA1", inbound=True, status=status)
    live.task = asyncio.ensure_future(asyncio.sleep(30))
    callbacks = Callbacks()
    live.callbacks = callbacks
    return live, callbacks


def control(live: LiveCall) -> LocalCallControl:
    registry: Any = Registry(live)
    return LocalCallControl(registry)


async def test_canceled_stops_a_ringing_call_and_leaves_an_answered_one() -> None:
    ringing, _ = running("ringing")
    result = await control(ringing).apply("CA1", CallUpdate(status="canceled"))
    assert result.outcome == APPLIED and ringing.stop_cause == "canceled"
    assert ringing.task is not None and ringing.task.cancelled()
    answered, callbacks = running("in-progress")
    local = control(answered)
    assert (await local.apply("CA1", CallUpdate(status="canceled"))).outcome == IGNORED
    moved = CallUpdate(status="canceled", url="http://x/next", status_callback="http://x/cb")
    assert (await local.apply("CA1", moved)).outcome == APPLIED  # the rest still applies
    assert answered.stop_cause is None and callbacks.moved == [("http://x/cb", "POST")]
    assert answered.take_redirect() is not None
    assert answered.task is not None
    answered.task.cancel()


async def test_completed_waits_for_the_end_and_a_stopped_call_is_ended() -> None:
    live, callbacks = running("in-progress")
    local = control(live)
    update = CallUpdate(
        status="completed", status_callback="http://x/cb", status_callback_method="GET"
    )
    assert (await local.apply("CA1", update)).outcome == APPLIED
    assert callbacks.moved == [("http://x/cb", "GET")]  # before the end: the final event goes there
    assert live.stop_cause == "api-hangup" and live.task is not None and live.task.done()
    assert (await local.apply("CA1", CallUpdate(url="http://x/y"))).outcome == ENDED
    assert (await local.apply("CA2", CallUpdate(url="http://x/y"))).outcome == ENDED


async def test_twiml_becomes_a_document_and_callbacks_need_a_switch() -> None:
    live, _ = running("in-progress")
    live.callbacks = None
    local = control(live)
    update = CallUpdate(twiml="<Response><Hangup/></Response>")
    assert (await local.apply("CA1", update)).outcome == APPLIED
    target = live.take_redirect()
    assert target is not None and target.document is not None and target.url is None
    moved = await local.apply("CA1", CallUpdate(status_callback="http://x/cb"))
    assert moved.outcome == UNSUPPORTED
    assert live.task is not None
    live.task.cancel()
