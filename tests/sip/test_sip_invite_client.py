"""INVITE client transaction, CANCEL, UAC dialog and target resolution: pure, hand-driven timers."""

from __future__ import annotations

import pytest
from test_sip_transaction import CONFIG, Harness, request

from rcmlrouter.errors import SipError
from rcmlrouter.sip.dialog import Dialog
from rcmlrouter.sip.invite_client import InviteClientTransaction, build_cancel
from rcmlrouter.sip.message import SipRequest, SipResponse
from rcmlrouter.sip.resolver import Resolver, is_ip_literal, uri_destination
from rcmlrouter.sip.response import build_response
from rcmlrouter.sip.transaction import State
from rcmlrouter.sip.uri import parse_uri


class Recorder:
    def __init__(self, reliable: bool = False) -> None:
        self.h = Harness(reliable)
        self.results: list[SipResponse | None] = []
        self.provisional: list[SipResponse] = []
        self.invite = request("sipp_invite.sip")
        self.txn = InviteClientTransaction(
            ("b", "INVITE"), self.h.link, self.invite, self.results.append, self.provisional.append
        )
        self.txn.start()

    def sent(self, method: str) -> list[SipRequest]:
        return [m for m in self.h.sent if isinstance(m, SipRequest) and m.method == method]

    def respond(self, status: int, tag: str = "t") -> SipResponse:
        response = build_response(self.invite, status, "X", to_tag=tag)
        self.txn.on_response(response)
        return response


def test_timer_a_doubles_without_t2_cap_until_timer_b() -> None:
    r = Recorder()
    r.h.timers.advance(CONFIG.timeout - 0.01)  # sends at 0, .5, 1.5, 3.5, 7.5, 15.5, 31.5
    assert len(r.sent("INVITE")) == 7 and r.results == []
    r.h.timers.advance(0.02)
    assert r.results == [None] and r.h.done == [r.txn] and r.txn.settled


def test_reliable_transport_sends_once() -> None:
    r = Recorder(reliable=True)
    r.h.timers.advance(CONFIG.timeout - 0.01)
    assert len(r.sent("INVITE")) == 1


def test_proceeding_stops_retransmissions_and_timer_b() -> None:
    r = Recorder()
    r.respond(100, tag="")
    r.respond(183)
    assert r.txn.state is State.PROCEEDING and [p.status for p in r.provisional] == [100, 183]
    r.h.timers.advance(10 * CONFIG.timeout)  # rings on: the TU decides (CANCEL)
    assert len(r.sent("INVITE")) == 1 and r.results == [] and not r.txn.settled


def test_cancel_sent_bounds_the_wait_for_a_final_response() -> None:
    r = Recorder()
    r.respond(180)
    r.txn.cancel_sent()
    r.h.timers.advance(CONFIG.timeout + 0.01)
    assert r.results == [None] and r.txn.state is State.TERMINATED


def test_2xx_accepted_passes_every_2xx_up_until_timer_m() -> None:
    r = Recorder()
    ok = r.respond(200)
    assert r.txn.state is State.ACCEPTED and r.results == [ok] and r.txn.settled
    assert r.sent("ACK") == []  # the 2xx ACK belongs to the dialog
    other = r.respond(200, tag="fork2")
    assert r.results == [ok, other]
    r.respond(486)  # a late non-2xx after a 2xx: ignored
    assert len(r.results) == 2
    r.h.timers.advance(CONFIG.timeout + 0.01)
    assert r.h.done == [r.txn]


def test_non2xx_acked_in_transaction_and_repeated_then_timer_d() -> None:
    r = Recorder()
    r.respond(180)
    busy = r.respond(486)
    assert r.results == [busy] and r.txn.state is State.COMPLETED
    r.respond(486)
    acks = r.sent("ACK")
    assert len(acks) == 2 and acks[0] is acks[1] and len(r.results) == 1
    assert acks[0].get("Via") == r.invite.get("Via") and acks[0].to_addr.tag == "t"
    r.h.timers.advance(CONFIG.timeout + 0.01)
    assert r.h.done == [r.txn]


def test_timer_d_is_zero_on_reliable_transports() -> None:
    r = Recorder(reliable=True)
    r.respond(603)
    r.h.timers.advance(0)
    assert r.h.done == [r.txn]


def test_transport_error() -> None:
    r = Recorder()
    r.txn.on_transport_error()
    assert r.results == [None] and r.txn.transport_failed and r.h.done == [r.txn]


