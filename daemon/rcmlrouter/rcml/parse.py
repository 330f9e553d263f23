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

from collections.abc import Callable
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree

from rcmlrouter.errors import RcmlParseError
from rcmlrouter.rcml.model import (
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
from rcmlrouter.rcml.parse_attrs import (
    MAX_TARGET_LENGTH,
    Context,
    bool_attr,
    int_attr,
    keys_attr,
    method_attr,
    no_children,
    text_of,
    url_attr,
)
from rcmlrouter.rcml.parse_dial import parse_dial
from rcmlrouter.rcml.parse_streams import parse_connect, parse_start, parse_stop

_REJECT_REASONS = frozenset({"rejected", "busy"})
_PLAY_DIGITS = frozenset("0123456789*#wW")


def parse_rcml(body: bytes, base_url: str | None = None) -> Document:
    """Parse ``body`` into a :class:`Document`; raise ``RcmlParseError`` if it is not valid RCML."""
    if not body or not body.strip():
        raise RcmlParseError("empty RCML document")
    root = _parse_xml(body)
    if root.tag != "Response":
        raise RcmlParseError(f"root element must be <Response>, got <{root.tag}>")
    context = Context(base_url)
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


def _parse_verb(element: Element, context: Context) -> Verb:
    parser = _VERB_PARSERS.get(str(element.tag))
    if parser is None:
        raise RcmlParseError(f"unknown verb <{element.tag}>")
    return parser(element, context)


# --- verbs -----------------------------------------------------------------------------------


def _parse_reject(element: Element, _context: Context) -> Reject:
    no_children(element)
    reason = (element.get("reason") or "rejected").strip().lower()
    if reason not in _REJECT_REASONS:
        raise RcmlParseError(
            f"<Reject> attribute reason: expected rejected or busy, got {element.get('reason')!r}"
        )
    return Reject(reason)


def _parse_hangup(element: Element, _context: Context) -> Hangup:
    no_children(element)
    return Hangup()


def _parse_redirect(element: Element, context: Context) -> Redirect:
    no_children(element)
    return Redirect(context.resolve(element, "text", text_of(element)), method_attr(element))


def _parse_pause(element: Element, _context: Context) -> Pause:
    no_children(element)
    return Pause(int_attr(element, "length", 1, 0, 3600))


def _parse_say(element: Element, _context: Context) -> Say:
    no_children(element)
    voice = (element.get("voice") or "").strip() or "man"
    language = (element.get("language") or "").strip() or "en"
    return Say(text_of(element), voice, language, int_attr(element, "loop", 1, 0, 1000))


def _parse_play(element: Element, context: Context) -> Play:
    no_children(element)
    digits = (element.get("digits") or "").strip()
    if not set(digits) <= _PLAY_DIGITS:
        raise RcmlParseError(f"<Play> attribute digits: expected 0-9 * # w W, got {digits!r}")
    text = text_of(element)
    url = context.resolve(element, "text", text) if text or not digits else ""
    return Play(url, int_attr(element, "loop", 1, 0, 1000), digits)


def _parse_gather(element: Element, context: Context) -> Gather:
    children: list[GatherChild] = []
    for child in element:
        parser = _GATHER_CHILD_PARSERS.get(str(child.tag))
        if parser is None:
            raise RcmlParseError(f"<{child.tag}> is not allowed inside <Gather>")
        children.append(parser(child, context))
    num_digits = int_attr(element, "numDigits", 0, 1, 128) if element.get("numDigits") else None
    return Gather(
        num_digits=num_digits,
        finish_on_key=keys_attr(element, "finishOnKey", "#", 1),
        timeout=int_attr(element, "timeout", 5, 0, 600),
        action=url_attr(element, "action", context),
        method=method_attr(element),
        children=tuple(children),
    )


def _parse_record(element: Element, context: Context) -> Record:
    no_children(element)
    return Record(
        max_length=int_attr(element, "maxLength", 3600, 1, 14400),
        timeout=int_attr(element, "timeout", 5, 0, 600),
        finish_on_key=keys_attr(element, "finishOnKey", "1234567890*#", 12),
        play_beep=bool_attr(element, "playBeep", True),
        action=url_attr(element, "action", context),
        method=method_attr(element),
        recording_status_callback=url_attr(element, "recordingStatusCallback", context),
        recording_status_callback_method=method_attr(element, "recordingStatusCallbackMethod"),
    )


def _parse_sms(element: Element, context: Context) -> Sms:
    no_children(element)
    return _message_verb(element, context, text_of(element))


def _parse_message(element: Element, context: Context) -> Sms:
    """Twilio's ``<Message>``: the body as text or as one ``<Body>`` noun (no ``<Media>``)."""
    text = text_of(element)
    bodies = []
    for child in element:
        if child.tag != "Body":
            raise RcmlParseError(f"<{child.tag}> is not allowed inside <Message> (supported: Body)")
        no_children(child)
        bodies.append(text_of(child))
    if len(bodies) > 1:
        raise RcmlParseError("<Message> has more than one <Body>")
    if bodies and text:
        raise RcmlParseError("<Message> must contain either text or a <Body>, not both")
    return _message_verb(element, context, bodies[0] if bodies else text)


def _message_verb(element: Element, context: Context, body: str) -> Sms:
    if not body:
        raise RcmlParseError(f"<{element.tag}> text: the message body is empty")
    return Sms(
        to=_address_attr(element, "to"),
        from_=_address_attr(element, "from"),
        action=url_attr(element, "action", context),
        method=method_attr(element),
        body=body,
        status_callback=url_attr(element, "statusCallback", context),
    )


def _address_attr(element: Element, name: str) -> str | None:
    value = (element.get(name) or "").strip()
    if len(value) > MAX_TARGET_LENGTH or any(ch.isspace() for ch in value):
        raise RcmlParseError(f"<{element.tag}> attribute {name}: invalid address {value!r}")
    return value or None


_GATHER_CHILD_PARSERS: dict[str, Callable[[Element, Context], GatherChild]] = {
    "Say": _parse_say,
    "Play": _parse_play,
    "Pause": _parse_pause,
}

_VERB_PARSERS: dict[str, Callable[[Element, Context], Verb]] = {
    "Reject": _parse_reject,
    "Hangup": _parse_hangup,
    "Redirect": _parse_redirect,
    "Pause": _parse_pause,
    "Say": _parse_say,
    "Play": _parse_play,
    "Gather": _parse_gather,
    "Record": _parse_record,
    "Dial": parse_dial,
    "Sms": _parse_sms,
    "Message": _parse_message,
    "Connect": lambda element, context: parse_connect(element, context.resolve),
    "Start": lambda element, context: parse_start(element, context.resolve),
    "Stop": lambda element, context: parse_stop(element, context.resolve),
}
