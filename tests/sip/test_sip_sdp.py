from __future__ import annotations

import pytest

from rcmlrouter.errors import SipParseError
from rcmlrouter.sip.sdp import SdpNegotiationError, build_answer, build_offer, parse_offer

PJSUA_OFFER = (
    b"v=0\r\no=- 3917 3917 IN IP4 192.0.2.10\r\ns=pjmedia\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 96 9 8 0 101\r\nc=IN IP4 192.0.2.11\r\n"
    b"a=rtpmap:96 opus/48000/2\r\na=rtpmap:9 G722/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
    b"a=sendrecv\r\na=ptime:20\r\nm=video 5000 RTP/AVP 31\r\n"
)


def test_parse_offer_uses_media_level_connection() -> None:
    offer = parse_offer(PJSUA_OFFER)
    assert (offer.connection_ip, offer.port) == ("192.0.2.11", 4000)
    assert offer.payload_types == [96, 9, 8, 0, 101]
    assert offer.telephone_event_pt == 101 and offer.fmtp[101] == "0-16"
    assert offer.ptime == 20


def test_answer_picks_first_supported_codec_and_telephone_event() -> None:
    answer = build_answer(parse_offer(PJSUA_OFFER), "198.51.100.1", 20000)
    assert (answer.codec, answer.payload_type, answer.telephone_event_pt) == ("PCMA", 8, 101)
    assert (answer.remote_ip, answer.remote_port) == ("192.0.2.11", 4000)
    text = answer.sdp.decode()
    assert "m=audio 20000 RTP/AVP 8 101\r\n" in text
    assert "c=IN IP4 198.51.100.1\r\n" in text
    assert "a=rtpmap:101 telephone-event/8000\r\n" in text and "a=ptime:20\r\n" in text
    assert parse_offer(answer.sdp).payload_types == [8, 101]


def test_static_payload_without_rtpmap_and_direction_mirrored() -> None:
    offer = parse_offer(b"v=0\nc=IN IP6 ::1\nm=audio 1234 RTP/AVP 18 0\na=sendonly\n")
    answer = build_answer(offer, "::1", 3000)
    assert answer.codec == "PCMU" and answer.telephone_event_pt is None
    assert "a=recvonly" in answer.sdp.decode() and "IN IP6 ::1" in answer.sdp.decode()


def test_no_common_codec_maps_to_488() -> None:
    offer = parse_offer(
        b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 9 96\r\na=rtpmap:96 opus/48000\r\n"
    )
    with pytest.raises(SdpNegotiationError) as info:
        build_answer(offer, "127.0.0.1", 1)
    assert info.value.sip_status == 488


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"v=0\r\nm=video 1 RTP/AVP 31\r\n",
        b"v=0\r\nm=audio 1 RTP/AVP 0\r\n",
        b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n",
        b"\xff\xfe",
    ],
)
def test_bad_offers(body: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_offer(body)


def test_build_offer_round_trips() -> None:
    offer = parse_offer(build_offer("127.0.0.1", 4000))
    assert offer.payload_types == [0, 8, 101] and offer.telephone_event_pt == 101
