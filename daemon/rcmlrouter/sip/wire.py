"""Bytes → SIP messages (RFC 3261 §7, §20), sans-I/O: framing, header lines, the parser.

:func:`parse_message` turns bytes into a :class:`~rcmlrouter.sip.message.SipRequest` or
:class:`~rcmlrouter.sip.message.SipResponse` and raises :class:`SipParseError` (and nothing
else) on malformed input; :func:`frame_length` finds a message's end in a stream.
"""

from __future__ import annotations

from rcmlrouter.errors import SipParseError
from rcmlrouter.sip.message import (
    MAX_HEADER_LINE,
    MAX_HEADERS,
    MAX_MESSAGE_BYTES,
    REQUIRED_HEADERS,
    Header,
    SipMessage,
    SipRequest,
    SipResponse,
    canonical_name,
    is_token,
)
from rcmlrouter.sip.uri import ascii_int, split_outside_quotes

__all__ = ["frame_length", "parse_message", "split_head"]

_MULTI_VALUE = frozenset(
    [
        "Via",
        "Route",
        "Record-Route",
        "Contact",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Allow-Events",
    ]
)
_NAME_CACHE: dict[str, str] = {}  # header name as written (a valid token) -> canonical name
_CACHE_LIMIT = 1024


def split_head(data: bytes) -> tuple[bytes, bytes, bool]:
    """Split at the blank line; returns (head, rest, blank_line_found)."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return data[:end], data[end + 4 :], True
    end = data.find(b"\n\n")
    if end >= 0:
        return data[:end], data[end + 2 :], True
    return data, b"", False


def _header_lines(head: bytes) -> list[str]:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError("header section is not UTF-8") from exc
    text = text.lstrip("\r\n")
    if (
        len(text) <= MAX_HEADER_LINE
        and "\r\r" not in text
        and text.count("\n") == text.count("\r\n")
        and "\n " not in text
        and "\n\t" not in text
        and not text.endswith("\r")
    ):
        lines = text.split("\r\n")  # the common case: CRLF only, nothing folded or long
    else:
        lines = _header_lines_slow(text)
    if len(lines) > MAX_HEADERS + 1:
        raise SipParseError("too many headers")
    return lines


def _header_lines_slow(text: str) -> list[str]:
    lines: list[str] = []
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if len(line) > MAX_HEADER_LINE:
            raise SipParseError("header line too long")
        if line[:1] in (" ", "\t") and lines:
            lines[-1] = lines[-1].rstrip() + " " + line.strip()  # folded continuation
        else:
            lines.append(line)
    return lines


def _header_name(raw: str, line: str) -> str:
    """The canonical name of a header written as ``raw`` (memoised for valid tokens)."""
    name = _NAME_CACHE.get(raw)
    if name is not None:
        return name
    name = raw.strip()
    if not is_token(name):
        raise SipParseError(f"malformed header line {line[:60]!r}")
    name = canonical_name(name)
    if len(_NAME_CACHE) < _CACHE_LIMIT:
        _NAME_CACHE[raw] = name
    return name


def _parse_headers(lines: list[str]) -> list[Header]:
    headers: list[Header] = []
    append = headers.append
    for line in lines:
        raw, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"malformed header line {line[:60]!r}")
        name = _header_name(raw, line)
        value = value.strip()
        if name in _MULTI_VALUE and "," in value:
            headers.extend((name, part.strip()) for part in split_outside_quotes(value, ","))
        else:
            append((name, value))
    if len(headers) > MAX_HEADERS:
        raise SipParseError("too many headers")
    return headers


def _start_line(line: str) -> SipRequest | SipResponse:
    if line[:8].upper() == "SIP/2.0 ":
        code, _, reason = line[8:].strip().partition(" ")
        status = ascii_int(code, 3) if len(code) == 3 else None
        if status is None or not 100 <= status <= 699:
            raise SipParseError(f"malformed status line {line[:60]!r}")
        return SipResponse(status, reason.strip())
    parts = line.split(" ")
    if len(parts) != 3 or not is_token(parts[0]) or not parts[1]:
        raise SipParseError(f"malformed request line {line[:60]!r}")
    if parts[2].upper() != "SIP/2.0":
        raise SipParseError("SIP Version Not Supported", sip_status=505)
    return SipRequest(parts[0], parts[1])


def _content_length(message: SipMessage) -> int | None:
    values = message.get_all("Content-Length")
    if not values:
        return None
    length = ascii_int(values[0], 18)
    if len(set(values)) > 1 or length is None:
        raise SipParseError("malformed Content-Length")
    return length


def _check_request(request: SipRequest) -> None:
    index = request._lookup()
    for name in REQUIRED_HEADERS:
        if name.lower() not in index:  # same as get(name) is None: the names are canonical
            raise SipParseError(f"missing {name} header")
    _, method = request.cseq
    if method != request.method.upper():
        raise SipParseError("CSeq method does not match the request method")
    request.top_via  # noqa: B018 - validates the top Via
    # From/To are parsed on first use; a SipParseError then still leads to a 400.


def parse_message(data: bytes, *, stream: bool = False) -> SipRequest | SipResponse:
    """Parse one complete message. ``stream`` (TCP) makes Content-Length mandatory."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise SipParseError("message too large", sip_status=513)
    head, rest, _ = split_head(data.lstrip(b"\r\n"))
    lines = _header_lines(head)
    if not lines or not lines[0]:
        raise SipParseError("empty message")
    message = _start_line(lines[0])
    message.headers = _parse_headers(lines[1:])
    length = _content_length(message)
    if length is None:
        if stream:
            raise SipParseError("Content-Length is required on stream transports")
        length = len(rest)
    if len(rest) < length:
        raise SipParseError("body shorter than Content-Length")
    message.body = rest[:length]
    if isinstance(message, SipRequest):
        _check_request(message)
    else:
        message.top_via  # noqa: B018 - a response without a valid Via cannot be matched
        message.cseq  # noqa: B018
    return message


def frame_length(buffer: bytes | bytearray) -> int | None:
    """Length of the first complete message in a stream buffer, or None if incomplete.

    Leading CRLF keep-alives are part of the frame. Raises :class:`SipParseError` when the
    buffer cannot be the start of a valid message (too big, no Content-Length).
    """
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_MESSAGE_BYTES:
            raise SipParseError("header section too large")
        return None
    head_end = end + 4
    length: int | None = None
    for line in bytes(buffer[:end]).split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in (b"content-length", b"l"):
            text = value.strip()
            if not text.isdigit():
                raise SipParseError("malformed Content-Length")
            if len(text) > 18:
                raise SipParseError("message too large", sip_status=413)
            if length is not None and int(text) != length:  # RFC 4475 §3.3.9: no framing
                raise SipParseError("conflicting Content-Length values")
            length = int(text)
    if length is None:
        raise SipParseError("Content-Length is required on stream transports")
    total = head_end + length
    if total > MAX_MESSAGE_BYTES:
        raise SipParseError("message too large", sip_status=413)
    return total if len(buffer) >= total else None