def test_cancel_copies_the_invite_transaction_identity() -> None:
    invite = request("sipp_invite.sip")
    invite.headers.append(("Route", "<sip:proxy.example;lr>"))
    cancel = build_cancel(invite, 'SIP;cause=487;text="no answer"')
    assert cancel.uri == invite.uri and cancel.get("Via") == invite.get("Via")
    assert cancel.cseq == (invite.cseq[0], "CANCEL") and cancel.get("To") == invite.get("To")
    assert cancel.get_all("Route") == ["<sip:proxy.example;lr>"]
    assert cancel.get("Reason") == 'SIP;cause=487;text="no answer"'


def uac_response(status: int, tag: str) -> tuple[SipRequest, SipResponse]:
    invite = request("sipp_invite.sip")
    response = build_response(invite, status, "OK", to_tag=tag)
    response.headers += [
        ("Record-Route", "<sip:p1.example;lr>"),
        ("Record-Route", "<sip:p2.example;lr>"),
        ("Contact", "<sip:callee@10.0.0.9:5070>"),
    ]
    return invite, response


def test_uac_dialog_route_set_reversed_target_from_contact() -> None:
    invite, ok = uac_response(200, "callee")
    dialog = Dialog.from_uac_response(invite, ok)
    assert dialog.key == (invite.call_id, invite.from_addr.tag, "callee")
    assert dialog.route_set == ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]
    assert dialog.remote_target == "sip:callee@10.0.0.9:5070"
    assert dialog.next_hop().host == "p2.example"
    ack = dialog.build_request("ACK", "v", cseq=invite.cseq[0])
    assert ack.cseq == (invite.cseq[0], "ACK") and ack.uri == "sip:callee@10.0.0.9:5070"
    assert ack.get("From") == invite.get("From") and ack.to_addr.tag == "callee"
    assert ack.get_all("Route") == dialog.route_set
    bye = dialog.build_request("BYE", "v")
    assert bye.cseq == (invite.cseq[0] + 1, "BYE")
    callee_request = SipRequest("INFO", "sip:x", [("CSeq", "1 INFO")])
    assert dialog.accept_remote_cseq(callee_request)  # remote CSeq unknown until now


def test_uac_dialog_without_contact_targets_the_request_uri() -> None:
    invite = request("sipp_invite.sip")
    early = build_response(invite, 180, "Ringing", to_tag="e1")
    early.remove("Contact")
    assert Dialog.from_uac_response(invite, early).remote_target == invite.uri


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sip:bob@192.0.2.1", ("udp", "192.0.2.1", 5060)),
        ("sip:bob@[2001:db8::1]:5080;transport=TCP", ("tcp", "2001:db8::1", 5080)),
        ("sip:bob@pbx.example.com;transport=tcp", ("tcp", "pbx.example.com", 5060)),
        ("sips:bob@h", ("tls", "h", 5061)),
        ("sip:bob@h:5071;transport=tls", ("tls", "h", 5071)),
    ],
)
def test_uri_destination(uri: str, expected: tuple[str, str, int]) -> None:
    assert uri_destination(parse_uri(uri)) == expected


@pytest.mark.parametrize(
    ("uri", "status"), [("sip:bob@h;transport=sctp", 503), ("tel:+14155550100", 416)]
)
def test_uri_destination_refusals(uri: str, status: int) -> None:
    with pytest.raises(SipError) as caught:
        uri_destination(parse_uri(uri))
    assert caught.value.sip_status == status


async def test_resolver_caches_with_ttl_and_bound() -> None:
    now = [0.0]
    resolver = Resolver(ttl=30.0, max_entries=2, clock=lambda: now[0])
    assert is_ip_literal("[::1]") and resolver.cached("127.0.0.1") == ["127.0.0.1"]
    assert "127.0.0.1" in await resolver.resolve("localhost")
    assert resolver.cached("LOCALHOST") is not None
    now[0] = 30.0
    assert resolver.cached("localhost") is None and len(resolver) == 0
    resolver._store("a", ["192.0.2.1"])
    resolver._store("b", ["192.0.2.2"])
    resolver._store("c", ["192.0.2.3"])
    assert len(resolver) == 2 and resolver.cached("a") is None
    with pytest.raises(SipError) as caught:
        await resolver.resolve("no-such-host.invalid")
    assert caught.value.sip_status == 503
