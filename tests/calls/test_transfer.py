"""transfer.py: a REFER's target, and the refusals before anything is transferred (SPEC §5);
the accepted path (NOTIFYs, the refer document, the hand-over) runs end to end in
tests/e2e/test_refer.py."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from rcmlrouter.calls.transfer import on_refer, refer_target
from rcmlrouter.calls.wiring import CallWiring
from rcmlrouter.sip.message import SipRequest
from support.call_parts import RecordingNotifications, routed_state


def refer(**headers: str) -> Any:
    request = SipRequest("REFER", "sip:x@example.com", list(headers.items()))
    incoming = SimpleNamespace(request=request, responses=[])
    incoming.respond = lambda status, reason=None, **kw: incoming.responses.append(
        (status, reason, kw.get("headers"))
    )
    return incoming


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<sip:200@pbx.example.com>", "200"),
        ("sip:+14155550100@example.com;user=phone", "+14155550100"),
        ('"Desk" <sips:desk@example.com?Replaces=abc>', "desk"),
        ("<sip:example.com>", None),
        ("<not a uri", None),
    ],
)
def test_refer_target(value: str, expected: str | None) -> None:
    assert refer_target(refer(**{"Refer-To": value}).request) == expected


class Bridge:
    def __init__(self, active: bool, **number_fields: Any) -> None:
        self.state = routed_state(**number_fields)
        self.notifications = RecordingNotifications()
        services: Any = SimpleNamespace(notifications=self.notifications)
        self.wiring = CallWiring(services, None, transferred=None)  # type: ignore[arg-type]
        self.active = active
        winner_call = SimpleNamespace(send_in_dialog=None)
        self.winner: Any = SimpleNamespace(call=winner_call, to="bob") if active else None
        self.caller_call: Any = SimpleNamespace()
        self.legs: list[Any] = []
        self.transfer = None
        self.callee_dialog = None
        self.spawned: list[Any] = []

    def spawn(self, coroutine: Any) -> None:
        self.spawned.append(dict(coroutine.cr_frame.f_locals))  # the transfer's arguments
        coroutine.close()


def test_no_transfer_before_both_parties_are_connected() -> None:
    bridge = Bridge(active=False, refer_url="http://app/refer")
    request = refer(**{"Refer-To": "<sip:200@pbx>"})
    on_refer(request, bridge, from_callee=False)  # type: ignore[arg-type]
    [(status, _, headers)] = request.responses
    assert status == 403 and "not answered" in headers[0][1]


def test_a_missing_refer_to_is_a_bad_request() -> None:
    bridge = Bridge(active=True, refer_url="http://app/refer")
    request = refer()
    on_refer(request, bridge, from_callee=True)  # type: ignore[arg-type]
    assert request.responses[0][0] == 400 and bridge.spawned == []


def test_a_number_without_a_refer_url_refuses_and_notifies() -> None:
    bridge = Bridge(active=True)
    request = refer(**{"Refer-To": "<sip:200@pbx>"})
    on_refer(request, bridge, from_callee=True)  # type: ignore[arg-type]
    assert request.responses[0][0] == 403 and bridge.notifications.codes == [13230]
    assert bridge.notifications.added[0].call_sid == bridge.state.call_sid


def test_an_accepted_refer_names_the_three_parties() -> None:
    bridge = Bridge(active=True, refer_application_sid="AP1")
    request = refer(**{"Refer-To": "<sip:200@pbx>", "Contact": "<sip:alice@10.0.0.1>"})
    on_refer(request, bridge, from_callee=False)  # type: ignore[arg-type]
    assert request.responses == [(202, "Accepted", None)] and len(bridge.spawned) == 1
    [transfer] = bridge.spawned
    assert transfer["transferor"] is bridge.caller_call and not transfer["from_callee"]
    assert transfer["params"] == {
        "ReferTarget": "200",
        "Transferor": "alice",
        "Transferee": "bob",  # the caller transferred: the dialed leg's user
    }
