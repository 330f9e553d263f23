"""supervisor.py and live_call.py: admission, the registry of live calls by CallSid, a remote
end stopping a call's document, and the drain stopping every call task (transferred calls
included), with stand-ins for the SIP calls."""

from __future__ import annotations

import asyncio
import gc
from types import SimpleNamespace
from typing import Any

from rcmlrouter.calls.live_call import LiveCall
from rcmlrouter.calls.supervisor import CallSupervisor
from support.call_parts import RecordingNotifications, RecordingOutbox, handover


async def test_a_remote_end_stops_the_document_a_local_one_does_not() -> None:
    loop = asyncio.get_running_loop()
    for cause, stops in (("remote-bye", True), ("transport-error", True), ("local-bye", False)):
        live = LiveCall("CA1", inbound=True)
        ended: asyncio.Future[str] = loop.create_future()
        live.task = asyncio.ensure_future(asyncio.sleep(10))
        live.watch(ended)
        ended.set_result(cause)
        await asyncio.sleep(0)
        assert (live.remote_ended, live.task.cancelling() > 0) == (stops, stops)
        live.task.cancel()
    late = LiveCall("CA2", inbound=False)
    ended = loop.create_future()
    late.task = asyncio.ensure_future(asyncio.sleep(10))
    late.watch(ended)
    late.settle()  # the run is over: a later end cancels nothing
    ended.set_result("remote-bye")
    await asyncio.sleep(0)
    assert not late.remote_ended and late.task.cancelling() == 0
    late.interrupt("drain")
    late.interrupt("api")
    assert late.stop_cause == "drain" and late.task.cancelling() == 2


class Invite:
    def __init__(self) -> None:
        self.rejected: list[tuple[int, Any, Any]] = []

    def reject(self, status: int, *, headers: Any = None, reason_header: Any = None) -> None:
        self.rejected.append((status, headers, reason_header))


def supervisor(max_calls: int = 10) -> tuple[CallSupervisor, RecordingOutbox]:
    outbox = RecordingOutbox()
    services: Any = SimpleNamespace(
        config=SimpleNamespace(sip=SimpleNamespace(max_calls=max_calls)),
        outbox=outbox,
        notifications=RecordingNotifications(),
        sms=None,
        fetcher=None,
    )
    return CallSupervisor(services), outbox


def test_calls_over_the_limit_or_during_the_drain_get_503() -> None:
    calls, _ = supervisor(max_calls=0)
    full = Invite()
    calls.on_invite(full)  # type: ignore[arg-type]
    calls.draining = True
    draining = Invite()
    calls.on_invite(draining)  # type: ignore[arg-type]
    assert [r[0] for r in full.rejected + draining.rejected] == [503, 503]
    assert full.rejected[0][2] == "too many calls" and draining.rejected[0][2] == "draining"
    assert full.rejected[0][1][0][0] == "Retry-After" and calls.active == 0


async def test_the_drain_stops_transferred_calls_too() -> None:
    calls, outbox = supervisor()
    moved, call = handover(outbox)
    calls.run_transferred(moved)
    live = calls.live_call(moved.leg.sid)
    assert live is not None and not live.inbound and calls.active == 0
    await asyncio.sleep(0.01)
    await calls.drain(0.05)
    assert call.byes == 1 and live.stop_cause == "drain"
    assert calls.live_call(moved.leg.sid) is None
    final = outbox.commits[-1].call
    assert final is not None and final.sid == moved.leg.sid and final.status == "completed"


async def test_a_transferee_hanging_up_ends_its_call_without_a_bye() -> None:
    calls, _ = supervisor()
    moved, call = handover(RecordingOutbox())
    calls.run_transferred(moved)
    await asyncio.sleep(0.01)
    call.ended.set_result("remote-bye")
    live = calls.live_call(moved.leg.sid)
    assert live is not None and live.task is not None
    await asyncio.wait_for(live.task, 1)
    assert call.byes == 0 and live.remote_ended and calls.live_call(moved.leg.sid) is None


async def test_a_finished_call_is_freed_without_the_cycle_collector() -> None:
    """Each call task runs with its live call as STEERING in the task's context: live -> task
    -> context -> live would be a cycle per call, and the collector's pauses stop every call."""
    calls, outbox = supervisor()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        moved, _call = handover(outbox)
        calls.run_transferred(moved)
        live = calls.live_call(moved.leg.sid)
        assert live is not None and live.task is not None
        await calls.drain(0.05)
        assert live.task.done() and calls.live_call(moved.leg.sid) is None
        del live, moved, _call
        await asyncio.sleep(0)
        gc.collect()
        cyclic = {type(o).__name__ for o in gc.garbage}
        assert "LiveCall" not in cyclic, cyclic
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
