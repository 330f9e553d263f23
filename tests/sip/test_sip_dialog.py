from __future__ import annotations

from pathlib import Path

from rcmlrouter.sip.dialog import Dialog
from rcmlrouter.sip.message import SipRequest
from rcmlrouter.sip.wire import parse_message

DATA = Path(__file__).resolve().parent.parent / "data" / "sip"


def request(name: str) -> SipRequest:
    message = parse_message((DATA / name).read_bytes())
    assert isinstance(message, SipRequest)
    return message


def test_uas_dialog_from_invite_and_bye() -> None:
    invite = request("sipp_invite.sip")
    dialog = Dialog.from_invite(invite, "local1")
    assert dialog.key == ("1-13119@127.0.0.1", "local1", "13119SIPpTag001")
    assert dialog.remote_target == "sip:sipp@127.0.0.1:45123"
    bye = dialog.build_request("BYE", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx")
    assert bye.uri == "sip:sipp@127.0.0.1:45123"
    assert bye.from_addr.tag == "local1" and bye.to_addr.tag == "13119SIPpTag001"
    assert bye.cseq == (1, "BYE") and bye.call_id == invite.call_id
    notify = dialog.build_request("NOTIFY", "v", [("Event", "refer")], b"SIP/2.0 200 OK")
    assert notify.cseq == (2, "NOTIFY") and notify.get("Event") == "refer"
    assert dialog.next_hop().port == 45123


def test_route_set_from_record_route() -> None:
    invite = request("multi_contact.sip")
    dialog = Dialog.from_invite(invite, "l")
    assert dialog.route_set == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert dialog.next_hop().host == "p1.example.com"
    bye = dialog.build_request("BYE", "v")
    assert bye.get_all("Route") == dialog.route_set
    assert bye.uri == "sip:john@1.2.3.4"


def test_remote_cseq_must_increase() -> None:
    invite = request("sipp_invite.sip")
    dialog = Dialog.from_invite(invite, "l")
    bye = request("sipp_bye.sip")
    assert dialog.accept_remote_cseq(bye)
    assert not dialog.accept_remote_cseq(bye)  # same CSeq again: out of order
    ack = SipRequest("ACK", "sip:x", [("CSeq", "1 ACK")])
    assert dialog.accept_remote_cseq(ack)
