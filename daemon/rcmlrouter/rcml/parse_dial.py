"""Parse ``<Dial>`` (pure, no I/O): a number as text, or its nouns ``<Number>``, ``<Sip>``,
or one ``<Conference>`` with its attributes."""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from rcmlrouter.errors import RcmlParseError
from rcmlrouter.rcml.model import (
    CONFERENCE_BEEPS,
    CONFERENCE_EVENTS,
    DIAL_EVENTS,
    Dial,
    DialConference,
    DialNumber,
    DialSip,
    DialTarget,
)
from rcmlrouter.rcml.parse_attrs import (
    MAX_TARGET_LENGTH,
    Context,
    bool_attr,
    int_attr,
    method_attr,
    no_children,
    text_of,
    url_attr,
)


def parse_dial(element: Element, context: Context) -> Dial:
    text = text_of(element)
    if text and len(element):
        raise RcmlParseError("<Dial> must contain either a number as text or nouns, not both")
    conferences = [child for child in element if child.tag == "Conference"]
    if conferences and len(element) > 1:
        raise RcmlParseError("<Conference> must be the only noun of its <Dial>")
    conference = _parse_conference(conferences[0], context) if conferences else None
    targets = tuple(_parse_dial_target(c, context) for c in element if c.tag != "Conference")
    if text:
        targets = (DialNumber(_target_text(element, text)),)
    if not targets and conference is None:
        raise RcmlParseError(
            "<Dial> has nothing to dial: add a number, <Number>, <Sip> or <Conference>"
        )
    caller_id = (element.get("callerId") or "").strip() or None
    return Dial(
        action=url_attr(element, "action", context),
        method=method_attr(element),
        timeout=int_attr(element, "timeout", 30, 1, 600),
        time_limit=int_attr(element, "timeLimit", 14400, 1, 86400),
        caller_id=caller_id,
        targets=targets,
        conference=conference,
    )


def _parse_conference(element: Element, context: Context) -> DialConference:
    no_children(element)
    name = text_of(element)
    if not name or len(name) > MAX_TARGET_LENGTH:
        raise RcmlParseError("<Conference> text: a conference name of 1 to 256 characters")
    beep = (element.get("beep") or "true").strip()
    beep = beep.lower() if beep.lower() in ("true", "false") else beep
    if beep not in CONFERENCE_BEEPS:
        raise RcmlParseError(
            f"<Conference> attribute beep: expected true, false, onEnter or onExit, got {beep!r}"
        )
    record = (element.get("record") or "do-not-record").strip()
    if record not in ("do-not-record", "record-from-start"):
        raise RcmlParseError(
            "<Conference> attribute record: expected do-not-record or record-from-start, "
            f"got {record!r}"
        )
    raw_wait = element.get("waitUrl")
    wait_url = None if raw_wait is None else url_attr(element, "waitUrl", context) or ""
    coach = (element.get("coach") or "").strip() or None
    if coach is not None and not re.fullmatch(r"CA[0-9a-f]{32}", coach):
        raise RcmlParseError(f"<Conference> attribute coach: expected a CallSid, got {coach!r}")
    return DialConference(
        name=name,
        muted=bool_attr(element, "muted", False),
        beep=beep,
        start_conference_on_enter=bool_attr(element, "startConferenceOnEnter", True),
        end_conference_on_exit=bool_attr(element, "endConferenceOnExit", False),
        wait_url=wait_url,
        wait_method=method_attr(element, "waitMethod"),
        max_participants=int_attr(element, "maxParticipants", 250, 2, 250),
        record_from_start=record == "record-from-start",
        status_callback=url_attr(element, "statusCallback", context),
        status_callback_method=method_attr(element, "statusCallbackMethod"),
        status_callback_event=_conference_events(element),
        coach=coach,
        label=(element.get("participantLabel") or "").strip()[:128] or None,
    )


def _conference_events(element: Element) -> tuple[str, ...]:
    raw = element.get("statusCallbackEvent")
    if raw is None:
        return ("start", "end")
    events = tuple(dict.fromkeys(raw.replace(",", " ").split()))
    unknown = [event for event in events if event not in CONFERENCE_EVENTS]
    if unknown or not events:
        raise RcmlParseError(
            "<Conference> statusCallbackEvent: expected some of "
            f"{' '.join(CONFERENCE_EVENTS)}, got {raw!r}"
        )
    return events


def _parse_dial_target(element: Element, context: Context) -> DialTarget:
    no_children(element)
    callback = url_attr(element, "statusCallback", context)
    events = _dial_events(element)
    method = method_attr(element, "statusCallbackMethod")
    if element.tag == "Number":
        return DialNumber(_target_text(element, text_of(element)), callback, events, method)
    if element.tag == "Sip":
        uri = _target_text(element, text_of(element))
        if not uri.lower().startswith(("sip:", "sips:")):
            raise RcmlParseError(f"<Sip> text: expected a sip: or sips: URI, got {uri!r}")
        username = element.get("username") or None
        password = element.get("password") or None
        if bool(username) != bool(password):
            raise RcmlParseError("<Sip> username and password: give both or neither")
        return DialSip(uri, callback, events, method, username, password)
    raise RcmlParseError(
        f"<{element.tag}> is not allowed inside <Dial> (supported: Number, Sip, Conference)"
    )


def _dial_events(element: Element) -> tuple[str, ...]:
    raw = element.get("statusCallbackEvent")
    if raw is None:
        return ("completed",)
    events = tuple(dict.fromkeys(raw.replace(",", " ").split()))
    unknown = [event for event in events if event not in DIAL_EVENTS]
    if unknown or not events:
        raise RcmlParseError(
            f"<{element.tag}> statusCallbackEvent: expected some of {' '.join(DIAL_EVENTS)}, "
            f"got {raw!r}"
        )
    return events


def _target_text(element: Element, text: str) -> str:
    if not text:
        raise RcmlParseError(f"<{element.tag}> text: nothing to dial")
    if len(text) > MAX_TARGET_LENGTH or any(ch.isspace() for ch in text):
        raise RcmlParseError(f"<{element.tag}> text: invalid dial target {text!r}")
    return text
