"""call_state.py: the facts read once from captured INVITEs (tests/data/sip), the webhook
parameters built from them, and the final CallStatus decision."""

from __future__ import annotations

import pytest

from rcmlrouter.calls.call_state import CallFacts, CallState, read_facts
from support.call_parts import invite, number


def test_a_carrier_invite_with_diversion_and_x_headers() -> None:
    facts = read_facts(invite("carrier_diversion_invite.sip"), "to")
    assert facts == CallFacts(
        from_user="+14155550100",
        caller_display="Ada Lovelace",
        dialed="5105555555",
        destination_hosts=("voice.example.org", "to-host.example.org"),
        caller_host="carrier.example.net",
        request_host="voice.example.org",
        forwarded_from="+16505550111",  # the first Diversion entry
        sip_headers=(("SipHeader_X-Customer-Id", "4711"), ("SipHeader_x-trace", "abc")),
    )


def test_dialed_from_the_request_uri_is_normalised() -> None:
    facts = read_facts(invite("carrier_diversion_invite.sip"), "request-uri")
    assert facts.dialed == "+15105555555"  # percent-decoded, separators and ;npdi dropped


def test_history_info_names_the_retargeted_user() -> None:
    facts = read_facts(invite("pbx_history_info_invite.sip"), "to")
    assert (facts.dialed, facts.forwarded_from, facts.caller_display) == ("support", "bob", "")
    assert read_facts(invite("pbx_history_info_invite.sip"), "request-uri").dialed == "desk-7"


def test_sipp_and_torture_invites() -> None:
    sipp = read_facts(invite("sipp_invite.sip"), "to")
    assert (sipp.from_user, sipp.caller_display, sipp.dialed) == ("sipp", "sipp", "service")
    assert sipp.forwarded_from == "" and sipp.sip_headers == ()
    escaped = read_facts(invite("rfc4475/esc01.sip"), "to")
    assert escaped.dialed == "user" and escaped.destination_hosts == ("example.net", "example.com")


def test_an_unreadable_request_uri_is_kept_for_routing_to_refuse() -> None:
    request = invite("sipp_invite.sip")
    request.uri = "sip:service@127.0.0.1:99999"
    facts = read_facts(request, "to")
    assert facts.unreadable == "malformed port in '127.0.0.1:99999'"
    assert facts.from_user == "sipp" and facts.dialed == ""


def test_voice_params_in_wire_order() -> None:
    facts = read_facts(invite("carrier_diversion_invite.sip"), "to")
    state = CallState("CA1", 0.0, facts, "AC1", number=number(), caller_name="Ada Lovelace")
    state.outbound_call_sid = "CA2"
    state.transfer_params = {"ReferTarget": "200"}
    params = state.voice_params("ringing")
    assert list(params) == [
        "CallSid", "AccountSid", "From", "To", "ApiVersion", "Direction", "CallTimestamp",
        "CallerName", "ForwardedFrom", "SipHeader_X-Customer-Id", "SipHeader_x-trace",
        "CallStatus", "OutboundCallSid", "ReferTarget",
    ]  # fmt: skip
    assert params["CallTimestamp"] == "Thu, 01 Jan 1970 00:00:00 +0000"
    assert state.voice_params("in-progress")["CallStatus"] == "in-progress"
    assert state.base_params() is state.base_params()  # built once


@pytest.mark.parametrize(
    ("answered", "end_cause", "sip_status", "expected"),
    [
        (True, "remote-bye", 200, "completed"),
        (False, "cancel", 487, "canceled"),
        (False, "rejected", 486, "busy"),
        (False, "rejected", 603, "no-answer"),
        (False, "rejected", 404, "failed"),
        (False, None, None, "failed"),
    ],
)
def test_final_call_status(
    answered: bool, end_cause: str | None, sip_status: int | None, expected: str
) -> None:
    state = CallState("CA1", 0.0, read_facts(invite("sipp_invite.sip"), "to"), "AC1")
    state.answer_time = 1.0 if answered else None
    state.end_cause, state.sip_status = end_cause, sip_status
    assert state.final_call_status() == expected
    assert state.current_status() == ("in-progress" if answered else "ringing")
