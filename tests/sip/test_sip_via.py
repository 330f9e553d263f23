"""The Vias we write (sip/via.py): RFC 3581 stamping of incoming requests, our own Via."""

from __future__ import annotations

from rcmlrouter.sip.message import SipRequest
from rcmlrouter.sip.via import stamp_received, via_value


def request(*vias: str) -> SipRequest:
    headers = [("Via", via) for via in vias]
    headers += [
        ("From", "<sip:a@example.com>;tag=1"),
        ("To", "<sip:b@example.com>"),
        ("Call-ID", "c1"),
        ("CSeq", "1 INVITE"),
    ]
    return SipRequest("INVITE", "sip:b@example.com", headers)


def test_received_and_rport_are_stamped_on_the_top_via_only() -> None:
    message = request("SIP/2.0/UDP pbx.example.com:5070;branch=z9hG4bK1;rport", "SIP/2.0/UDP x")
    stamp_received(message, "192.0.2.7", 40001)
    assert message.headers[0] == (
        "Via",
        "SIP/2.0/UDP pbx.example.com:5070;branch=z9hG4bK1;rport=40001;received=192.0.2.7",
    )
    assert message.headers[1] == ("Via", "SIP/2.0/UDP x")


def test_received_without_rport_when_the_host_differs() -> None:
    message = request("SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bK2")
    stamp_received(message, "::1", 40002)
    via = message.top_via
    assert via.params == {"branch": "z9hG4bK2", "received": "::1"}


def test_a_via_that_names_its_source_stays_as_it_is() -> None:
    message = request("SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK3")
    top = message.headers[0]
    stamp_received(message, "192.0.2.7", 5060)
    assert message.headers[0] is top


def test_our_via_asks_for_rport() -> None:
    assert via_value("udp", "192.0.2.1", 5060, "z9hG4bKa") == (
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa;rport"
    )
    assert via_value("tls", "::1", 5061, "z9hG4bKb") == (
        "SIP/2.0/TLS [::1]:5061;branch=z9hG4bKb;rport"
    )
