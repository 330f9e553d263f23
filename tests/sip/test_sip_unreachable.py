"""Outgoing calls to a callee that cannot or does not answer.

- nothing listens on the UDP port: the ICMP "port unreachable" (read from the socket's error
  queue, IP_RECVERR) fails the INVITE at once (503, ``transport-error``), on asyncio and on
  uvloop, and the socket does not keep polling as in error afterwards;
- a refused TCP connect: the same;
- a callee that is silent: the ring timeout ends the call for the application then (408,
  ``timeout``), the INVITE transaction goes on: a late 180 gets the CANCEL, a late 200 an ACK and
  a BYE.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

import pytest
import uvloop
from sip_harness import FAST, RawUdpPeer, RecordingHandler, address, free_port, wait_for
from test_sip_outgoing_raw import answer, recv_request
from uac_harness import call, tables_empty

from rcmlrouter.sip.endpoint import SipEndpoint
from rcmlrouter.sip.response import build_response

LOOPS: dict[str, Callable[[Awaitable[None]], None]] = {
    "asyncio": asyncio.run,  # type: ignore[dict-item]
    "uvloop": uvloop.run,  # type: ignore[dict-item]
}


async def default_endpoint() -> SipEndpoint:
    """An endpoint with RFC 3261's timers (T1 0.5 s: Timer B would fire after 32 s)."""
    endpoint = SipEndpoint(RecordingHandler())
    await endpoint.start(["udp:127.0.0.1:0", "tcp:127.0.0.1:0"])
    return endpoint


def closed_port(kind: int) -> int:
    """A port nothing listens on (bound a moment, then let go)."""
    return free_port(kind)


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_an_unreachable_callee_fails_at_once(loop_name: str, transport: str) -> None:
    async def scenario() -> None:
        endpoint = await default_endpoint()
        try:
            kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
            suffix = ";transport=tcp" if transport == "tcp" else ""
            started = time.monotonic()
            outgoing = call(endpoint, f"sip:x@127.0.0.1:{closed_port(kind)}{suffix}")
            response = await asyncio.wait_for(asyncio.shield(outgoing.result), 5)
            took = time.monotonic() - started
            assert response.status == 503 and outgoing.ended.result() == "transport-error"
            assert took < 0.5, took  # not Timer B (32 s), not a retransmission (0.5 s)
            cpu = time.process_time()
            await asyncio.sleep(0.5)  # an undrained error queue would wake the loop non-stop
            assert time.process_time() - cpu < 0.2
            await wait_for(lambda: endpoint.outgoing_calls == 0, timeout=2)
        finally:
            await endpoint.stop()

    LOOPS[loop_name](scenario())


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
def test_an_unreachable_ipv6_callee_fails_at_once() -> None:
    """IPV6_RECVERR: the ICMPv6 port unreachable names the destination as the IPv4 one does."""

    async def scenario() -> None:
        endpoint = SipEndpoint(RecordingHandler())
        await endpoint.start(["udp:[::1]:0"])
        try:
            outgoing = call(endpoint, f"sip:x@[::1]:{free_port(host='::1')}")
            response = await asyncio.wait_for(asyncio.shield(outgoing.result), 0.5)
            assert response.status == 503 and outgoing.ended.result() == "transport-error"
        finally:
            await endpoint.stop()

    uvloop.run(scenario())


async def test_a_silent_callee_ends_at_the_ring_timeout_and_a_late_180_gets_the_cancel(
    endpoint: SipEndpoint,
) -> None:
    peer = await RawUdpPeer.open()
    us = address(endpoint, "udp")
    try:
        started = asyncio.get_running_loop().time()
        outgoing = call(endpoint, f"sip:callee@127.0.0.1:{peer.port}", ring_timeout=0.3)
        invite = await recv_request(peer, "INVITE")  # never answered, not even 100
        assert await asyncio.wait_for(asyncio.shield(outgoing.ended), 1) == "timeout"
        assert 0.25 <= asyncio.get_running_loop().time() - started < 0.6
        assert outgoing.result.result().status == 408 and not outgoing.answered
        peer.send(answer(peer, invite, 180), us)  # the callee wakes up: CANCEL it (§9.1)
        cancel = await recv_request(peer, "CANCEL")
        assert cancel.top_via.branch == invite.top_via.branch
        peer.send(build_response(cancel, 200, "OK").serialize(), us)
        terminated = build_response(invite, 487, "Request Terminated", to_tag="callee1")
        peer.send(terminated.serialize(), us)
        assert (await recv_request(peer, "ACK")).top_via.branch == invite.top_via.branch
        await wait_for(lambda: tables_empty(endpoint), timeout=4)
    finally:
        peer.close()


async def test_a_200_after_the_ring_timeout_is_acked_and_byed(endpoint: SipEndpoint) -> None:
    peer = await RawUdpPeer.open()
    us = address(endpoint, "udp")
    try:
        outgoing = call(endpoint, f"sip:callee@127.0.0.1:{peer.port}", ring_timeout=0.2)
        invite = await recv_request(peer, "INVITE")
        assert await asyncio.wait_for(asyncio.shield(outgoing.ended), 1) == "timeout"
        peer.send(answer(peer, invite, 200), us)
        assert (await recv_request(peer, "ACK")).to_addr.tag == "callee1"
        bye = await recv_request(peer, "BYE")
        peer.send(build_response(bye, 200, "OK").serialize(), us)
        assert not outgoing.answered and outgoing.result.result().status == 408
        await wait_for(lambda: tables_empty(endpoint), timeout=4)
    finally:
        peer.close()


async def test_a_cancel_before_any_response_releases_the_call_at_once(
    endpoint: SipEndpoint,
) -> None:
    peer = await RawUdpPeer.open()
    try:
        outgoing = call(endpoint, f"sip:callee@127.0.0.1:{peer.port}")
        await recv_request(peer, "INVITE")
        await asyncio.wait_for(outgoing.hangup("caller left"), 0.2)  # not Timer B
        assert outgoing.ended.result() == "cancel" and outgoing.result.result().status == 487
    finally:
        peer.close()


def test_timer_b_is_what_the_ring_timeout_replaces() -> None:
    assert FAST.timeout == 64 * FAST.t1  # the tests above end well before it
