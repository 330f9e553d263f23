"""100 Trying only when the INVITE is not answered within 200 ms (RFC 3261 §17.2.1)."""

from __future__ import annotations

import asyncio
import time

import pytest
from sip_harness import SDP_OFFER, RawUdpPeer, RecordingHandler, address, sip_request

from rcmlrouter.sip.call import IncomingCall
from rcmlrouter.sip.endpoint import SipEndpoint
from rcmlrouter.sip.message import SipResponse


@pytest.fixture
async def peer() -> RawUdpPeer:
    peer = await RawUdpPeer.open()
    yield peer  # type: ignore[misc]
    peer.close()


async def test_quick_answer_sends_no_trying(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    handler.mode = "reject"
    target = address(endpoint, "udp")
    peer.send(sip_request("INVITE", call_id="t1", branch="t1", body=SDP_OFFER), target)
    first = await peer.recv()
    assert isinstance(first, SipResponse) and first.status == 486
    ack = sip_request("ACK", call_id="t1", branch="t1", to_tag=first.to_addr.tag)
    peer.send(ack, target)
    await asyncio.sleep(endpoint.config.trying + 0.1)
    while not peer.inbox.queue.empty():  # only retransmitted 486s (Timer G) may follow
        later = await peer.recv()
        assert isinstance(later, SipResponse) and later.status == 486


async def test_quick_ring_sends_no_trying(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    handler.mode = "ring"
    peer.send(sip_request("INVITE", call_id="t2", branch="t2", body=SDP_OFFER),
              address(endpoint, "udp"))  # fmt: skip
    first = await peer.recv()
    assert isinstance(first, SipResponse) and first.status == 180
    assert await peer.nothing(endpoint.config.trying + 0.1)
    handler.calls[0].reject(486)
    assert (await peer.recv_status(486)).cseq == (1, "INVITE")


async def test_slow_answer_gets_trying_after_200_ms(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    pending: list[IncomingCall] = []
    handler.on_call = pending.append  # the application says nothing for now
    started = time.monotonic()
    peer.send(sip_request("INVITE", call_id="t3", branch="t3", body=SDP_OFFER),
              address(endpoint, "udp"))  # fmt: skip
    trying = await peer.recv()
    waited = time.monotonic() - started
    assert isinstance(trying, SipResponse) and trying.status == 100
    assert endpoint.config.trying - 0.05 <= waited < endpoint.config.trying + 0.3
    assert trying.to_addr.tag is None
    pending[0].reject(603)
    assert (await peer.recv_status(603)).cseq == (1, "INVITE")


async def test_retransmission_before_any_response_gets_trying_at_once(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    pending: list[IncomingCall] = []
    handler.on_call = pending.append
    invite = sip_request("INVITE", call_id="t4", branch="t4", body=SDP_OFFER)
    target = address(endpoint, "udp")
    peer.send(invite, target)
    await asyncio.sleep(0.02)
    peer.send(invite, target)
    trying = await peer.recv(timeout=0.15)  # well before the 200 ms timer
    assert isinstance(trying, SipResponse) and trying.status == 100
    assert len(pending) == 1
    await asyncio.sleep(endpoint.config.trying + 0.05)
    assert await peer.nothing(0.05)  # the timer finds the 100 sent: no second one
    pending[0].reject(486)
