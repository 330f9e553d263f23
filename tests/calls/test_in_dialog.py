"""in_dialog.py: where each in-dialog request goes, and who owns a call's re-INVITEs and requests
at each moment (a recording stand-in for the SIP call; the requests are parsed SIP messages)."""

from __future__ import annotations

from typing import Any

import pytest

from rcmlrouter.calls.in_dialog import InDialog, Route, refer_refusal, route
from rcmlrouter.sip.message import SipRequest
from support.call_parts import routed_state


@pytest.mark.parametrize(
    ("method", "content_type", "bridged", "has_media", "expected"),
    [
        ("INFO", "application/dtmf-relay", False, True, Route.DIGIT),
        ("INFO", "application/dtmf", False, True, Route.DIGIT),
        ("INFO", "application/dtmf-relay", True, True, Route.RELAY_INFO),
        ("INFO", "application/media_control+xml", True, False, Route.RELAY_INFO),
        ("INFO", "application/json", False, True, Route.ACCEPT_INFO),
        ("INFO", "application/dtmf-relay", False, False, Route.ACCEPT_INFO),
        ("REFER", "", False, True, Route.REFER),
        ("REFER", "", True, False, Route.REFER),
        ("MESSAGE", "", True, True, Route.NOT_ALLOWED),
        ("UPDATE", "", False, False, Route.NOT_ALLOWED),
    ],
)
def test_route(
    method: str, content_type: str, bridged: bool, has_media: bool, expected: Route
) -> None:
    assert route(method, content_type, bridged=bridged, has_media=has_media) is expected


class SipCall:
    """Records the callbacks put on it (what IncomingCall / OutgoingCall keep)."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.reinvites: list[Any] = []

    def on_in_dialog_request(self, callback: Any) -> None:
        self.requests.append(callback)

    def on_reinvite(self, callback: Any) -> None:
        self.reinvites.append(callback)


class Incoming:
    def __init__(self, method: str, content_type: str = "", body: bytes = b"") -> None:
        headers = [("Content-Type", content_type)] if content_type else []
        self.request = SipRequest(method, "sip:x@example.com", headers, body)
        self.responses: list[tuple[int, list[tuple[str, str]]]] = []

    def respond(self, status: int, reason: str | None = None, **kwargs: Any) -> None:
        self.responses.append((status, kwargs.get("headers") or []))


class Bridge:
    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []

    def relay_info(self, request: Incoming, from_callee: bool) -> None:
        self.seen.append(("info", from_callee))

    def refer(self, request: Incoming, from_callee: bool) -> None:
        self.seen.append(("refer", from_callee))


class Media:
    def __init__(self) -> None:
        self.digits: list[str] = []

    def take_digit(self, request: Incoming, content_type: str) -> None:
        request.respond(200)
        self.digits.append(content_type)


def owner() -> tuple[InDialog, SipCall]:
    call = SipCall()
    return InDialog(call, routed_state()), call  # type: ignore[arg-type]


def test_reinvites_stay_with_the_sip_core_until_someone_owns_them() -> None:
    in_dialog, call = owner()
    assert len(call.requests) == 1 and call.reinvites == []
    media_answers: list[Any] = []
    relayed: list[Any] = []
    in_dialog.own_reinvites(media_answers.append)
    in_dialog.own_reinvites(relayed.append)  # a bridge takes them over
    assert len(call.reinvites) == 1  # one callback on the SIP call, the owner changes behind it
    request = Incoming("INVITE", "application/sdp", b"v=0")
    call.reinvites[0](request)
    assert relayed == [request] and media_answers == []


def test_requests_follow_the_bridge_the_call_is_in() -> None:
    in_dialog, call = owner()
    media, bridge = Media(), Bridge()
    in_dialog.own_digits(media)
    deliver = call.requests[0]
    deliver(Incoming("INFO", "application/dtmf-relay", b"Signal=5"))
    in_dialog.join(bridge, from_callee=True)
    deliver(Incoming("INFO", "application/dtmf-relay; charset=x", b"Signal=6"))
    deliver(Incoming("REFER"))
    in_dialog.leave()
    deliver(Incoming("INFO", "application/dtmf", b"7"))
    assert media.digits == ["application/dtmf-relay", "application/dtmf"]
    assert bridge.seen == [("info", True), ("refer", True)]


def test_refusals_outside_a_bridge() -> None:
    in_dialog, call = owner()
    deliver = call.requests[0]
    refer, other, info = Incoming("REFER"), Incoming("SUBSCRIBE"), Incoming("INFO", "text/plain")
    deliver(refer)
    in_dialog.state.answer_time = in_dialog.state.start_time + 1
    answered = Incoming("REFER")
    deliver(answered)
    deliver(other)
    deliver(info)
    assert refer.responses == [
        (403, [("Reason", 'SIP;cause=403;text="REFER refused: not answered"')])
    ]
    assert answered.responses[0][0] == 403
    assert refer_refusal(True) in answered.responses[0][1][0][1]
    assert other.responses[0][0] == 405 and other.responses[0][1][0][0] == "Allow"
    assert info.responses == [(200, [])]
