from __future__ import annotations

import weakref
from pathlib import Path

import pytest

from rcmlrouter.sip.invite_client import InviteClientTransaction
from rcmlrouter.sip.message import SipMessage, SipRequest, SipResponse
from rcmlrouter.sip.response import build_response
from rcmlrouter.sip.timers import ManualTimers, TimerConfig
from rcmlrouter.sip.transaction import (
    InviteServerTransaction,
    Link,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    State,
    Transaction,
    server_key,
)
from rcmlrouter.sip.wire import parse_message

DATA = Path(__file__).resolve().parent.parent / "data" / "sip"
CONFIG = TimerConfig(t1=0.5, t2=4.0, t4=5.0)


def request(name: str) -> SipRequest:
    message = parse_message((DATA / name).read_bytes())
    assert isinstance(message, SipRequest)
    return message


class Harness:
    def __init__(self, reliable: bool = False) -> None:
        self.sent: list[SipMessage] = []
        self.done: list[Transaction] = []
        self.timers = ManualTimers()
        self.link = Link(self.sent.append, self.timers, CONFIG, reliable, self.done.append)


def test_server_key_matches_ack_to_invite_and_separates_cancel() -> None:
    invite = request("sipp_invite.sip")
    key = server_key(invite, invite.top_via)
    assert key == ("z9hG4bK-13119-1-0", "127.0.0.1:45123", "INVITE")
    ack = SipRequest("ACK", invite.uri, list(invite.headers))
    ack.set("CSeq", "1 ACK")
    assert server_key(ack, ack.top_via) == key
    old = request("rfc4475/wsinv.sip")  # branch without magic cookie → RFC 2543 matching
    assert server_key(old, old.top_via)[0] == "rfc2543"


def test_invite_server_non2xx_retransmits_with_timer_g_until_ack_then_timer_i() -> None:
    h = Harness()
    invite = request("sipp_invite.sip")
    txn = InviteServerTransaction(("k",), h.link, invite)
    txn.respond(build_response(invite, 100, "Trying"))
    txn.on_retransmit()
    assert [m.status for m in h.sent] == [100, 100]  # type: ignore[attr-defined]
    txn.respond(build_response(invite, 486, "Busy Here", to_tag="t"))
    h.timers.advance(0.5)  # G: 0.5
    h.timers.advance(1.0)  # G: 1.0
    assert [m.status for m in h.sent] == [100, 100, 486, 486, 486]  # type: ignore[attr-defined]
    assert txn.on_ack() is True and txn.state is State.CONFIRMED
    h.timers.advance(10)
    assert len(h.sent) == 5 and h.done == [txn] and txn.state is State.TERMINATED


def test_invite_server_timer_h_without_ack() -> None:
    h = Harness()
    invite = request("sipp_invite.sip")
    txn = InviteServerTransaction(("k",), h.link, invite)
    timed_out: list[bool] = []
    txn.on_timeout = lambda: timed_out.append(True)
    txn.respond(build_response(invite, 404, "Not Found", to_tag="t"))
    h.timers.advance(31.9)
    assert not h.done
    h.timers.advance(0.2)
    assert h.done == [txn] and timed_out == [True]
    intervals = len(h.sent)
    assert 9 <= intervals <= 12  # 0.5,1,2,4,4,4... capped at T2


def test_invite_server_2xx_enters_accepted_and_absorbs_retransmits() -> None:
    h = Harness(reliable=True)
    invite = request("sipp_invite.sip")
    txn = InviteServerTransaction(("k",), h.link, invite)
    txn.respond(build_response(invite, 200, "OK", to_tag="t"))
    assert txn.state is State.ACCEPTED
    txn.on_retransmit()
    assert len(h.sent) == 2
    assert txn.on_ack() is False  # ACK for 2xx goes to the dialog
    h.timers.advance(CONFIG.timeout)
    assert h.done == [txn]


