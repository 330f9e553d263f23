"""The UAS call's relay hooks a back-to-back bridge needs: provisional responses with SDP
(early media), taking the caller's re-INVITE, and re-INVITEs sent to the caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sip_harness import (
    FAST,
    SDP_OFFER,
    RawUdpPeer,
    RecordingHandler,
    address,
    sip_request,
    wait_for,
)

from rcmlrouter.sip.call import IncomingCall, IncomingRequest
from rcmlrouter.sip.endpoint import SipEndpoint
from rcmlrouter.sip.message import SipRequest
from rcmlrouter.sip.response import build_response

ANSWER = SDP_OFFER.replace("6000", "7000").encode()


@pytest.fixture
async def peer() -> AsyncIterator[RawUdpPeer]:
    peer = await RawUdpPeer.open()
    yield peer
    peer.close()


async def test_183_with_sdp_then_answer(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    handler.on_call = lambda call: call.progress(183, ANSWER)
    target = address(endpoint, "udp")
    peer.send(sip_request("INVITE", call_id="em1", branch="em1", body=SDP_OFFER), target)
    early = await peer.recv_status(183)
    assert early.body == ANSWER and early.content_type == "application/sdp"
    assert early.to_addr.tag and early.get("Contact")
    call = handler.calls[0]
    call.ring()  # 180 after 183 is fine too
    assert (await peer.recv_status(180)).body == b""
    call.reject(486)
    await peer.recv_status(486)


async def answered(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer, call_id: str
) -> tuple[IncomingCall, str]:
    target = address(endpoint, "udp")
    peer.send(sip_request("INVITE", call_id=call_id, branch=call_id, body=SDP_OFFER), target)
    ok = await peer.recv_status(200)
    tag = ok.to_addr.tag or ""
    peer.send(sip_request("ACK", call_id=call_id, branch=call_id + "a", to_tag=tag), target)
    await wait_for(lambda: handler.acked == [True])
    return handler.calls[0], tag


async def test_caller_reinvite_taken_by_the_application(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    call, tag = await answered(endpoint, handler, peer, "ri1")
    taken: list[IncomingRequest] = []
    call.on_reinvite(taken.append)
    target = address(endpoint, "udp")
    hold = SDP_OFFER + "a=sendonly\r\n"
    reinvite = sip_request("INVITE", call_id="ri1", branch="ri2", cseq=2, to_tag=tag, body=hold)
    peer.send(reinvite, target)
    await peer.recv_status(100)
    await wait_for(lambda: bool(taken))
    assert taken[0].request.body == hold.encode()
    taken[0].respond(200, body=ANSWER, content_type="application/sdp")  # the relayed answer
    ok = await peer.recv_status(200)
    assert ok.body == ANSWER and ok.cseq == (2, "INVITE")
    peer.send(sip_request("INVITE", call_id="ri1", branch="ri3", cseq=3, to_tag=tag), target)
    await peer.recv_status(100)
    await asyncio.sleep(FAST.timeout + 0.1)  # the application never answers: 500
    assert (await peer.recv_status(500)).cseq == (3, "INVITE")


async def test_reinvite_to_the_caller_is_acked(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    call, tag = await answered(endpoint, handler, peer, "ri4")
    target = address(endpoint, "udp")
    pending = call.send_in_dialog("INVITE", [], ANSWER)
    reinvite = await peer.recv()
    assert isinstance(reinvite, SipRequest) and reinvite.method == "INVITE"
    assert reinvite.to_addr.tag == "peer1" and reinvite.from_addr.tag == tag
    assert reinvite.cseq == (1, "INVITE") and reinvite.content_type == "application/sdp"
    ok = build_response(reinvite, 200, "OK", body=SDP_OFFER.encode())
    peer.send(ok.serialize(), target)
    response = await asyncio.wait_for(pending, 2)
    assert response is not None and response.status == 200
    ack = await peer.recv()
    assert isinstance(ack, SipRequest) and ack.method == "ACK" and ack.cseq == (1, "ACK")
    peer.send(ok.serialize(), target)  # 200 retransmitted: ACKed again
    again = await peer.recv()
    assert isinstance(again, SipRequest) and again.serialize() == ack.serialize()
    busy = call.send_in_dialog("INVITE", [], ANSWER)
    second = await peer.recv()
    assert isinstance(second, SipRequest) and second.cseq == (2, "INVITE")
    peer.send(build_response(second, 491, "Request Pending").serialize(), target)
    assert (await asyncio.wait_for(busy, 2) or ok).status == 491
    non2xx_ack = await peer.recv()  # the ACK of a non-2xx: same branch
    assert isinstance(non2xx_ack, SipRequest) and non2xx_ack.method == "ACK"
    assert non2xx_ack.top_via.branch == second.top_via.branch
