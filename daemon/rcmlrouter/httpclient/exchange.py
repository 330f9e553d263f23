"""One HTTP/1.1 exchange: the request head out, the response in, parsed by ``httptools``
(llhttp, the parser uvicorn uses) within the limits a mature client sets.

- Interim responses (``100 Continue``, ``103 Early Hints``, any 1xx but 101) are skipped, in
  the same segment as the final response or not (RFC 9110 §15.2); their fields are dropped.
- The head is capped as aiohttp and Node.js cap it: a field line over ``MAX_LINE`` bytes or a
  head (interim heads included) over ``MAX_HEAD`` bytes is :class:`HeadTooLarge`, checked after
  every read, so an endless header costs at most one read past the limit. The same bound
  applies to bytes that carry no body (chunk-size lines, trailers).
- Trailer fields are not header fields: they are read and dropped (RFC 9110 §6.5.1).
- RFC 9112 leniencies a recipient should have: obs-fold lines are joined (§5.2) and whitespace
  between a chunk size and its extensions is accepted (§7.1.1).
- Bodies: ``Content-Length``, chunked, or to the connection's end; at most ``max_body`` bytes
  are kept (``oversize`` past that). :func:`decode_body` decodes gzip (every member) and
  deflate.
"""

from __future__ import annotations

import base64
import zlib

import httptools
from yarl import URL

from rcmlrouter.httpclient.failures import HeadTooLarge, MalformedResponse, TooLarge

__all__ = ["DEFAULT_PORTS", "MAX_HEAD", "MAX_LINE", "Exchange", "decode_body", "request_head"]

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_LINE = 8190  # aiohttp's max_line_size / max_field_size
MAX_HEAD = 64 * 1024  # all header fields of a response (curl: 300 KiB; Go: 1 MiB; Node.js: 16 KiB)


