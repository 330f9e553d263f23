from __future__ import annotations

from pathlib import Path

import pytest

from rcmlrouter.errors import SipParseError
from rcmlrouter.sip.conformance import request_refusal
from rcmlrouter.sip.message import MAX_MESSAGE_BYTES, SipRequest, SipResponse
from rcmlrouter.sip.response import build_response, reason_header, salvage_request
from rcmlrouter.sip.uri import ascii_int
from rcmlrouter.sip.wire import frame_length, parse_message

DATA = Path(__file__).resolve().parent.parent / "data" / "sip"


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def parse_request(data: bytes, *, stream: bool = False) -> SipRequest:
    message = parse_message(data, stream=stream)
    assert isinstance(message, SipRequest)
    return message


def test_sipp_invite_parses_with_body_and_headers() -> None:
    invite = parse_request(sample("sipp_invite.sip"))
    assert invite.method == "INVITE"
    assert invite.uri == "sip:service@127.0.0.1:33456"
    assert invite.call_id == "1-13119@127.0.0.1"
    assert invite.cseq == (1, "INVITE")
    assert invite.from_addr.tag == "13119SIPpTag001"
    assert invite.from_addr.display == "sipp"
    assert invite.to_addr.tag is None
    assert invite.to_addr.uri.user == "service"
    assert invite.top_via.branch == "z9hG4bK-13119-1-0"
    assert invite.top_via.port == 45123
    assert invite.content_type == "application/sdp"
    assert invite.body.startswith(b"v=0\r\n") and invite.body.endswith(b"PCMU/8000\r\n")


def test_serialize_round_trip_keeps_headers_and_fixes_content_length() -> None:
    invite = parse_request(sample("sipp_invite.sip"))
    invite.body = b"x"
    again = parse_request(invite.serialize(), stream=True)
    assert again.headers[:-1] == [h for h in invite.headers if h[0] != "Content-Length"]
    assert again.get("Content-Length") == "1"
    assert again.body == b"x"


def test_response_parses() -> None:
    response = parse_message(sample("response_200.sip"))
    assert isinstance(response, SipResponse)
    assert (response.status, response.reason) == (200, "OK")
    via = response.top_via
    assert via.params["received"] == "10.0.0.1" and via.params["rport"] == "5062"


def test_rfc4475_wsinv_torture() -> None:
    invite = parse_request(sample("rfc4475/wsinv.sip"))
    assert invite.to_addr.tag == "1918181833n"
    assert invite.from_addr.tag == "98asjd8"
    assert invite.from_addr.display == 'J Rosenberg \\"'
    assert invite.cseq == (9, "INVITE")
    assert invite.get("max-forwards") == "0068"
    vias = invite.get_all("Via")
    assert len(vias) == 3
    assert invite.top_via.host == "192.0.2.2" and invite.top_via.branch == "390skdjuw"
    assert invite.get("NewFangledHeader") == "newfangled value continued newfangled value"
    contact = invite.get_all("Contact")
    assert len(contact) == 1 and "secondparam" in contact[0]
    assert invite.get("Subject") == ""
    assert invite.body.endswith(b"a=rtpmap:31 LPC\r\n")
    assert request_refusal(invite) is None  # Max-Forwards 0068 is 68, not "out of range"


@pytest.mark.parametrize(
    ("text", "digits", "value"),
    [("0068", 3, 68), ("0009", 10, 9), ("0", 3, 0), ("000", 3, 0), ("0" * 5000 + "1", 3, 1),
     ("256", 3, 256), ("1000", 3, None), ("", 3, None), ("6 8", 3, None), ("\u00b2", 3, None),
     ("9" * 11, 10, None)],
)  # fmt: skip
def test_ascii_int_counts_the_value_not_leading_zeros(
    text: str, digits: int, value: int | None
) -> None:
    assert ascii_int(text, digits) == value


def test_compact_forms_ipv6_via_and_escaped_user() -> None:
    message = parse_request(sample("compact_escaped.sip"))
    assert message.method == "MESSAGE"
    assert message.top_via.host == "[2001:db8::10]" and message.top_via.port == 5070
    assert "rport" in message.top_via.params
    assert message.from_addr.display == 'Alice, the "first"'
    assert message.to_addr.uri.scheme == "tel" and message.to_addr.uri.user == "+15105555555"
    assert message.get_all("Supported") == ["path", "timer"]
    assert message.content_type == "text/plain"
    assert message.body == b"hello\r\n"


