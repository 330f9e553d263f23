"""SipEndpoint on real sockets, driven by a hand-written UDP/TCP peer for exact behaviour."""

from __future__ import annotations

import asyncio

import pytest
from sip_harness import SDP_OFFER, RawUdpPeer, RecordingHandler, address, sip_request, wait_for

from rcmlrouter.errors import SipError
from rcmlrouter.sip.endpoint import IncomingRequest, SipEndpoint
from rcmlrouter.sip.message import SipRequest, SipResponse


@pytest.fixture
async def peer() -> RawUdpPeer:
    peer = await RawUdpPeer.open()
    yield peer  # type: ignore[misc]
    peer.close()


async def test_invite_retransmit_never_calls_on_invite_twice(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    handler.mode = "ring"
    target = address(endpoint, "udp")
    invite = sip_request("INVITE", call_id="rt1", branch="rt1", body=SDP_OFFER)
    peer.send(invite, target)
    ringing = await peer.recv_status(180)  # rung at once: no 100 Trying (test_sip_trying.py)
    peer.send(invite, target)
    again = await peer.recv_status(180)
    assert again.to_addr.tag == ringing.to_addr.tag
    assert len(handler.calls) == 1
    handler.calls[0].reject(486)
    busy = await peer.recv_status(486)
    peer.send(invite, target)  # retransmit after the final: the 486 again, no new call
    assert (await peer.recv_status(486)).to_addr.tag == busy.to_addr.tag
    assert len(handler.calls) == 1


async def test_a_finished_call_is_let_go_and_a_late_cancel_gets_200(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    """The endpoint lets a call go at its final response (not when its INVITE transaction ends
    5-32 s later: every young-generation GC would walk them); the lingering transaction still
    answers a CANCEL 200 without effect (RFC 3261 §9.2) and retransmits its final response."""
    handler.mode = "ring"
    target = address(endpoint, "udp")
    invite = sip_request("INVITE", call_id="late1", branch="late1", body=SDP_OFFER)
    peer.send(invite, target)
    await peer.recv_status(180)
    call = handler.calls[0]
    call.reject(486)
    busy = await peer.recv_status(486)
    held = [*endpoint._pending.values(), *endpoint._dialogs.values()]
    assert all(other is not call for other in held)
    cancel = sip_request("CANCEL", call_id="late1", branch="late1")
    peer.send(cancel, target)
    ok = await peer.recv_status(200)
    assert ok.cseq[1] == "CANCEL" and ok.to_addr.tag == busy.to_addr.tag
    peer.send(invite, target)  # the INVITE again: the same 486, from the kept bytes
    assert (await peer.recv_status(486)).to_addr.tag == busy.to_addr.tag


@pytest.mark.parametrize(
    ("method", "to_tag", "extra", "status"),
    [
        ("BYE", "nosuch", "", 481),
        ("CANCEL", None, "", 481),
        ("OPTIONS", None, "Require: 100rel", 420),
        ("INVITE", None, "Max-Forwards: 0", 483),
        ("FOO", None, "", 501),
    ],
)
async def test_refusals(
    endpoint: SipEndpoint,
    peer: RawUdpPeer,
    method: str,
    to_tag: str | None,
    extra: str,
    status: int,
) -> None:
    request = sip_request(
        method, call_id=f"ref-{method}", branch=method, to_tag=to_tag, extra=extra
    )
    if extra.startswith("Max-Forwards"):
        request = request.replace("Max-Forwards: 70\r\n", "")
    peer.send(request, address(endpoint, "udp"))
    response = await peer.recv()
    assert isinstance(response, SipResponse) and response.status == status
    assert response.get("Server") == "rcmlrouter"
    if status == 420:
        assert response.get("Unsupported") == "100rel"


async def test_malformed_answerable_gets_400_with_reason_else_dropped(
    endpoint: SipEndpoint, peer: RawUdpPeer
) -> None:
    target = address(endpoint, "udp")
    bad = sip_request("OPTIONS", call_id="bad1", branch="bad1").replace(
        "Content-Length: 0", "Content-Length: 50"
    )
    peer.send(bad, target)
    response = await peer.recv_status(400)
    assert (response.get("Reason") or "").startswith("SIP;cause=400;text=")
    bad_from = sip_request("INVITE", call_id="bad2", branch="bad2").replace(
        "From: <sip:alice@127.0.0.1>", 'From: "Alice <sip:alice@127.0.0.1>'
    )
    peer.send(bad_from, target)
    assert (await peer.recv_status(400)).call_id == "bad2"
    bad_contact = sip_request("INVITE", call_id="bad3", branch="bad3").replace(
        "Contact: <sip:alice@127.0.0.1:{port}>", "Contact: <http://x>"
    )
    peer.send(bad_contact, target)
    assert (await peer.recv_status(400)).call_id == "bad3"
    assert endpoint.transaction_count == 0
    peer.send(sip_request("OPTIONS", call_id="x", branch="b").replace("Call-ID: x\r\n", ""), target)
    no_call_id = await peer.recv_status(400)  # Via and CSeq are enough (RFC 4475 §3.3.1)
    assert no_call_id.get("Call-ID") is None and no_call_id.cseq == (1, "OPTIONS")
    peer.send(b"NOT SIP AT ALL\r\n\r\n", target)
    peer.send(
        sip_request("OPTIONS", call_id="y", branch="c").replace("CSeq: 1 OPTIONS\r\n", ""), target
    )
    assert await peer.nothing()
    assert endpoint.stats.parse_errors == 6 and endpoint.stats.dropped == 2


async def test_received_and_rport_stamped_and_used(endpoint: SipEndpoint, peer: RawUdpPeer) -> None:
    request = sip_request(
        "OPTIONS", call_id="nat1", branch="nat1", via_host="192.0.2.99:5999;rport"
    )
    peer.send(request, address(endpoint, "udp"))
    response = await peer.recv_status(200)  # arrived at our source port, not 192.0.2.99:5999
    via = response.top_via
    assert via.params["received"] == "127.0.0.1" and via.params["rport"] == str(peer.port)
    assert "INVITE" in (response.get("Allow") or "")


async def answered_call(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer, call_id: str
) -> str:
    """Set up an answered, ACKed call from the raw peer; returns our To tag."""
    target = address(endpoint, "udp")
    peer.send(sip_request("INVITE", call_id=call_id, branch=call_id, body=SDP_OFFER), target)
    ok = await peer.recv_status(200)
    assert ok.get("Contact") == f"<sip:127.0.0.1:{target[1]}>"
    assert b"m=audio 40000 RTP/AVP 8 101" in ok.body
    tag = ok.to_addr.tag
    assert tag
    peer.send(sip_request("ACK", call_id=call_id, branch=call_id + "a", to_tag=tag), target)
    await wait_for(lambda: handler.acked == [True])
    return tag


async def test_in_dialog_requests(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    target = address(endpoint, "udp")
    tag = await answered_call(endpoint, handler, peer, "dlg1")
    call = handler.calls[0]
    referred: list[IncomingRequest] = []

    def on_refer(request: IncomingRequest) -> None:
        referred.append(request)
        request.respond(202)
        call.send_notify("refer", b"SIP/2.0 100 Trying\r\n", "message/sipfrag", "active;expires=60")

    def send(method: str, cseq: int, body: str = "") -> None:
        request = sip_request(
            method, call_id="dlg1", branch=f"d{cseq}", cseq=cseq, to_tag=tag, body=body
        )
        peer.send(request, target)

    send("INFO", 2)
    assert (await peer.recv_status(200)).cseq == (2, "INFO")
    send("REFER", 3)
    assert (await peer.recv_status(405)).get("Allow")
    call.on_in_dialog_request(on_refer)
    send("REFER", 4)
    assert (await peer.recv_status(202)).cseq == (4, "REFER")
    notify = await peer.recv()
    assert isinstance(notify, SipRequest) and notify.method == "NOTIFY"
    assert notify.from_addr.tag == tag and notify.to_addr.tag == "peer1"
    assert notify.cseq == (1, "NOTIFY") and notify.get("Event") == "refer"
    assert (
        notify.body == b"SIP/2.0 100 Trying\r\n"
        and notify.uri == f"sip:alice@127.0.0.1:{peer.port}"
    )
    via = notify.top_via
    reply = f"SIP/2.0 200 OK\r\nVia: {notify.get('Via')}\r\nFrom: {notify.get('From')}\r\n"
    reply += (
        f"To: {notify.get('To')}\r\nCall-ID: dlg1\r\nCSeq: 1 NOTIFY\r\nContent-Length: 0\r\n\r\n"
    )
    peer.send(reply, target)
    assert via.branch and via.branch.startswith("z9hG4bK")
    send("INVITE", 5, SDP_OFFER)  # re-INVITE → the same local SDP
    reinvite_ok = await peer.recv_status(200)
    assert reinvite_ok.body == call.local_sdp and reinvite_ok.cseq == (5, "INVITE")
    bad = sip_request("INVITE", call_id="dlg1", branch="d55", cseq=55, to_tag=tag)
    peer.send(bad.replace("Contact: <sip:alice@127.0.0.1:{port}>", "Contact: <mailto:x>"), target)
    assert (await peer.recv_status(400)).cseq == (55, "INVITE")  # re-INVITE, bad Contact
    send("OPTIONS", 56)
    assert (await peer.recv_status(200)).cseq == (56, "OPTIONS")
    send("INFO", 3)  # lower CSeq than the last one
    assert (await peer.recv_status(500)).cseq == (3, "INFO")
    send("BYE", 57)
    assert (await peer.recv_status(200)).cseq == (57, "BYE")
    assert await call.ended == "remote-bye"
    assert len(referred) == 1
    await wait_for(lambda: endpoint.transaction_count == 0, timeout=4)


async def test_local_hangup_waits_for_bye_response(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    await answered_call(endpoint, handler, peer, "hang1")
    call = handler.calls[0]
    hangup = asyncio.ensure_future(call.hangup("bye now"))
    bye = await peer.recv()
    assert isinstance(bye, SipRequest) and bye.method == "BYE"
    bye_again = await peer.recv()  # retransmitted by Timer E while unanswered
    assert isinstance(bye_again, SipRequest) and bye_again.get("Via") == bye.get("Via")
    assert not hangup.done()
    reply = (
        f"SIP/2.0 200 OK\r\nVia: {bye.get('Via')}\r\nFrom: {bye.get('From')}\r\nTo: {bye.get('To')}"
    )
    reply += f"\r\nCall-ID: hang1\r\nCSeq: {bye.get('CSeq')}\r\nContent-Length: 0\r\n\r\n"
    peer.send(reply, address(endpoint, "udp"))
    await asyncio.wait_for(hangup, 2)
    assert await call.ended == "local-bye"
    await call.hangup()  # idempotent


async def test_hangup_before_answer_rejects_480(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    handler.mode = "ring"
    peer.send(
        sip_request("INVITE", call_id="h480", branch="h480", body=SDP_OFFER),
        address(endpoint, "udp"),
    )
    await peer.recv_status(180)
    await handler.calls[0].hangup("shutting down")
    response = await peer.recv_status(480)
    assert 'text="shutting down"' in (response.get("Reason") or "")
    assert handler.calls[0].ended.result() == "rejected"


async def test_send_request_message_and_timeout(endpoint: SipEndpoint, peer: RawUdpPeer) -> None:
    async def answer_one() -> None:
        request = await peer.recv()
        assert isinstance(request, SipRequest) and request.method == "MESSAGE"
        reply = (
            f"SIP/2.0 202 Accepted\r\nVia: {request.get('Via')}\r\nFrom: {request.get('From')}\r\n"
        )
        reply += f"To: {request.get('To')};tag=p\r\nCall-ID: {request.call_id}\r\n"
        reply += f"CSeq: {request.get('CSeq')}\r\nContent-Length: 0\r\n\r\n"
        peer.send(reply, address(endpoint, "udp"))

    def message() -> SipRequest:
        return SipRequest(
            "MESSAGE",
            f"sip:bob@127.0.0.1:{peer.port}",
            [
                ("From", "<sip:+15105555555@127.0.0.1>;tag=m1"),
                ("To", "<sip:bob@127.0.0.1>"),
                ("Call-ID", "msg1"),
                ("CSeq", "1 MESSAGE"),
                ("Content-Type", "text/plain"),
            ],
            b"hello",
        )

    responder = asyncio.ensure_future(answer_one())
    response = await endpoint.send_request(message(), ("udp", "127.0.0.1", peer.port))
    await responder
    assert response.status == 202
    with pytest.raises(SipError) as info:
        await endpoint.send_request(message(), ("udp", "127.0.0.1", peer.port))
    assert info.value.sip_status == 408
    await wait_for(lambda: endpoint.transaction_count == 0, timeout=4)


async def test_tcp_garbage_closes_connection(endpoint: SipEndpoint) -> None:
    host, port = address(endpoint, "tcp")
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"\r\n\r\nOPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKg\r\n\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"A" * 70000)
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()


async def test_overload_counts_only_transactions_in_flight(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    handler.mode = "ring"
    endpoint.max_transactions = 1
    target = address(endpoint, "udp")
    peer.send(sip_request("INVITE", call_id="ov1", branch="ov1", body=SDP_OFFER), target)
    await peer.recv_status(180)
    assert endpoint.in_flight == 1
    peer.send(sip_request("INVITE", call_id="ov2", branch="ov2", body=SDP_OFFER), target)
    busy = await peer.recv_status(503)
    assert busy.get("Retry-After") == "5" and busy.call_id == "ov2"
    handler.calls[0].reject(603)
    await peer.recv_status(603)
    assert endpoint.in_flight == 0 and endpoint.transaction_count == 1  # lingering, not in flight
    peer.send(sip_request("INVITE", call_id="ov3", branch="ov3", body=SDP_OFFER), target)
    assert (await peer.recv_status(180)).call_id == "ov3"
    assert [c.call_id for c in handler.calls] == ["ov1", "ov3"]