def test_non_invite_server_caches_final_and_timer_j() -> None:
    h = Harness()
    bye = request("sipp_bye.sip")
    txn = NonInviteServerTransaction(("k",), h.link, bye)
    txn.on_retransmit()
    assert h.sent == []
    txn.respond(build_response(bye, 200, "OK"))
    txn.respond(build_response(bye, 500, "late"))
    txn.on_retransmit()
    assert [m.status for m in h.sent] == [200, 200]  # type: ignore[attr-defined]
    h.timers.advance(31.9)
    assert not h.done
    h.timers.advance(0.2)
    assert h.done == [txn]


def test_non_invite_server_reliable_terminates_at_once() -> None:
    h = Harness(reliable=True)
    bye = request("sipp_bye.sip")
    txn = NonInviteServerTransaction(("k",), h.link, bye)
    txn.respond(build_response(bye, 200, "OK"))
    h.timers.advance(0)
    assert h.done == [txn]


def test_non_invite_client_timer_e_and_f() -> None:
    h = Harness()
    results: list[SipResponse | None] = []
    bye = request("sipp_bye.sip")
    txn = NonInviteClientTransaction(("b", "BYE"), h.link, bye, results.append)
    txn.start()
    h.timers.advance(0.5 + 1 + 2 + 4)
    assert len(h.sent) == 5  # 0, .5, 1.5, 3.5, 7.5
    h.timers.advance(32)
    assert results == [None] and h.done == [txn]


def test_non_invite_client_gets_final_then_timer_k() -> None:
    h = Harness()
    results: list[SipResponse | None] = []
    bye = request("sipp_bye.sip")
    txn = NonInviteClientTransaction(("b", "BYE"), h.link, bye, results.append)
    txn.start()
    ok = build_response(bye, 200, "OK")
    txn.on_response(build_response(bye, 100, "Trying"))
    txn.on_response(ok)
    txn.on_response(ok)
    assert results == [ok]
    h.timers.advance(4.9)
    assert not h.done
    h.timers.advance(0.2)
    assert h.done == [txn] and len(h.sent) == 1


def test_a_lingering_client_transaction_keeps_neither_request_nor_result_callback() -> None:
    """Timer K lingers 5 s: the request and the callback (its caller's future, holding the
    response) are let go at the final response, not 5 s later."""
    h = Harness()

    class Results(list[SipResponse | None]):
        pass

    results = Results()
    kept = weakref.ref(results)
    bye = request("sipp_bye.sip")
    txn = NonInviteClientTransaction(("b", "BYE"), h.link, bye, results.append)
    txn.start()
    txn.on_response(build_response(bye, 200, "OK"))
    assert [r.status for r in results if r is not None] == [200]
    del results
    assert kept() is None
    with pytest.raises(RuntimeError):
        txn.request  # noqa: B018
    txn.on_response(build_response(bye, 200, "OK"))  # a retransmission: absorbed


def test_invite_client_acks_non2xx_and_timer_a() -> None:
    h = Harness()
    results: list[SipResponse | None] = []
    provisional: list[SipResponse] = []
    invite = request("sipp_invite.sip")
    txn = InviteClientTransaction(
        ("b", "INVITE"), h.link, invite, results.append, provisional.append
    )
    txn.start()
    h.timers.advance(1.6)  # A at 0.5, 1.5
    assert len(h.sent) == 3
    txn.on_response(build_response(invite, 180, "Ringing", to_tag="r"))
    h.timers.advance(5)
    assert len(h.sent) == 3 and len(provisional) == 1
    busy = build_response(invite, 486, "Busy Here", to_tag="r")
    txn.on_response(busy)
    txn.on_response(busy)  # retransmitted final → ACK again, TU not told twice
    acks = [m for m in h.sent if isinstance(m, SipRequest) and m.method == "ACK"]
    assert len(acks) == 2 and results == [busy]
    assert acks[0].get("Via") == invite.get("Via") and acks[0].to_addr.tag == "r"
    assert acks[0].cseq == (1, "ACK")
    h.timers.advance(32.1)
    assert h.done == [txn]


def test_invite_client_timer_b() -> None:
    h = Harness()
    results: list[SipResponse | None] = []
    txn = InviteClientTransaction(
        ("b", "INVITE"), h.link, request("sipp_invite.sip"), results.append, lambda r: None
    )
    txn.start()
    h.timers.advance(CONFIG.timeout + 0.1)
    assert results == [None] and h.done == [txn]