class Exchange:
    """What one response is being parsed into (httptools' callback target)."""

    __slots__ = (
        "_failure",
        "_fields",
        "_interim",
        "_line",
        "_parser",
        "_unproductive",
        "body",
        "complete",
        "content_encoding",
        "content_type",
        "delimited",
        "discard",
        "headers",
        "headers_done",
        "keep_alive",
        "location",
        "max_body",
        "oversize",
        "size",
        "status",
    )

    def __init__(self, max_body: int, discard: bool) -> None:
        self.body: list[bytes] = []
        self.complete = False
        self.content_encoding = b""
        self.content_type = b""
        self.delimited = False  # Content-Length or chunked: the body's end is known
        self.discard = discard
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.keep_alive = True
        self.location = b""
        self.max_body = max_body
        self.oversize = False
        self.size = 0
        self.status = 0
        self._failure: HeadTooLarge | None = None
        self._fields = 0  # bytes of header fields so far (interim heads included)
        self._interim = False
        self._line = 0  # bytes of the head's unfinished line
        self._unproductive = 0  # bytes read since the last body bytes
        parser = httptools.HttpResponseParser(self)
        parser.set_dangerous_leniencies(lenient_headers=True, lenient_spaces_after_chunk_size=True)
        self._parser: httptools.HttpResponseParser | None = parser

    def feed(self, data: bytes) -> None:
        """Parse ``data``; raise :class:`MalformedResponse` (or :class:`HeadTooLarge`)."""
        parser = self._parser
        if parser is None:
            raise MalformedResponse("bytes after the end of the exchange")
        size = self.size
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            raise MalformedResponse("the server switched protocols") from exc
        except httptools.HttpParserError as exc:
            if self._failure is not None:
                raise self._failure from None
            raise MalformedResponse(f"malformed response ({exc})") from exc
        if self.size != size or self.complete:
            self._unproductive = 0
            return
        if not self.headers_done:
            self._track_line(data)
        self._unproductive += len(data)
        if self._unproductive > MAX_HEAD:
            raise HeadTooLarge(f"more than {MAX_HEAD} bytes of response header or framing")

    def _track_line(self, data: bytes) -> None:
        """All of ``data`` is head: the unfinished line it leaves must stay within MAX_LINE."""
        first = data.find(b"\n")
        if first < 0:
            self._line += len(data)
        else:
            if self._line + first > MAX_LINE:
                raise HeadTooLarge(f"a response header line is over {MAX_LINE} bytes")
            self._line = len(data) - data.rfind(b"\n") - 1
        if self._line > MAX_LINE:
            raise HeadTooLarge(f"a response header line is over {MAX_LINE} bytes")

    def release(self) -> None:
        """Drop the parser: it refers back to this object (a cycle only the GC would free)."""
        self._parser = None

    def _fail(self, failure: HeadTooLarge) -> HeadTooLarge:
        self._failure = failure
        return failure

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value)
        self._fields += size + 4
        if size > MAX_LINE:
            raise self._fail(HeadTooLarge(f"a response header line is over {MAX_LINE} bytes"))
        if self._fields > MAX_HEAD:
            raise self._fail(HeadTooLarge(f"the response head is over {MAX_HEAD} bytes"))
        if self.headers_done:
            return  # a trailer field: never merged into the header section (RFC 9110 §6.5.1)
        self.headers.append((name, value))
        lower = name.lower()
        if lower == b"content-type":
            self.content_type = value
        elif lower == b"location":
            self.location = value
        elif lower == b"content-encoding":
            self.content_encoding = value.strip().lower()
        elif lower in (b"content-length", b"transfer-encoding"):
            self.delimited = True

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        status = parser.get_status_code()
        if status < 200:  # an interim response (101 raised HttpParserUpgrade): skip it
            self._interim = True
            self.headers = []
            self.content_type = self.location = self.content_encoding = b""
            self.delimited = False
            return
        self.status = status
        self.keep_alive = parser.should_keep_alive()
        self.headers_done = True

    def on_body(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_body:
            self.oversize = True
        elif not self.discard:
            self.body.append(data)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False  # the final response follows on the same connection
            return
        self.complete = True


def request_head(method: str, url: URL, headers: dict[str, str], body: bytes | None) -> bytes:
    host = url.raw_host or ""
    if ":" in host:
        host = f"[{host}]"
    if url.explicit_port is not None and url.explicit_port != DEFAULT_PORTS.get(url.scheme):
        host = f"{host}:{url.explicit_port}"
    lines = [f"{method} {url.raw_path_qs or '/'} HTTP/1.1", f"Host: {host}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    if url.user is not None:
        credentials = f"{url.user}:{url.password or ''}".encode()
        lines.append("Authorization: Basic " + base64.b64encode(credentials).decode("ascii"))
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    elif method == "POST":
        lines.append("Content-Length: 0")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def decode_body(content: bytes, encoding: bytes, max_body: int) -> bytes:
    """Decode a compressed body; more than ``max_body`` decoded bytes is :class:`TooLarge`."""
    if encoding in (b"gzip", b"x-gzip"):
        return _inflate_members(content, encoding, max_body)
    if encoding == b"deflate":
        try:
            return _inflate_members(content, encoding, max_body)  # zlib-wrapped, as specified
        except MalformedResponse:
            return _inflate(zlib.decompressobj(-15), content, encoding, max_body)  # raw deflate
    if encoding == b"identity":
        return content
    raise MalformedResponse(f"unsupported Content-Encoding {encoding.decode('latin-1')!r}")


def _inflate_members(content: bytes, encoding: bytes, max_body: int) -> bytes:
    """Every member of a gzip (or zlib) stream, one after the other (RFC 1952 §2.2)."""
    parts: list[bytes] = []
    size = 0
    rest = content
    while True:
        inflater = zlib.decompressobj(47)  # 32 + 15: a gzip or zlib header, detected
        part = _inflate(inflater, rest, encoding, max_body - size)
        parts.append(part)
        size += len(part)
        rest = inflater.unused_data
        if not inflater.eof or not rest.strip(b"\0"):
            return b"".join(parts)  # trailing zero padding is ignored, as gzip(1) does


def _inflate(inflater: zlib._Decompress, data: bytes, encoding: bytes, limit: int) -> bytes:
    try:
        decoded = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise MalformedResponse(f"bad {encoding.decode()} body ({exc})") from exc
    if len(decoded) > limit:
        raise TooLarge("the body is too large once decoded")
    return decoded
