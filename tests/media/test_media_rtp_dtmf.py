"""RTP header packing/parsing (RFC 3550) and DTMF events (RFC 4733) and SIP INFO bodies."""

from __future__ import annotations

import pytest

from rcmlrouter.media import dtmf, rtp


def test_header_round_trip() -> None:
    packet = rtp.RtpPacket(8, 65535, 0xFFFFFFFF, 0x12345678, True, b"\xd5" * 160)
    data = rtp.pack(packet)
    assert data[:2] == b"\x80\x88"
    assert len(data) == 172
    assert rtp.parse(data) == packet


def test_header_fields_wrap() -> None:
    data = rtp.pack_header(0, 65536 + 5, 2**32 + 7, 1)
    parsed = rtp.parse(data)
    assert parsed is not None
    assert (parsed.sequence, parsed.timestamp, parsed.marker) == (5, 7, False)


def test_parse_skips_csrc_extension_and_padding() -> None:
    first = 0x80 | 0x20 | 0x10 | 2  # padding, extension, two CSRCs
    header = bytes([first, 0]) + (7).to_bytes(2, "big") + (160).to_bytes(4, "big") + bytes(4)
    csrcs = bytes(8)
    extension = b"\xbe\xde\x00\x01" + bytes(4)
    data = header + csrcs + extension + b"abc" + b"\x00\x00\x03"
    parsed = rtp.parse(data)
    assert parsed is not None
    assert parsed.payload == b"abc"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80" * 11,
        b"\x40" + bytes(11),
        b"\x80\xc8" + bytes(10),
        b"\xa0\x00" + bytes(10) + b"\xff",
    ],
)
def test_parse_rejects_what_is_not_rtp(data: bytes) -> None:
    assert rtp.parse(data) is None


def event(digit: str, end: bool, duration: int = 800) -> bytes:
    return dtmf.TelephoneEvent(dtmf.EVENT_DIGITS.index(digit), end, 10, duration).pack()


def test_event_payload_layout() -> None:
    assert event("#", True, 1280) == b"\x0b\x8a\x05\x00"
    parsed = dtmf.parse_event(b"\x05\x0a\x00\xa0")
    assert parsed == dtmf.TelephoneEvent(5, False, 10, 160)
    assert parsed.digit == "5"
    assert dtmf.parse_event(b"\x05") is None


def test_receiver_counts_the_redundant_ends_once() -> None:
    receiver = dtmf.DtmfReceiver()
    got: list[str] = []
    for duration in (160, 320, 480):
        got += receiver.feed(1000, event("5", False, duration))
    for _ in range(3):
        got += receiver.feed(1000, event("5", True))
    assert got == ["5"]
    got += receiver.feed(1000, event("5", True))  # a late retransmission
    assert got == ["5"]


def test_receiver_same_digit_twice_is_two_presses() -> None:
    receiver = dtmf.DtmfReceiver()
    got = []
    for timestamp in (1000, 3000):
        got += receiver.feed(timestamp, event("1", False))
        for _ in range(3):
            got += receiver.feed(timestamp, event("1", True))
    assert got == ["1", "1"]


def test_receiver_event_without_end_is_reported_when_the_next_begins() -> None:
    receiver = dtmf.DtmfReceiver()
    assert receiver.feed(1000, event("7", False)) == []
    assert receiver.feed(5000, event("8", False)) == ["7"]
    assert receiver.flush() == ["8"]
    assert receiver.feed(5000, event("8", True)) == []


def test_event_packets_for_sending() -> None:
    packets = dtmf.event_packets("9", duration_ms=100)
    assert packets[0].marker and not any(p.marker for p in packets[1:])
    parsed = [dtmf.parse_event(p.payload) for p in packets]
    assert [p.duration for p in parsed if p] == [160, 320, 480, 640, 800, 800, 800]
    assert [p.end for p in parsed if p] == [False] * 4 + [True] * 3
    receiver = dtmf.DtmfReceiver()
    assert [digit for p in packets for digit in receiver.feed(42, p.payload)] == ["9"]


@pytest.mark.parametrize(
    ("content_type", "body", "digit"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", "5"),
        ("application/dtmf-relay", b"Signal= #\r\nDuration= 250\r\n", "#"),
        ("application/dtmf-relay", b"Signal=10\r\nDuration=160", "*"),
        ("Application/DTMF-Relay; charset=utf-8", b"signal=11", "#"),
        ("application/dtmf", b"3", "3"),
        ("application/dtmf", b"*\r\n", "*"),
        ("application/dtmf-relay", b"Duration=160", None),
        ("application/dtmf", b"x", None),
        ("text/plain", b"Signal=5", None),
        ("application/dtmf", b"\xff", None),
    ],
)
def test_sip_info_bodies(content_type: str, body: bytes, digit: str | None) -> None:
    assert dtmf.parse_info_dtmf(content_type, body) == digit


def test_valid_digits() -> None:
    assert dtmf.valid_digits("1234w#W*")
    assert not dtmf.valid_digits("12x")
