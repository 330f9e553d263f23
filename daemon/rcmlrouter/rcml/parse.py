"""Parse an RCML document (untrusted XML from a webhook) into :class:`~.model.Document`.

Pure: no I/O. The XML is parsed with defusedxml with DTDs, entities and external references
forbidden, so XXE and entity-expansion ("billion laughs") documents are refused. Every problem
raises :class:`~rcmlrouter.errors.RcmlParseError` (Twilio error 12100) with a message naming the
verb and the attribute.

Decisions:
- Verb and noun names are case-sensitive, as in TwiML (``<Say>``, not ``<say>``).
- Unknown attributes are ignored (TwiML documents often carry attributes for features rcmlrouter
  does not implement, e.g. ``<Dial record=…>``); unknown *elements* are errors.
- Relative URLs are resolved against ``base_url``; a relative URL without a base is an error, and
  only ``http``/``https`` URLs are accepted.
- Text content is stripped of surrounding whitespace.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree

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
    Document,
    Gather,
    GatherChild,
    Hangup,
    Pause,
    Play,
    Record,
    Redirect,
    Reject,
    Say,
    Sms,
    Verb,
)
from rcmlrouter.rcml.parse_streams import parse_connect, parse_start, parse_stop

_METHODS = frozenset({"GET", "POST"})
_REJECT_REASONS = frozenset({"rejected", "busy"})
_DTMF_KEYS = frozenset("0123456789*#")
_PLAY_DIGITS = frozenset("0123456789*#wW")
_MAX_TARGET_LENGTH = 256
_ABSOLUTE_HTTP_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:@%_~!$&'()*+,;=]+(?:[/?#][^\s]*)?\Z")


def parse_rcml(body: bytes, base_url: str | None = None) -> Document:
    """Parse ``body`` into a :class:`Document`; raise ``RcmlParseError`` if it is not valid RCML."""
    if not body or not body.strip():
        raise RcmlParseError("empty RCML document")
    root = _parse_xml(body)
    if root.tag != "Response":
        raise RcmlParseError(f"root element must be <Response>, got <{root.tag}>")
    context = _Context(base_url)
    return Document(tuple(_parse_verb(element, context) for element in root))


def _parse_xml(body: bytes) -> Element:
    try:
        root: Element = defusedxml.ElementTree.fromstring(
            body, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except defusedxml.DTDForbidden as exc:
        raise RcmlParseError("malformed XML: DTDs are not allowed in RCML") from exc
    except defusedxml.DefusedXmlException as exc:
        raise RcmlParseError(f"malformed XML: forbidden construct ({exc})") from exc
    except ParseError as exc:
        raise RcmlParseError(f"malformed XML: {exc}") from exc
    return root


class _Context:
    """What every verb parser needs: the base URL for resolving relative URLs."""

    __slots__ = ("base_url",)

    def __init__(self, base_url: str | None) -> None:
        self.base_url = base_url

    def resolve(self, element: Element, where: str, raw: str) -> str:
        """Return ``raw`` as an absolute http(s) URL, or raise naming ``where``."""
        url = raw.strip()
        if not url:
            raise RcmlParseError(f"<{element.tag}> {where}: URL is empty")
        if _ABSOLUTE_HTTP_URL.match(url):
            return url  # the common case, without urljoin/urlsplit
        if self.base_url is not None:
            url = urljoin(self.base_url, url)
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise RcmlParseError(f"<{element.tag}> {where}: invalid URL {raw!r}") from exc
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RcmlParseError(
                f"<{element.tag}> {where}: expected an absolute http(s) URL, got {raw!r}"
            )
        return url


def _parse_verb(element: Element, context: _Context) -> Verb:
    parser = _VERB_PARSERS.get(str(element.tag))
    if parser is None:
        raise RcmlParseError(f"unknown verb <{element.tag}>")
    return parser(element, context)


# --- attribute readers ---------------------------------------------------------------------


def _int_attr(element: Element, name: str, default: int, low: int, high: int) -> int:
    raw = element.get(name)
    if raw is None:
        return default
    value = raw.strip()
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise RcmlParseError(
            f"<{element.tag}> attribute {name}: expected an integer from {low} to {high}, "
            f"got {raw!r}"
        )
    return int(value)


def _method_attr(element: Element, name: str = "method") -> str:
    raw = element.get(name)
    if raw is None:
        return "POST"
    method = raw.strip().upper()
    if method not in _METHODS:
        raise RcmlParseError(f"<{element.tag}> attribute {name}: expected GET or POST, got {raw!r}")
    return method


def _bool_attr(element: Element, name: str, default: bool) -> bool:
    raw = element.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise RcmlParseError(
            f"<{element.tag}> attribute {name}: expected true or false, got {raw!r}"
        )
    return value == "true"


def _keys_attr(element: Element, name: str, default: str, max_keys: int) -> str:
    raw = element.get(name)
    if raw is None:
        return default
    keys = raw.strip()
    if len(keys) > max_keys or not set(keys) <= _DTMF_KEYS:
        raise RcmlParseError(
            f"<{element.tag}> attribute {name}: expected at most {max_keys} of 0-9 * #, got {raw!r}"
        )
    return keys


def _url_attr(element: Element, name: str, context: _Context) -> str | None:
    raw = element.get(name)
    if raw is None or not raw.strip():
        return None
    return context.resolve(element, f"attribute {name}", raw)


def _text(element: Element) -> str:
    return (element.text or "").strip()


def _no_children(element: Element) -> None:
    if len(element):
        raise RcmlParseError(f"<{element[0].tag}> is not allowed inside <{element.tag}>")


# --- verbs -----------------------------------------------------------------------------------


def _parse_reject(element: Element, _context: _Context) -> Reject:
    _no_children(element)
    reason = (element.get("reason") or "rejected").strip().lower()
    if reason not in _REJECT_REASONS:
        raise RcmlParseError(
            f"<Reject> attribute reason: expected rejected or busy, got {element.get('reason')!r}"
        )
    return Reject(reason)


def _parse_hangup(element: Element, _context: _Context) -> Hangup:
    _no_children(element)
    return Hangup()


def _parse_redirect(element: Element, context: _Context) -> Redirect:
    _no_children(element)
    return Redirect(context.resolve(element, "text", _text(element)), _method_attr(element))


def _parse_pause(element: Element, _context: _Context) -> Pause:
    _no_children(element)
    return Pause(_int_attr(element, "length", 1, 0, 3600))


def _parse_say(element: Element, _context: _Context) -> Say:
    _no_children(element)
    voice = (element.get("voice") or "").strip() or "man"
    language = (element.get("language") or "").strip() or "en"
    return Say(_text(element), voice, language, _int_attr(element, "loop", 1, 0, 1000))


def _parse_play(element: Element, context: _Context) -> Play:
    _no_children(element)
    digits = (element.get("digits") or "").strip()
    if not set(digits) <= _PLAY_DIGITS:
        raise RcmlParseError(f"<Play> attribute digits: expected 0-9 * # w W, got {digits!r}")
    text = _text(element)
    url = context.resolve(element, "text", text) if text or not digits else ""
    return Play(url, _int_attr(element, "loop", 1, 0, 1000), digits)


def _parse_gather(element: Element, context: _Context) -> Gather:
    children: list[GatherChild] = []
    for child in element:
        parser = _GATHER_CHILD_PARSERS.get(str(child.tag))
        if parser is None:
            raise RcmlParseError(f"<{child.tag}> is not allowed inside <Gather>")
        children.append(parser(child, context))
    num_digits = _int_attr(element, "numDigits", 0, 1, 128) if element.get("numDigits") else None
    return Gather(
        num_digits=num_digits,
        finish_on_key=_keys_attr(element, "finishOnKey", "#", 1),
        timeout=_int_attr(element, "timeout", 5, 0, 600),
        action=_url_attr(element, "action", context),
        method=_method_attr(element),
        children=tuple(children),
    )


def _parse_record(element: Element, context: _Context) -> Record:
    _no_children(element)
    return Record(
        max_length=_int_attr(element, "maxLength", 3600, 1, 14400),
        timeout=_int_attr(element, "timeout", 5, 0, 600),
        finish_on_key=_keys_attr(element, "finishOnKey", "1234567890*#", 12),
        play_beep=_bool_attr(element, "playBeep", True),
        action=_url_attr(element, "action", context),
        method=_method_attr(element),
        recording_status_callback=_url_attr(element, "recordingStatusCallback", context),
        recording_status_callback_method=_method_attr(element, "recordingStatusCallbackMethod"),
    )


def _parse_dial(element: Element, context: _Context) -> Dial:
    text = _text(element)
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
        action=_url_attr(element, "action", context),
        method=_method_attr(element),
        timeout=_int_attr(element, "timeout", 30, 1, 600),
        time_limit=_int_attr(element, "timeLimit", 14400, 1, 86400),
        caller_id=caller_id,
        targets=targets,
        conference=conference,
    )


def _parse_conference(element: Element, context: _Context) -> DialConference:
    _no_children(element)
    name = _text(element)
    if not name or len(name) > _MAX_TARGET_LENGTH:
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
    wait_url = None if raw_wait is None else _url_attr(element, "waitUrl", context) or ""
    coach = (element.get("coach") or "").strip() or None
    if coach is not None and not re.fullmatch(r"CA[0-9a-f]{32}", coach):
        raise RcmlParseError(f"<Conference> attribute coach: expected a CallSid, got {coach!r}")
    return DialConference(
        name=name,
        muted=_bool_attr(element, "muted", False),
        beep=beep,
        start_conference_on_enter=_bool_attr(element, "startConferenceOnEnter", True),
        end_conference_on_exit=_bool_attr(element, "endConferenceOnExit", False),
        wait_url=wait_url,
        wait_method=_method_attr(element, "waitMethod"),
        max_participants=_int_attr(element, "maxParticipants", 250, 2, 250),
        record_from_start=record == "record-from-start",
        status_callback=_url_attr(element, "statusCallback", context),
        status_callback_method=_method_attr(element, "statusCallbackMethod"),
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


def _parse_dial_target(element: Element, context: _Context) -> DialTarget:
    _no_children(element)
    callback = _url_attr(element, "statusCallback", context)
    events = _dial_events(element)
    method = _method_attr(element, "statusCallbackMethod")
    if element.tag == "Number":
        return DialNumber(_target_text(element, _text(element)), callback, events, method)
    if element.tag == "Sip":
        uri = _target_text(element, _text(element))
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
    if len(text) > _MAX_TARGET_LENGTH or any(ch.isspace() for ch in text):
        raise RcmlParseError(f"<{element.tag}> text: invalid dial target {text!r}")
    return text


def _parse_sms(element: Element, context: _Context) -> Sms:
    _no_children(element)
    return _message_verb(element, context, _text(element))


def _parse_message(element: Element, context: _Context) -> Sms:
    """Twilio's ``<Message>``: the body as text or as one ``<Body>`` noun (no ``<Media>``)."""
    text = _text(element)
    bodies = []
    for child in element:
        if child.tag != "Body":
            raise RcmlParseError(f"<{child.tag}> is not allowed inside <Message> (supported: Body)")
        _no_children(child)
        bodies.append(_text(child))
    if len(bodies) > 1:
        raise RcmlParseError("<Message> has more than one <Body>")
    if bodies and text:
        raise RcmlParseError("<Message> must contain either text or a <Body>, not both")
    return _message_verb(element, context, bodies[0] if bodies else text)


