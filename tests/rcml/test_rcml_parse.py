"""parse_rcml against the RCML documents kept in tests/data/rcml/."""

from __future__ import annotations

from pathlib import Path

import pytest

from rcmlrouter.errors import RcmlParseError
from rcmlrouter.rcml.model import (
    Dial,
    DialNumber,
    DialSip,
    Document,
    Gather,
    Hangup,
    Pause,
    Play,
    Record,
    Redirect,
    Reject,
    Say,
    Sms,
)
from rcmlrouter.rcml.parse import parse_rcml

DATA = Path(__file__).resolve().parent.parent / "data" / "rcml"


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_every_verb_with_explicit_attributes() -> None:
    document = parse_rcml(load("all_verbs.xml"))
    assert document.verbs == (
        Say("Bonjour, ça va ?", voice="woman", language="fr-FR", loop=2),
        Play("https://media.example.com/hold.wav", loop=0),
        Pause(3),
        Gather(
            num_digits=4,
            finish_on_key="*",
            timeout=10,
            action="https://app.example.com/digits",
            method="GET",
            children=(Say("Enter your PIN"),),
        ),
        Record(
            max_length=120,
            timeout=0,
            finish_on_key="#",
            play_beep=False,
            action="https://app.example.com/recorded",
            method="GET",
        ),
        Dial(
            action="https://app.example.com/dialed",
            method="POST",
            timeout=20,
            time_limit=600,
            caller_id="+15105550000",
            targets=(
                DialNumber("+15105551234"),
                DialSip("sip:alice@example.com;transport=tcp"),
            ),
        ),
        Sms(
            to="+15105559999",
            from_="+15105555555",
            action="https://app.example.com/sms-status",
            method="GET",
            body="Your code is 1234",
            status_callback="https://app.example.com/sms-callback",
        ),
        Redirect("https://app.example.com/next", method="GET"),
        Reject("busy"),
        Hangup(),
    )


def test_defaults_are_twilios() -> None:
    verbs = parse_rcml(load("defaults.xml")).verbs
    assert verbs[0] == Say("Hello", voice="man", language="en", loop=1)
    assert verbs[1] == Play("http://media.example.com/a.wav", loop=1)
    assert verbs[2] == Pause(1)
    assert verbs[3] == Gather(
        num_digits=None, finish_on_key="#", timeout=5, action=None, method="POST"
    )
    assert verbs[4] == Record(
        max_length=3600, timeout=5, finish_on_key="1234567890*#", play_beep=True, method="POST"
    )
    assert verbs[5] == Dial(timeout=30, time_limit=14400, targets=(DialNumber("+15105551234"),))
    assert verbs[6] == Sms(to=None, from_=None, action=None, method="POST", body="hi")
    assert verbs[7] == Redirect("http://app.example.com/next", "POST")
    assert verbs[8] == Reject("rejected")
    assert verbs[9] == Hangup()


def test_message_and_sms_parse_to_the_same_verb() -> None:
    document = parse_rcml(load("messages.xml"), "https://app.example.com/sms/in.xml")
    assert document.verbs == (
        Sms(body="Thanks, we got your message"),
        Sms(
            to="sip:alice@127.0.0.1:5070;transport=tcp",
            from_="+15105550000",
            action="https://app.example.com/sms/status",
            method="GET",
            body="Your code is 1234",
            status_callback="https://app.example.com/callbacks/sms",
        ),
        Sms(to="+15105559999", body="Sms too", status_callback="https://cb.example.com/sms"),
        Redirect("https://app.example.com/sms/next.xml"),
    )


def test_nested_gather_and_relative_urls_resolved() -> None:
    document = parse_rcml(load("gather_nested.xml"), "https://app.example.com/ivr/start.xml")
    gather, say = document.verbs
    assert isinstance(gather, Gather)
    assert gather.action == "https://app.example.com/ivr/menu"
    assert gather.num_digits == 1
    assert gather.children == (
        Say("Press 1 for sales, 2 for support.", loop=2),
        Pause(1),
        Play("https://app.example.com/ivr/prompts/menu.wav"),
    )
    assert say == Say("We did not receive any input. Goodbye!")


def test_relative_urls_resolved_against_the_document_url() -> None:
    base = "http://app.example.com/voice/calls/start.php?CallSid=CA1"
    play, gather, record, dial, redirect = parse_rcml(load("relative_urls.xml"), base).verbs
    assert play == Play("http://app.example.com/voice/audio/welcome.wav")
    assert isinstance(gather, Gather)
    assert gather.action == "http://app.example.com/voice/calls/gather-done"
    assert gather.children == (Play("http://app.example.com/audio/prompt.wav"),)
    assert isinstance(record, Record)
    assert record.action == "http://app.example.com/voice/calls/start.php?step=recorded"
    assert isinstance(dial, Dial)
    assert dial.action == "http://other.example.com/dial-status"
    assert redirect == Redirect("http://app.example.com/voice/calls/next.xml")


def test_relative_url_without_base_is_refused() -> None:
    with pytest.raises(RcmlParseError, match=r"<Play> text: expected an absolute http\(s\) URL"):
        parse_rcml(load("relative_urls.xml"))


def test_empty_response_is_a_document_without_verbs() -> None:
    assert parse_rcml(load("empty_response.xml")) == Document(())


def test_method_is_case_insensitive_and_stored_upper_case() -> None:
    body = b'<Response><Redirect method="gEt">http://a.example.com/x</Redirect></Response>'
    assert parse_rcml(body).verbs == (Redirect("http://a.example.com/x", "GET"),)


