"""Outgoing calls against a hand-driven UDP peer: exact retransmission behaviour."""

from __future__ import annotations

import asyncio
import socket

from sip_harness import FAST, RawUdpPeer, address, free_port, wait_for
from uac_harness import call, tables_empty

from rcmlrouter.sip.endpoint import SipEndpoint
from rcmlrouter.sip.message import SipRequest, SipResponse
from rcmlrouter.sip.response import build_response


def answer(peer: RawUdpPeer, invite: SipRequest, status: int, tag: str = "callee1") -> bytes:
    response = build_response(
        invite,
        status,
        "OK" if status == 200 else "Ringing",
        to_tag=tag,
        headers=[("Contact", f"<sip:callee@127.0.0.1:{peer.port}>")],
    )
    return response.serialize()


async def recv_request(peer: RawUdpPeer, method: str) -> SipRequest:
    while True:
        message = await peer.recv()
        if isinstance(message, SipRequest) and message.method == method:
            return message


async def quiet(peer: RawUdpPeer, within: float) -> bool:
    """Nothing more arrives within ``within`` seconds (after what is already queued)."""
    await asyncio.sleep(0.05)
    while not peer.inbox.queue.empty():
        peer.inbox.queue.get_nowait()
    return await peer.nothing(within)


async def test_invite_retransmitted_until_a_response_then_2xx_reacked(
    endpoint: SipEndpoint,
) -> None:
    peer = await RawUdpPeer.open()
    us = address(endpoint, "udp")
    try:
        outgoing = call(endpoint, f"sip:callee@127.0.0.1:{peer.port}")
        first = await recv_request(peer, "INVITE")  # dropped on purpose
        again = await recv_request(peer, "INVITE")  # Timer A: the same request, same branch
        assert again.top_via.branch == first.top_via.branch and again.cseq == (1, "INVITE")
        peer.send(answer(peer, again, 180), us)
        assert await quiet(peer, 8 * FAST.t1)  # Proceeding: no more retransmissions
        ok = answer(peer, again, 200)
        peer.send(ok, us)
        ack = await recv_request(peer, "ACK")
        assert ack.cseq == (1, "ACK") and ack.top_via.branch != first.top_via.branch
        assert ack.uri == f"sip:callee@127.0.0.1:{peer.port}"  # the remote target (Contact)
        assert (await outgoing.result).status == 200
        peer.send(ok, us)  # the 200 again (our ACK "lost"): same ACK again
        assert (await recv_request(peer, "ACK")).serialize() == ack.serialize()
        await asyncio.sleep(FAST.timeout + 0.2)  # Timer M: the transaction is gone
        peer.send(ok, us)  # still re-ACKed, through the dialog
        assert (await recv_request(peer, "ACK")).serialize() == ack.serialize()
        hangup = asyncio.ensure_future(outgoing.hangup())
        bye = await recv_request(peer, "BYE")
        assert bye.cseq == (2, "BYE") and bye.to_addr.tag == "callee1"
        peer.send(build_response(bye, 200, "OK").serialize(), us)
        await asyncio.wait_for(hangup, 2)
        assert outgoing.ended.result() == "local-bye"
        await wait_for(lambda: tables_empty(endpoint), timeout=4)
    finally:
        peer.close()


async def test_second_fork_answering_is_acked_and_released(endpoint: SipEndpoint) -> None:
    peer = await RawUdpPeer.open()
    us = address(endpoint, "udp")
    try:
        outgoing = call(endpoint, f"sip:callee@127.0.0.1:{peer.port}")
        invite = await recv_request(peer, "INVITE")
        peer.send(answer(peer, invite, 200, tag="fork1"), us)
        assert (await recv_request(peer, "ACK")).to_addr.tag == "fork1"
        peer.send(answer(peer, invite, 200, tag="fork2"), us)
        assert (await recv_request(peer, "ACK")).to_addr.tag == "fork2"
        bye = await recv_request(peer, "BYE")
        assert bye.to_addr.tag == "fork2"
        peer.send(build_response(bye, 200, "OK").serialize(), us)
        assert outgoing.answered and outgoing.dialog.remote_tag == "fork1"
        assert not outgoing.ended.done()
        await outgoing.hangup()
    finally:
        peer.close()