def test_multi_value_headers_split_outside_quotes() -> None:
    invite = parse_request(sample("multi_contact.sip"))
    assert len(invite.get_all("Via")) == 2
    assert invite.get_all("Record-Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    contacts = invite.get_all("Contact")
    assert contacts[0] == '"Smith, John" <sip:john@1.2.3.4>'
    assert contacts[1].endswith(";q=0.5")


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("bad_content_length.sip", 400),
        ("bad_version.sip", 505),
        ("missing_call_id.sip", 400),
        ("cseq_mismatch.sip", 400),
    ],
)
def test_malformed_samples_raise_sip_parse_error(name: str, status: int) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(sample(name))
    assert info.value.sip_status == status


def test_from_and_to_are_validated_on_first_use() -> None:
    message = parse_message(sample("unterminated_quote.sip"))
    with pytest.raises(SipParseError):
        message.from_addr  # noqa: B018


def test_salvage_gives_answerable_request_only_when_possible() -> None:
    salvaged = salvage_request(sample("bad_content_length.sip"))
    assert salvaged is not None and salvaged.call_id == "clerr@example.com"
    response = build_response(salvaged, 400, "Bad Request", to_tag="x")
    assert response.get("To") == "<sip:bob@example.com>;tag=x"
    no_call_id = salvage_request(sample("missing_call_id.sip"))  # Via + CSeq: answerable
    assert no_call_id is not None and no_call_id.get("Call-ID") is None
    assert salvage_request(b"OPTIONS sip:x SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n") is None


def test_content_length_required_on_stream_and_extra_bytes_ignored_on_udp() -> None:
    data = sample("sipp_bye.sip").replace(b"Content-Length: 0\r\n", b"")
    with pytest.raises(SipParseError):
        parse_message(data, stream=True)
    assert parse_request(data).body == b""
    padded = sample("sipp_bye.sip") + b"garbage"
    assert parse_request(padded).body == b""


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.replace(b"Content-Length: 0", b"Content-Length: -1"),
        lambda d: d.replace(b"Content-Length: 0", b"Content-Length: zero"),
        lambda d: d.replace(b"Content-Length: 0", b"Content-Length: 0\r\nl: 5"),
        lambda d: d.replace(b"CSeq: 2 BYE", b"CSeq: 99999999999 BYE"),
        lambda d: d.replace(b"Max-Forwards: 70", b"X-Big: " + b"a" * 9000),
        lambda d: d.replace(b"Max-Forwards: 70", b"X-H: 1\r\n" * 120),
        lambda d: d + b"\x00" * MAX_MESSAGE_BYTES,
        lambda d: d.replace(b"Via: SIP/2.0/UDP", b"Via: SIP/2.0UDP"),
        lambda d: d.replace(b"From: sipp", b"From: \xff\xfe"),
        lambda d: d.replace(b"BYE sip:", b"BYE  sip:"),
        lambda d: d.replace(b"Subject: Performance Test", b"Bad Header Line"),
        lambda d: b"",
        lambda d: b"SIP/2.0 2000 OK\r\n\r\n",
        lambda d: d.replace(b"127.0.0.1:45123;branch", b"127.0.0.1:99999;branch"),
    ],
)
def test_torture_mutations_raise_only_sip_parse_error(mutate: object) -> None:
    data = mutate(sample("sipp_bye.sip"))  # type: ignore[operator]
    with pytest.raises(SipParseError):
        parse_message(data)