def test_text_dial_and_whitespace_are_stripped() -> None:
    body = b"<Response><Dial>\n   1001\n</Dial><Say>\n  hi there \n</Say></Response>"
    dial, say = parse_rcml(body).verbs
    assert dial == Dial(targets=(DialNumber("1001"),))
    assert say == Say("hi there")


def test_dial_nouns_carry_status_callbacks_and_credentials() -> None:
    body = (
        b'<Response><Dial callerId="+15105550000"><Number statusCallback="/cb" '
        b'statusCallbackEvent="initiated ringing answered completed" statusCallbackMethod="get">'
        b"+15105551234</Number>"
        b'<Sip username="u" password="p">sip:bob@example.com</Sip></Dial></Response>'
    )
    [dial] = parse_rcml(body, "http://app.example.com/voice").verbs
    assert isinstance(dial, Dial) and dial.caller_id == "+15105550000"
    number, sip = dial.targets
    assert number == DialNumber(
        "+15105551234",
        "http://app.example.com/cb",
        ("initiated", "ringing", "answered", "completed"),
        "GET",
    )
    assert sip == DialSip("sip:bob@example.com", username="u", password="p")
    assert sip.status_callback is None and sip.status_callback_event == ("completed",)


@pytest.mark.parametrize(
    ("noun", "message"),
    [
        ('<Number statusCallbackEvent="hungup">1</Number>', "statusCallbackEvent"),
        ('<Sip username="u">sip:a@b</Sip>', "username and password"),
    ],
)
def test_dial_noun_attribute_errors(noun: str, message: str) -> None:
    with pytest.raises(RcmlParseError, match=message):
        parse_rcml(f"<Response><Dial>{noun}</Dial></Response>".encode())


INVALID = [
    ("empty.xml", "empty RCML document"),
    ("whitespace.xml", "empty RCML document"),
    ("wrong_root.xml", "root element must be <Response>, got <Document>"),
    ("lowercase_root.xml", "root element must be <Response>, got <response>"),
    ("malformed.xml", "malformed XML"),
    ("not_xml.xml", "malformed XML"),
    ("unknown_verb.xml", "unknown verb <Enqueue>"),
    ("bad_pause_length.xml", "<Pause> attribute length: expected an integer"),
    ("negative_loop.xml", "<Say> attribute loop: expected an integer"),
    ("bad_method.xml", "<Redirect> attribute method: expected GET or POST, got 'PUT'"),
    ("bad_play_beep.xml", "<Record> attribute playBeep: expected true or false"),
    ("bad_finish_key.xml", "<Gather> attribute finishOnKey"),
    ("bad_num_digits.xml", "<Gather> attribute numDigits: expected an integer from 1"),
    ("bad_reject_reason.xml", "<Reject> attribute reason"),
    ("nested_in_say.xml", "<Play> is not allowed inside <Say>"),
    ("gather_in_gather.xml", "<Gather> is not allowed inside <Gather>"),
    ("dial_conference.xml", "<Conference> must be the only noun of its <Dial>"),
    ("dial_nothing.xml", "<Dial> has nothing to dial"),
    ("dial_bad_sip.xml", "<Sip> text: expected a sip: or sips: URI"),
    ("play_no_url.xml", "<Play> text: URL is empty"),
    ("play_ftp.xml", r"<Play> text: expected an absolute http\(s\) URL"),
    ("sms_no_body.xml", "<Sms> text: the message body is empty"),
    ("sms_bad_to.xml", "<Sms> attribute to: invalid address"),
    ("message_two_bodies.xml", "<Message> has more than one <Body>"),
    ("message_media.xml", "<Media> is not allowed inside <Message>"),
    ("message_text_and_body.xml", "<Message> must contain either text or a <Body>"),
    ("message_empty_body.xml", "<Message> text: the message body is empty"),
    ("hangup_with_child.xml", "<Say> is not allowed inside <Hangup>"),
    ("xxe.xml", "DTDs are not allowed"),
    ("billion_laughs.xml", "DTDs are not allowed"),
    ("external_dtd.xml", "DTDs are not allowed"),
]


@pytest.mark.parametrize(("name", "message"), INVALID, ids=[name for name, _ in INVALID])
def test_invalid_documents_raise_12100(name: str, message: str) -> None:
    with pytest.raises(RcmlParseError, match=message) as caught:
        parse_rcml(load(f"invalid/{name}"), "http://app.example.com/")
    assert caught.value.error_code == 12100


def test_every_invalid_sample_is_covered() -> None:
    on_disk = {path.name for path in (DATA / "invalid").glob("*.xml")}
    assert on_disk == {name for name, _ in INVALID}


def test_internal_entity_without_dtd_is_refused() -> None:
    # An undefined entity is an XML error, never expanded or resolved.
    with pytest.raises(RcmlParseError, match="malformed XML"):
        parse_rcml(b"<Response><Say>&secret;</Say></Response>")


def test_large_flat_document_parses() -> None:
    body = b"<Response>" + b"<Pause length='0'/>" * 20_000 + b"</Response>"
    assert len(parse_rcml(body).verbs) == 20_000


def test_play_digits_and_record_status_callback() -> None:
    body = (
        b'<Response><Play digits="1w2#"/><Play digits="9">http://m.example.com/a.wav</Play>'
        b'<Record recordingStatusCallback="/rec-status" recordingStatusCallbackMethod="GET"/>'
        b"</Response>"
    )
    only_digits, both, record = parse_rcml(body, "http://app.example.com/voice").verbs
    assert only_digits == Play("", digits="1w2#")
    assert both == Play("http://m.example.com/a.wav", digits="9")
    assert record == Record(
        recording_status_callback="http://app.example.com/rec-status",
        recording_status_callback_method="GET",
    )
    with pytest.raises(RcmlParseError, match="digits"):
        parse_rcml(b'<Response><Play digits="12x"/></Response>')
