"""RFC 4475 torture messages and malformed input against the endpoint on real sockets.

Every message of ``tests/data/sip/rfc4475`` (the RFC's text; Content-Length fixed to the body
where the RFC does not mean it to be wrong) is sent over UDP with its top Via pointed at the
test's socket, and must get the status the RFC asks of a user agent (or nothing, for responses
matching no transaction). The handler refuses every INVITE it gets with 486, so 486 means "a
valid INVITE reached the application".
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sip_harness import RawUdpPeer, RecordingHandler, address, sip_request

from rcmlrouter.sip.endpoint import SipEndpoint

DATA = Path(__file__).resolve().parents[1] / "data" / "sip" / "rfc4475"
TOP_VIA = re.compile(rb"(?im)^((?:via|v)\s*:\s*SIP\s*/\s*\d+\.\d+\s*/\s*\w+\s+)([^;,\r\n]+)")

# RFC 4475 section → what a UAS answers; None: nothing (a response no transaction wants)
EXPECTED: dict[str, int | None] = {
    # 3.1.1 valid messages
    "wsinv": 481,  # 3.1.1.1 parsed (Max-Forwards 0068, CSeq 0009); its To tag names no dialog
    "intmeth": 501,  # 3.1.1.2 unknown method, unusual but legal characters everywhere
    "esc01": 486,  # 3.1.1.3 escaped characters in URIs
    "escnull": 501,  # 3.1.1.4 escaped NULs (REGISTER: not ours)
    "esc02": 501,  # 3.1.1.5 % in a method name is no escape
    "lwsdisp": 200,  # 3.1.1.6 no LWS between display name and <
    "longreq": 486,  # 3.1.1.7 long values, 34 Via headers in every spelling
    "dblreq": 501,  # 3.1.1.8 extra trailing octets (REGISTER)
    "semiuri": 200,  # 3.1.1.9 semicolon-separated user part
    "transports": 200,  # 3.1.1.10 unknown transports in lower Vias
    "mpart01": 202,  # 3.1.1.11 multipart MIME MESSAGE with a binary part (reaches the handler)
    "unreason": None,  # 3.1.1.12 response with UTF-8 reason
    "noreason": None,  # 3.1.1.13 response with empty reason
    # 3.1.2 invalid messages
    "badinv01": 400,  # 3.1.2.1 extraneous separators in Via and Contact
    "clerr": 400,  # 3.1.2.2 Content-Length larger than the message
    "ncl": 400,  # 3.1.2.3 negative Content-Length
    "scalar02": 400,  # 3.1.2.4 CSeq, Max-Forwards, Expires out of range
    "scalarlg": None,  # 3.1.2.5 the same in a response
    "quotbal": 400,  # 3.1.2.6 unterminated quoted string
    "ltgtruri": 400,  # 3.1.2.7 <> around the Request-URI
    "lwsruri": 400,  # 3.1.2.8 LWS inside the Request-URI
    "lwsstart": 400,  # 3.1.2.9 several SP between request-line elements
    "trws": 400,  # 3.1.2.10 SP at the end of the request line
    "escruri": 400,  # 3.1.2.11 headers in the Request-URI
    "baddate": 486,  # 3.1.2.12 bad time zone in Date: tolerated
    "regbadct": 501,  # 3.1.2.13 (REGISTER)
    "badaspec": 200,  # 3.1.2.14 spaces inside <>: tolerated (the RFC allows it)
    "baddn": 200,  # 3.1.2.15 unquoted display name with a comma: tolerated
    "badvers": 505,  # 3.1.2.16 SIP/7.0
    "mismatch01": 400,  # 3.1.2.17 CSeq method differs from the request's
    "mismatch02": 400,  # 3.1.2.18 the same with an unknown method
    "bigcode": None,  # 3.1.2.19 response code 4294967301
    # 3.2 transaction layer
    "badbranch": 200,  # 3.2.1 bare magic cookie as branch
    # 3.3 application layer
    "insuf": 400,  # 3.3.1 no From, To, Call-ID: answered with what there is
    "unkscm": 416,  # 3.3.2 unknown Request-URI scheme
    "novelsc": 416,  # 3.3.3 known but unsupported scheme
    "unksm2": 400,  # 3.3.4 non-SIP URIs in From/To/Contact: refused (departure, see README)
    "bext01": 420,  # 3.3.5 Require with unknown extensions
    "invut": 415,  # 3.3.6 unknown Content-Type in an INVITE
    "regaut01": 501,  # 3.3.7 (REGISTER)
    "multi01": 400,  # 3.3.8 several values in single-value headers
    "mcl01": 400,  # 3.3.9 two Content-Length values (UDP; TCP closes, below)
    "bcast": None,  # 3.3.10 response with a broadcast Via
    "zeromf": 200,  # 3.3.11 OPTIONS with Max-Forwards: 0 is for us
    "cparam01": 501,  # 3.3.12 (REGISTER)
    "regescrt": 501,  # 3.3.14 (REGISTER)
    "sdp01": 406,  # 3.3.15 Accept without SDP
}


def aimed_at(data: bytes, port: int) -> bytes:
    """The message with its top Via's sent-by replaced by 127.0.0.1:``port``."""
    return TOP_VIA.sub(lambda m: m.group(1) + f"127.0.0.1:{port}".encode(), data, count=1)


