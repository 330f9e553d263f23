"""Parse ``<Connect>``, ``<Start>`` and ``<Stop>`` with their ``<Stream>`` noun (pure, no I/O).

``parse.py`` hands these parsers its URL resolver (``resolve(element, where, raw)``: an absolute
http(s) URL, or RcmlParseError) for ``action`` and ``statusCallback``. The stream's own ``url``
must be an absolute ``ws://`` or ``wss://`` URL (whether ``ws://`` may be used is the daemon's
``[streams] allow_insecure``, decided when connecting). Limits: a name of at most 64 characters,
at most 32 ``<Parameter>`` children, each name at most 64 and value at most 500 characters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

from rcmlrouter.errors import RcmlParseError
from rcmlrouter.rcml.model import STREAM_TRACKS, Connect, Start, Stop, Stream

Resolve = Callable[[Element, str, str], str]

MAX_PARAMETERS: Final = 32
MAX_NAME: Final = 64
MAX_VALUE: Final = 500
MAX_URL: Final = 2048


def parse_connect(element: Element, resolve: Resolve) -> Connect:
    action = _optional_url(element, "action", resolve)
    return Connect(_only_stream(element, resolve), action, _method(element, "method"))


def parse_start(element: Element, resolve: Resolve) -> Start:
    return Start(_only_stream(element, resolve))


def parse_stop(element: Element, _resolve: Resolve) -> Stop:
    children = list(element)
    if len(children) != 1 or children[0].tag != "Stream":
        raise RcmlParseError("<Stop> must contain exactly one <Stream name=…/>")
    name = _name(children[0])
    if name is None:
        raise RcmlParseError("<Stop><Stream> attribute name: required (the stream to stop)")
    return Stop(name)


def _only_stream(element: Element, resolve: Resolve) -> Stream:
    children = list(element)
    if len(children) != 1:
        raise RcmlParseError(f"<{element.tag}> must contain exactly one <Stream>")
    if children[0].tag != "Stream":
        raise RcmlParseError(
            f"<{children[0].tag}> is not allowed inside <{element.tag}> (supported: Stream)"
        )
    return parse_stream(children[0], resolve)


def parse_stream(element: Element, resolve: Resolve) -> Stream:
    track = (element.get("track") or "inbound_track").strip()
    if track not in STREAM_TRACKS:
        raise RcmlParseError(
            f"<Stream> attribute track: expected {', '.join(STREAM_TRACKS)}, got {track!r}"
        )
    return Stream(
        url=stream_url(element.get("url") or ""),
        name=_name(element),
        track=track,
        status_callback=_optional_url(element, "statusCallback", resolve),
        status_callback_method=_method(element, "statusCallbackMethod"),
        parameters=_parameters(element),
    )


def stream_url(raw: str) -> str:
    """An absolute ``ws://`` / ``wss://`` URL, or RcmlParseError."""
    url = raw.strip()
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise RcmlParseError(f"<Stream> attribute url: invalid URL {raw!r}") from exc
    if parts.scheme not in ("ws", "wss") or not parts.hostname or len(url) > MAX_URL:
        raise RcmlParseError(
            f"<Stream> attribute url: expected an absolute ws:// or wss:// URL, got {raw!r}"
        )
    if any(ch.isspace() for ch in url):
        raise RcmlParseError(f"<Stream> attribute url: spaces in {raw!r}")
    return url


def _name(element: Element) -> str | None:
    name = (element.get("name") or "").strip()
    if len(name) > MAX_NAME:
        raise RcmlParseError(f"<Stream> attribute name: at most {MAX_NAME} characters")
    return name or None


def _parameters(element: Element) -> tuple[tuple[str, str], ...]:
    parameters = []
    for child in element:
        if child.tag != "Parameter":
            raise RcmlParseError(f"<{child.tag}> is not allowed inside <Stream> (Parameter)")
        if len(child):
            raise RcmlParseError(f"<{child[0].tag}> is not allowed inside <Parameter>")
        name, value = (child.get("name") or "").strip(), child.get("value") or ""
        if not name or len(name) > MAX_NAME or len(value) > MAX_VALUE:
            raise RcmlParseError(
                f"<Parameter>: a name of 1 to {MAX_NAME} characters and a value of at most "
                f"{MAX_VALUE} are required"
            )
        parameters.append((name, value))
    if len(parameters) > MAX_PARAMETERS:
        raise RcmlParseError(f"<Stream>: at most {MAX_PARAMETERS} <Parameter> children")
    return tuple(parameters)


def _optional_url(element: Element, name: str, resolve: Resolve) -> str | None:
    raw = element.get(name)
    if raw is None or not raw.strip():
        return None
    return resolve(element, f"attribute {name}", raw)


def _method(element: Element, name: str) -> str:
    raw = element.get(name)
    method = (raw or "POST").strip().upper()
    if method not in ("GET", "POST"):
        raise RcmlParseError(f"<{element.tag}> attribute {name}: expected GET or POST, got {raw!r}")
    return method
