"""Nothing of a call stays in memory once its transactions have expired.

The daemon runs the cycle collector rarely (gc.freeze() and high thresholds), so a call must be
freed by reference counting alone: these tests disable the collector and count what is left.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
from sip_harness import SDP_OFFER, RawUdpPeer, address, sip_request, wait_for

from rcmlrouter.sip.endpoint import IncomingCall, IncomingRequest, SipEndpoint
from rcmlrouter.sip.timers import COMPACT_MIN, TimerHeap
from rcmlrouter.sip.transaction import InviteServerTransaction


class Leg:
    """What the call layer hangs on a call (like calls/in_dialog.py): an object that holds the
    call and whose bound methods are the call's callbacks, a reference cycle."""

    def __init__(self, call: IncomingCall) -> None:
        self.call = call
        call.on_in_dialog_request(self.on_request)
        call.on_reinvite(self.on_request)

    def on_request(self, request: IncomingRequest) -> None:
        request.respond(200)


class RejectingHandler:
    """Keeps nothing: hangs a Leg on each call and rejects it."""

    tasks: set[asyncio.Task[None]] = set()  # noqa: RUF012 - the endpoint fixture cancels these

    def on_invite(self, call: IncomingCall) -> None:
        Leg(call)
        call.reject(486, reason_header="busy")

    def on_request(self, request: IncomingRequest) -> None:
        request.respond(501)


@pytest.fixture
def handler() -> RejectingHandler:
    return RejectingHandler()


@pytest.fixture
async def peer() -> RawUdpPeer:
    peer = await RawUdpPeer.open()
    yield peer  # type: ignore[misc]
    peer.close()


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def alive(*kinds: type) -> int:
    return sum(1 for obj in gc.get_objects() if isinstance(obj, kinds))


@pytest.mark.usefixtures("no_cycle_collector")
async def test_rejected_calls_leave_nothing_once_transactions_expire(
    endpoint: SipEndpoint, peer: RawUdpPeer
) -> None:
    target = address(endpoint, "udp")
    # a live timer due before the calls' Timer H keeps their cancelled entries in the heap
    endpoint.timers.schedule(1.0, lambda: None)
    for index in range(20):
        peer.send(
            sip_request("INVITE", call_id=f"mem{index}", branch=f"mem{index}", body=SDP_OFFER),
            target,
        )
        busy = await peer.recv_status(486)
        ack = sip_request(
            "ACK", call_id=f"mem{index}", branch=f"mem{index}", to_tag=busy.to_addr.tag
        )
        peer.send(ack, target)
    await wait_for(lambda: endpoint.transaction_count == 0, timeout=4)
    await asyncio.sleep(0.05)
    # Timer H (64*T1) of each call is still in the heap, cancelled: it must not hold the call
    assert len(endpoint.timers) > 20
    assert alive(IncomingCall, InviteServerTransaction, Leg) == 0
    assert endpoint.dialog_count == 0


async def test_cancelled_timers_let_go_and_the_heap_compacts() -> None:
    heap = TimerHeap(asyncio.get_running_loop())

    class Held:
        def fire(self) -> None:
            raise AssertionError("cancelled")

    timers = [heap.schedule(60.0, Held().fire) for _ in range(3 * COMPACT_MIN)]
    assert alive(Held) == 3 * COMPACT_MIN
    for timer in timers:
        timer.cancel()
    assert alive(Held) == 0
    assert len(heap) < COMPACT_MIN  # not 3 * COMPACT_MIN cancelled entries
    fired: list[int] = []
    heap.schedule(0.0, lambda: fired.append(1)).cancel()
    heap.schedule(0.01, lambda: fired.append(2))
    await wait_for(lambda: fired == [2], timeout=1)
    heap.close()
