"""dialed_leg.py: where a ``<Dial>`` noun goes (trunk formatting, credentials), how a finished
leg's CallStatus is decided, and a noun that cannot be dialed failing at once."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import pytest

from rcmlrouter.calls.dialed_leg import DialAddress, DialedLeg, dial_address, leg_status
from rcmlrouter.config import Config, TrunkConfig, load_config
from rcmlrouter.errors import SipError
from rcmlrouter.rcml.model import DialNumber, DialSip
from support.call_parts import RecordingOutbox, routed_state


def config(*trunks: TrunkConfig) -> Config:
    return dataclasses.replace(load_config(None, {}), trunks=trunks)


CARRIER = TrunkConfig("carrier", "sip:trunk.example.net:5070", "tcp", "acct", "secret", "e164")


def test_a_number_goes_to_the_trunk_in_its_format() -> None:
    assert dial_address(DialNumber("(415) 555-0100"), config(CARRIER)) == DialAddress(
        "sip:+14155550100@trunk.example.net:5070;transport=tcp", "+14155550100", ("acct", "secret")
    )
    national = dataclasses.replace(CARRIER, transport="udp", username="", number_format="national")
    assert dial_address(DialNumber("+14155550100"), config(national)) == DialAddress(
        "sip:4155550100@trunk.example.net:5070", "4155550100", None
    )
    short = dial_address(DialNumber("611"), config(national))
    assert short.to == "611"  # no phone number: as written


def test_a_sip_noun_is_dialed_as_written() -> None:
    noun = DialSip("sip:bob@example.net;transport=tcp", username="u", password="p")
    assert dial_address(noun, config()) == DialAddress(noun.uri, "bob", ("u", "p"))
    with pytest.raises(SipError) as refused:
        dial_address(DialNumber("+14155550100"), config())
    assert refused.value.sip_status == 503


def outgoing(*, answered: bool = False, status: int | None = None) -> Any:
    result = SimpleNamespace(
        done=lambda: status is not None, result=lambda: SimpleNamespace(status=status)
    )
    return SimpleNamespace(answered=answered, result=result)


@pytest.mark.parametrize(
    ("call", "cause", "expected"),
    [
        (None, None, "failed"),
        (outgoing(answered=True, status=200), "remote-bye", "completed"),
        (outgoing(status=487), "cancel", "canceled"),
        (outgoing(status=408), "timeout", "no-answer"),
        (outgoing(status=480), "rejected", "no-answer"),
        (outgoing(status=486), "rejected", "busy"),
        (outgoing(status=603), "rejected", "busy"),
        (outgoing(status=503), "transport-error", "failed"),
    ],
)
def test_leg_status(call: Any, cause: str | None, expected: str) -> None:
    assert leg_status(call, cause) == expected


async def test_a_noun_that_cannot_be_dialed_fails_at_once_and_says_why() -> None:
    outbox: Any = RecordingOutbox()
    notes: list[tuple[int, str]] = []
    leg = DialedLeg(DialNumber("+14155550100"), routed_state(), "+15105555555", outbox)
    leg.start(None, config(), lambda code, text: notes.append((code, text)), None, 30.0, print)
    assert leg.call is None and leg.to == "+14155550100" and leg.sip_status == 503
    assert notes == [(13227, "<Dial> +14155550100: no outbound trunk is configured for numbers")]
    leg.finish()
    [commit] = outbox.commits
    assert commit.call is not None and commit.call.status == "failed"
    assert commit.call.sip_status == 503 and commit.call.parent_call_sid == leg.parent.call_sid
