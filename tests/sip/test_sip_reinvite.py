"""A re-INVITE's 2xx: sent again for a retransmitted re-INVITE and, over UDP, retransmitted
until its ACK (RFC 3261 §13.3.1.4, §17.2.1), for both ways of answering it."""

from __future__ import annotations

import pytest
from sip_harness import SDP_OFFER, RawUdpPeer, RecordingHandler, address, sip_request, wait_for
from test_sip_endpoint_raw import answered_call

from rcmlrouter.sip.call import IncomingRequest
from rcmlrouter.sip.endpoint import SipEndpoint


@pytest.fixture
async def peer() -> RawUdpPeer:
    peer = await RawUdpPeer.open()
    yield peer  # type: ignore[misc]
    peer.close()


@pytest.mark.parametrize("by_application", [False, True])
async def test_retransmitted_reinvite_gets_its_200_again_until_acked(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer, by_application: bool
) -> None:
    target = address(endpoint, "udp")
    tag = await answered_call(endpoint, handler, peer, f"reinv{by_application}")
    call = handler.calls[0]
    if by_application:

        def answer(request: IncomingRequest) -> None:
            request.respond(200, body=b"v=0\r\n", content_type="application/sdp")

        call.on_reinvite(answer)
    reinvite = sip_request(
        "INVITE", call_id=call.call_id, branch="re2", cseq=2, to_tag=tag, body=SDP_OFFER
    )
    peer.send(reinvite, target)
    first = await peer.recv_status(200)
    assert first.cseq == (2, "INVITE")
    peer.send(reinvite, target)  # the re-INVITE again (our 200 was lost): the 200 again
    again = await peer.recv_status(200, timeout=0.5)
    assert again.cseq == (2, "INVITE") and again.body == first.body
    retransmitted = await peer.recv_status(200, timeout=0.5)  # no ACK yet: Timer G-like
    assert retransmitted.cseq == (2, "INVITE")
    ack = sip_request("ACK", call_id=call.call_id, branch="re2ack", cseq=2, to_tag=tag)
    peer.send(ack, target)
    await wait_for(lambda: peer.inbox.queue.empty())
    assert await peer.nothing(0.4)  # ACKed: no more 200s
    assert not call.ended.done()