async def test_cancel_before_any_response_waits_for_a_provisional(endpoint: SipEndpoint) -> None:
    peer = await RawUdpPeer.open()
    us = address(endpoint, "udp")
    try:
        outgoing = call(endpoint, f"sip:callee@127.0.0.1:{peer.port}")
        invite = await recv_request(peer, "INVITE")
        outgoing.cancel()
        assert isinstance(await peer.recv(), SipRequest)  # Timer A, no CANCEL yet (§9.1)
        peer.send(answer(peer, invite, 180), us)
        cancel = await recv_request(peer, "CANCEL")
        assert cancel.top_via.branch == invite.top_via.branch and cancel.cseq == (1, "CANCEL")
        peer.send(build_response(cancel, 200, "OK").serialize(), us)
        terminated = build_response(invite, 487, "Request Terminated", to_tag="callee1")
        peer.send(terminated.serialize(), us)
        ack = await recv_request(peer, "ACK")
        assert ack.top_via.branch == invite.top_via.branch  # non-2xx ACK: same transaction
        assert await asyncio.wait_for(outgoing.ended, 2) == "cancel"
        assert outgoing.result.result().status == 487
        await wait_for(lambda: tables_empty(endpoint), timeout=4)
    finally:
        peer.close()


async def test_2xx_crossing_the_cancel_is_acked_and_byed(endpoint: SipEndpoint) -> None:
    peer = await RawUdpPeer.open()
    us = address(endpoint, "udp")
    try:
        outgoing = call(endpoint, f"sip:callee@127.0.0.1:{peer.port}")
        invite = await recv_request(peer, "INVITE")
        peer.send(answer(peer, invite, 180), us)
        await asyncio.sleep(0.05)
        outgoing.cancel()
        cancel = await recv_request(peer, "CANCEL")
        peer.send(answer(peer, invite, 200), us)  # answered meanwhile
        peer.send(build_response(cancel, 200, "OK").serialize(), us)
        await recv_request(peer, "ACK")
        bye = await recv_request(peer, "BYE")
        peer.send(build_response(bye, 200, "OK").serialize(), us)
        assert await asyncio.wait_for(outgoing.ended, 2) == "cancel"
        assert not outgoing.answered
        await wait_for(lambda: tables_empty(endpoint), timeout=4)
    finally:
        peer.close()


async def test_no_response_times_out(endpoint: SipEndpoint) -> None:
    peer = await RawUdpPeer.open()
    try:
        outgoing = call(endpoint, f"sip:callee@127.0.0.1:{peer.port}")
        assert await asyncio.wait_for(outgoing.ended, FAST.timeout + 1) == "timeout"
        result = outgoing.result.result()
        assert isinstance(result, SipResponse) and result.status == 408
        await wait_for(lambda: tables_empty(endpoint), timeout=4)
    finally:
        peer.close()


async def test_tcp_connection_refused_is_a_transport_error(endpoint: SipEndpoint) -> None:
    port = free_port(socket.SOCK_STREAM)
    outgoing = call(endpoint, f"sip:callee@127.0.0.1:{port};transport=tcp")
    assert await asyncio.wait_for(outgoing.ended, 3) == "transport-error"
    assert outgoing.result.result().status == 503
    await wait_for(lambda: tables_empty(endpoint), timeout=4)


async def test_host_name_is_resolved(endpoint: SipEndpoint) -> None:
    peer = await RawUdpPeer.open()
    us = address(endpoint, "udp")
    try:
        outgoing = call(endpoint, f"sip:callee@localhost:{peer.port}")
        invite = await recv_request(peer, "INVITE")
        assert invite.uri == f"sip:callee@localhost:{peer.port}"
        peer.send(build_response(invite, 486, "Busy Here", to_tag="b").serialize(), us)
        assert (await asyncio.wait_for(outgoing.result, 2)).status == 486
    finally:
        peer.close()


async def test_unresolvable_host_fails_the_call(endpoint: SipEndpoint) -> None:
    outgoing = call(endpoint, "sip:callee@no-such-host.invalid")
    assert await asyncio.wait_for(outgoing.ended, 10) == "transport-error"
    assert outgoing.result.result().status == 503
    assert tables_empty(endpoint)