@pytest.fixture
async def peer() -> RawUdpPeer:
    peer = await RawUdpPeer.open()
    yield peer  # type: ignore[misc]
    peer.close()


async def first_line(peer: RawUdpPeer, within: float = 1.0) -> str | None:
    try:
        data, _ = await asyncio.wait_for(peer.inbox.queue.get(), within)
    except TimeoutError:
        return None
    return data.split(b"\r\n", 1)[0].decode()


def test_every_sample_has_an_expectation() -> None:
    assert sorted(p.stem for p in DATA.glob("*.sip")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_torture_message_gets_the_rfc_answer(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer, name: str
) -> None:
    handler.mode = "reject"
    data = aimed_at((DATA / f"{name}.sip").read_bytes(), peer.port)
    peer.send(data, address(endpoint, "udp"))
    expected = EXPECTED[name]
    if expected is None:
        assert await peer.nothing()
        return
    line = await first_line(peer)
    assert line is not None and line.startswith(f"SIP/2.0 {expected} "), line


async def test_wsinv_reaches_the_application_once_its_to_tag_is_gone(
    endpoint: SipEndpoint, handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    """§3.1.1.1 is refused 481 only for its To tag (RFC 3261 §12.2.2: no such dialog); without
    the tag it is a new call and every tortuous field reads as meant."""
    handler.mode = "reject"
    data = aimed_at((DATA / "wsinv.sip").read_bytes(), peer.port)
    untagged = data.replace(b" ;   tag    = 1918181833n", b"")
    assert untagged != data
    peer.send(untagged, address(endpoint, "udp"))
    assert await first_line(peer) == "SIP/2.0 486 Busy Here"
    [call] = handler.calls
    assert call.request.get("Max-Forwards") == "0068" and call.request.cseq == (9, "INVITE")


async def test_rfc_reason_phrases_and_headers(endpoint: SipEndpoint, peer: RawUdpPeer) -> None:
    target = address(endpoint, "udp")
    peer.send(aimed_at((DATA / "badvers.sip").read_bytes(), peer.port), target)
    response = await peer.recv_status(505)
    assert response.reason == "Version Not Supported"
    peer.send(aimed_at((DATA / "unkscm.sip").read_bytes(), peer.port), target)
    unsupported = await peer.recv_status(416)
    assert unsupported.reason == "Unsupported URI Scheme"
    assert "unsupported URI scheme" in (unsupported.get("Reason") or "")
    peer.send(aimed_at((DATA / "sdp01.sip").read_bytes(), peer.port), target)
    assert (await peer.recv_status(406)).get("Accept") == "application/sdp"
    peer.send(aimed_at((DATA / "insuf.sip").read_bytes(), peer.port), target)
    insuf = await peer.recv_status(400)
    assert insuf.get("From") is None and insuf.cseq == (193942, "INVITE")


@pytest.mark.parametrize(
    ("extra", "replace", "status"),
    [
        ("Max-Forwards: 256", ("Max-Forwards: 70\r\n", ""), 400),
        ("Expires: 4294967296", None, 400),
        ("", ("CSeq: 1 OPTIONS", "CSeq: \u00b2 OPTIONS"), 400),  # isdigit() but no int
        ("", ("Content-Length: 0", "Content-Length: " + "9" * 5000), 400),
        ("", ("CSeq: 1 OPTIONS", "CSeq: " + "1" * 5000 + " OPTIONS"), 400),
        ("", ("alice@127.0.0.1>", "alice@127.0.0.1:\u00b2>"), 400),
        ("Call-ID: second", None, 400),
        ("X-Long: " + "x" * 9000, None, 400),
    ],
)
async def test_out_of_range_and_repeated_values_answer_400(
    endpoint: SipEndpoint,
    peer: RawUdpPeer,
    extra: str,
    replace: tuple[str, str] | None,
    status: int,
) -> None:
    request = sip_request("OPTIONS", call_id="scalar", branch="scalar", extra=extra)
    if replace is not None:
        assert replace[0] in request
        request = request.replace(*replace)
    peer.send(request, address(endpoint, "udp"))
    line = await first_line(peer)
    assert line is not None and line.startswith(f"SIP/2.0 {status} "), line


async def test_garbage_datagrams_are_counted_and_dropped(
    endpoint: SipEndpoint, peer: RawUdpPeer
) -> None:
    target = address(endpoint, "udp")
    garbage = [
        b"\x00\xff" * 700,
        b"INVITE\r\n\r\n",
        b"SIP/2.0 200\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        bytes(range(256)) * 4,
        b"OPTIONS sip:x SIP/2.0\r\nVia: \xff\xfe\r\n\r\n",
    ]
    for data in garbage:
        peer.send(data, target)
    assert await peer.nothing()
    assert endpoint.stats.parse_errors == len(garbage)
    peer.send(sip_request("OPTIONS", call_id="after", branch="after"), target)
    assert (await peer.recv_status(200)).call_id == "after"


async def tcp_exchange(endpoint: SipEndpoint, data: bytes, *, close: bool = False) -> bytes:
    """Send ``data`` on a new TCP connection; everything read until the daemon closes it
    (or 1.5 s pass)."""
    host, port = address(endpoint, "tcp")
    reader, writer = await asyncio.open_connection(host, port)
    local_port = writer.get_extra_info("sockname")[1]
    writer.write(data.replace(b"{port}", str(local_port).encode()))
    if close:
        writer.write_eof()
    chunks = []
    try:
        async with asyncio.timeout(1.5):
            while chunk := await reader.read(65536):
                chunks.append(chunk)
    except TimeoutError:
        chunks.append(b"<open>")
    writer.close()
    return b"".join(chunks)


def tcp_request(call_id: str, **kwargs: str) -> bytes:
    text = sip_request("OPTIONS", call_id=call_id, branch=call_id, **kwargs)
    return text.replace("SIP/2.0/UDP", "SIP/2.0/TCP").encode()


async def test_tcp_conflicting_content_length_closes(endpoint: SipEndpoint) -> None:
    mcl = (DATA / "mcl01.sip").read_bytes().replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
    reply = await tcp_exchange(endpoint, mcl)
    assert not reply.endswith(b"<open>")  # closed, not framed by either value
    assert reply == b"" or reply.startswith(b"SIP/2.0 400 ")


async def test_tcp_framing_abuse(endpoint: SipEndpoint) -> None:
    no_length = tcp_request("nolen").replace(b"Content-Length: 0\r\n", b"")
    reply = await tcp_exchange(endpoint, no_length)
    assert reply.startswith(b"SIP/2.0 400 ") and not reply.endswith(b"<open>")
    huge = tcp_request("huge").replace(b"Content-Length: 0", b"Content-Length: 10000000")
    reply = await tcp_exchange(endpoint, huge)
    assert reply.startswith(b"SIP/2.0 413 ") and not reply.endswith(b"<open>")
    pipelined = tcp_request("p1") + b"\r\n\r\n" + tcp_request("p2") + tcp_request("p3")
    reply = await tcp_exchange(endpoint, pipelined)
    assert reply.count(b"SIP/2.0 200 OK") == 3 and reply.endswith(b"<open>")
    for call_id in (b"p1", b"p2", b"p3"):
        assert b"Call-ID: " + call_id + b"\r\n" in reply
    half = tcp_request("half")[:60]
    assert await tcp_exchange(endpoint, half, close=True) == b""
    headers = b"OPTIONS sip:x SIP/2.0\r\n" + b"X: " + b"y" * 70000
    assert await tcp_exchange(endpoint, headers) == b""  # no end of headers in 64 KiB: closed
    reply = await tcp_exchange(endpoint, tcp_request("alive"))
    assert reply.startswith(b"SIP/2.0 200 OK")