def _message_verb(element: Element, context: _Context, body: str) -> Sms:
    if not body:
        raise RcmlParseError(f"<{element.tag}> text: the message body is empty")
    return Sms(
        to=_address_attr(element, "to"),
        from_=_address_attr(element, "from"),
        action=_url_attr(element, "action", context),
        method=_method_attr(element),
        body=body,
        status_callback=_url_attr(element, "statusCallback", context),
    )


def _address_attr(element: Element, name: str) -> str | None:
    value = (element.get(name) or "").strip()
    if len(value) > _MAX_TARGET_LENGTH or any(ch.isspace() for ch in value):
        raise RcmlParseError(f"<{element.tag}> attribute {name}: invalid address {value!r}")
    return value or None


_GATHER_CHILD_PARSERS: dict[str, Callable[[Element, _Context], GatherChild]] = {
    "Say": _parse_say,
    "Play": _parse_play,
    "Pause": _parse_pause,
}

_VERB_PARSERS: dict[str, Callable[[Element, _Context], Verb]] = {
    "Reject": _parse_reject,
    "Hangup": _parse_hangup,
    "Redirect": _parse_redirect,
    "Pause": _parse_pause,
    "Say": _parse_say,
    "Play": _parse_play,
    "Gather": _parse_gather,
    "Record": _parse_record,
    "Dial": _parse_dial,
    "Sms": _parse_sms,
    "Message": _parse_message,
    "Connect": lambda element, context: parse_connect(element, context.resolve),
    "Start": lambda element, context: parse_start(element, context.resolve),
    "Stop": lambda element, context: parse_stop(element, context.resolve),
}
