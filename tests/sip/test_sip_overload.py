"""Overload: new INVITEs get a 503 built from their raw bytes; everything else goes on."""

from __future__ import annotations

import asyncio
import time

import pytest
from sip_harness import SDP_OFFER, RawUdpPeer, RecordingHandler, address, sip_request

from rcmlrouter.sip.endpoint import SipEndpoint
from rcmlrouter.sip.message import SipResponse
from rcmlrouter.sip.overload import LAG_BUCKETS, LoopLag
from rcmlrouter.sip.shed import is_shed_ack, shed_response
from rcmlrouter.sip.wire import parse_message

INVITE = (
    b"INVITE sip:+15105555555@127.0.0.1 SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKab1;rport, "
    b"SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "A" <sip:alice@example.com>;tag=f1\r\n'
    b"t: <sip:+15105555555@127.0.0.1>\r\n"
    b"i: abc@10.0.0.9\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_shed_response_copies_the_headers_and_stamps_the_via() -> None:
    shed = shed_response(INVITE, ("udp", "192.0.2.1", 40000), "ovltag", 5, "rcmlrouter")
    assert shed is not None
    data, destination = shed
    assert destination == ("udp", "192.0.2.1", 40000)  # rport: the source port
    response = parse_message(data)
    assert isinstance(response, SipResponse) and response.status == 503
    assert response.top_via.params["received"] == "192.0.2.1"
    assert response.top_via.params["rport"] == "40000"
    assert response.top_via.branch == "z9hG4bKab1"
    assert len(response.get_all("Via")) == 2
    assert response.from_addr.tag == "f1" and response.to_addr.tag == "ovltag"
    assert response.call_id == "abc@10.0.0.9" and response.cseq == (7, "INVITE")
    assert response.get("Retry-After") == "5"


def test_shed_response_without_rport_goes_to_the_via_port() -> None:
    invite = INVITE.replace(b";rport,", b",")
    shed = shed_response(invite, ("udp", "192.0.2.1", 40000), "ovltag", 5, "x")
    assert shed is not None and shed[1] == ("udp", "192.0.2.1", 5070)


@pytest.mark.parametrize(
    "data",
    [
        INVITE.replace(b"t: <sip:+15105555555@127.0.0.1>", b"t: <sip:b@h>;tag=x"),  # in dialog
        INVITE.replace(b"INVITE sip", b"OPTIONS sip", 1),
        INVITE.replace(b"\r\nMax-Forwards: 70", b"\r\n  folded"),
        INVITE[:60],
        INVITE.replace(b"i: abc@10.0.0.9\r\n", b""),
    ],
)
def test_anything_unusual_takes_the_ordinary_path(data: bytes) -> None:
    assert shed_response(data, ("udp", "192.0.2.1", 40000), "ovltag", 5, "x") is None


def test_the_ack_of_a_shed_503_is_recognised() -> None:
    assert is_shed_ack(b"ACK sip:x SIP/2.0\r\nTo: <sip:x>;tag=ovltag\r\n\r\n", "ovltag")
    assert not is_shed_ack(b"ACK sip:x SIP/2.0\r\nTo: <sip:x>;tag=other\r\n\r\n", "ovltag")


async def test_loop_lag_needs_a_sustained_delay_or_backlog() -> None:
    queued = [0]
    lag = LoopLag(0.02, interval=0.005, backlog=lambda: queued[0], backlog_limit=1000, sustain=0.06)
    lag.start(asyncio.get_running_loop())
    try:
        await asyncio.sleep(0.03)
        assert not lag.overloaded
        time.sleep(0.08)  # one long pause (a GC): late once, not overloaded
        await asyncio.sleep(0.012)
        assert not lag.overloaded
        for _ in range(3):  # the loop blocked, beat after beat
            time.sleep(0.05)  # the loop blocked
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        assert lag.overloaded
        await asyncio.sleep(0.05)
        assert not lag.overloaded
        queued[0] = 5000
        await asyncio.sleep(0.03)
        assert not lag.overloaded and lag.queued == 5000  # not for ``sustain`` yet
        await asyncio.sleep(0.06)
        assert lag.overloaded
        # every beat is in the loop-lag histogram; the 80 ms pause in the 50-100 ms bucket
        assert sum(lag.lag_counts) >= 20 and lag.lag_counts[LAG_BUCKETS.index(0.1)] >= 1
        assert lag.lag_sum >= 0.08 + 3 * 0.04
    finally:
        lag.stop()


@pytest.fixture
async def peer() -> RawUdpPeer:
    peer = await RawUdpPeer.open()
    yield peer  # type: ignore[misc]
    peer.close()


async def test_overloaded_endpoint_sheds_invites_but_answers_the_rest(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    target = address(endpoint, "udp")
    handler.mode = "ring"
    peer.send(sip_request("INVITE", call_id="up", branch="up", body=SDP_OFFER), target)
    ringing = await peer.recv_status(180)
    endpoint.max_transactions = 1  # overloaded from now on (the ringing call is in flight)
    for index in range(50):  # a flood: every new INVITE gets 503, no call starts
        invite = sip_request("INVITE", call_id=f"f{index}", branch=f"f{index}", body=SDP_OFFER)
        peer.send(invite, target)
    shed = [await peer.recv_status(503) for _ in range(50)]
    assert {r.get("Retry-After") for r in shed} == {"5"}
    assert len(handler.calls) == 1
    assert endpoint.stats.rejected_overload == 50
    assert endpoint.security_stats()["rejected_overload"] == 50  # /metrics shows the shed 503s
    before = endpoint.stats.messages_in
    peer.send(sip_request("ACK", call_id="f0", branch="f0", to_tag=shed[0].to_addr.tag), target)
    await asyncio.sleep(0.05)
    assert endpoint.stats.messages_in == before and endpoint.stats.dropped == 0  # not parsed
    peer.send(sip_request("OPTIONS", call_id="o1", branch="o1"), target)  # a proxy's probe:
    assert (await peer.recv_status(200)).cseq == (1, "OPTIONS")  # overloaded, it stays in
    cancel = sip_request("CANCEL", call_id="up", branch="up")  # the call in progress goes on
    peer.send(cancel, target)
    assert (await peer.recv_status(487)).to_addr.tag == ringing.to_addr.tag


async def test_a_draining_endpoint_answers_a_probe_503_but_keeps_its_dialogs(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    """Kamailio's dispatcher counts only a 2xx to its OPTIONS probe: a draining node leaves
    the set at the next probe, while OPTIONS inside a dialog is still answered."""
    target = address(endpoint, "udp")
    handler.mode = "ring"
    peer.send(sip_request("INVITE", call_id="up", branch="up", body=SDP_OFFER), target)
    ringing = await peer.recv_status(180)
    endpoint.set_draining(True)
    peer.send(sip_request("OPTIONS", call_id="probe", branch="probe"), target)
    refused = await peer.recv_status(503)
    assert refused.cseq == (1, "OPTIONS") and refused.get("Retry-After") == "5"
    assert "draining" in (refused.get("Reason") or "")
    in_dialog = sip_request(
        "OPTIONS", call_id="up", branch="o2", cseq=2, to_tag=ringing.to_addr.tag
    )
    peer.send(in_dialog, target)
    assert (await peer.recv_status(200)).cseq == (2, "OPTIONS")
    endpoint.set_draining(False)
    peer.send(sip_request("OPTIONS", call_id="probe2", branch="probe2"), target)
    assert (await peer.recv_status(200)).cseq == (1, "OPTIONS")