def test_random_garbage_never_raises_anything_else() -> None:
    import random

    rng = random.Random(4475)
    base = sample("rfc4475/wsinv.sip")
    for _ in range(2000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            message = parse_message(bytes(data))
            message.top_via  # noqa: B018
        except SipParseError:
            pass


def test_frame_length_for_streams() -> None:
    data = sample("sipp_invite.sip")
    assert frame_length(data[:50]) is None
    assert frame_length(data[:-5]) is None
    assert frame_length(data + b"INVITE") == len(data)
    with pytest.raises(SipParseError):
        frame_length(sample("sipp_bye.sip").replace(b"Content-Length: 0\r\n", b""))
    with pytest.raises(SipParseError):
        frame_length(b"x" * (MAX_MESSAGE_BYTES + 1))


def test_build_response_copies_mandatory_headers_and_adds_tag() -> None:
    invite = parse_request(sample("multi_contact.sip"))
    response = build_response(invite, 180, "Ringing", to_tag="t1", headers=[("Server", "x")])
    names = [name for name, _ in response.headers]
    assert names == [
        "Via",
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Record-Route",
        "Record-Route",
        "Server",
    ]
    assert response.get("To") == "<sip:bob@example.com>;tag=t1"
    wire = response.serialize()
    assert wire.startswith(b"SIP/2.0 180 Ringing\r\n") and wire.endswith(
        b"Content-Length: 0\r\n\r\n"
    )
    rejected = build_response(invite, 486, "Busy Here", to_tag="t1")
    assert rejected.get("Record-Route") is None


def test_header_accessors() -> None:
    message = parse_request(sample("sipp_bye.sip"))
    message.set("subject", "a")
    assert message.get("s") == "a"
    message.add("X-Foo", "1")
    message.add("x-foo", "2")
    assert message.get_all("X-FOO") == ["1", "2"]
    message.remove("x-foo")
    assert message.get("X-Foo") is None


def test_reason_header_is_always_well_formed() -> None:
    name, value = reason_header(400, 'bad "quote" \\ and\r\nnewline')
    assert name == "Reason"
    assert value == 'SIP;cause=400;text="bad quote  andnewline"'


def test_parsed_views_follow_header_edits() -> None:
    """From/To/Via/CSeq/Call-ID and get() are memoised; any edit of ``headers`` is seen."""
    message = parse_request(sample("sipp_bye.sip"))
    assert message.from_addr.tag == "13119SIPpTag001"
    assert message.to_addr.tag == "3976e6bfa6856f40"
    assert message.top_via.branch == "z9hG4bK-13119-1-7"
    assert message.cseq == (2, "BYE")
    assert message.call_id == "1-13119@127.0.0.1"
    assert message.from_addr is message.from_addr  # parsed once
    index = [name for name, _ in message.headers].index("From")
    message.headers[index] = ("From", "<sip:bob@example.com>;tag=new")  # item assignment
    assert message.from_addr.tag == "new"
    assert message.get("From") == "<sip:bob@example.com>;tag=new"
    message.headers.insert(0, ("Via", "SIP/2.0/TCP 10.0.0.9;branch=z9hG4bKtop"))  # insert
    assert message.top_via.branch == "z9hG4bKtop"
    assert message.get_all("v")[1] == "SIP/2.0/UDP 127.0.0.1:45123;branch=z9hG4bK-13119-1-7"
    message.set("CSeq", "3 BYE")
    assert message.cseq == (3, "BYE")
    message.headers = [h for h in message.headers if h[0] != "Call-ID"]  # a new list
    with pytest.raises(SipParseError):
        message.call_id  # noqa: B018
    message.headers.append(("Call-ID", "again"))  # append
    assert message.call_id == "again"
    message.remove("To")
    assert message.get("t") is None


def test_get_prefers_exact_then_canonical_spelling() -> None:
    message = SipRequest("OPTIONS", "sip:a@b", [("x-foo", "1"), ("X-Foo", "2"), ("via", "3")])
    assert message.get("X-Foo") == "2"
    assert message.get("x-foo") == "1"
    assert message.get("X-FOO") == "1"
    assert message.get("Via") == "3"
    assert message.get_all("x-FOO") == ["1", "2"]


def test_folded_and_bare_lf_headers_parse_like_crlf() -> None:
    crlf = sample("sipp_bye.sip").replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    bare = crlf.replace(b"\r\n", b"\n")
    folded = crlf.replace(b"Subject: Performance Test", b"Subject: Performance\r\n  Test")
    expected = parse_request(crlf).headers
    assert parse_request(bare).headers == expected
    assert parse_request(folded).headers == expected
