"""SIP message model and serializer (RFC 3261 §7, §20), sans-I/O; the parser is
:mod:`rcmlrouter.sip.wire`.

Header names are stored in their canonical form (compact forms expanded); comma-separated
multi-value headers are split so that every Via, Route, Contact... value is one entry.
"""

from __future__ import annotations

import re

from rcmlrouter.errors import SipParseError
from rcmlrouter.sip.uri import (
    NameAddr,
    Via,
    ascii_int,
    parse_name_addr,
    parse_via,
)

MAX_MESSAGE_BYTES = 65536
MAX_HEADERS = 100
MAX_HEADER_LINE = 8192
MAX_CSEQ = 2**31 - 1

_CANONICAL = {
    name.lower(): name
    for name in [
        "Via",
        "Max-Forwards",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Content-Length",
        "Content-Type",
        "Content-Encoding",
        "Route",
        "Record-Route",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "User-Agent",
        "Server",
        "Subject",
        "Expires",
        "Event",
        "Subscription-State",
        "Refer-To",
        "Referred-By",
        "Reason",
        "Retry-After",
        "Authorization",
        "WWW-Authenticate",
        "Proxy-Authorization",
        "Proxy-Authenticate",
        "Allow-Events",
        "Diversion",
        "Timestamp",
        "Date",
        "Organization",
        "Priority",
        "Session-Expires",
        "Min-SE",
        "Warning",
        "P-Asserted-Identity",
    ]
}
_CANONICAL["call-id"] = "Call-ID"
_CANONICAL["cseq"] = "CSeq"
_CANONICAL["www-authenticate"] = "WWW-Authenticate"
_COMPACT = {
    "i": "Call-ID", "m": "Contact", "f": "From", "t": "To", "v": "Via", "l": "Content-Length",
    "c": "Content-Type", "k": "Supported", "s": "Subject", "e": "Content-Encoding",
    "o": "Event", "r": "Refer-To", "b": "Referred-By", "x": "Session-Expires", "u": "Allow-Events",
    "a": "Accept-Contact", "y": "Identity",
}  # fmt: skip
_TOKEN_RE = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
REQUIRED_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")

Header = tuple[str, str]


def canonical_name(name: str) -> str:
    lower = name.lower()
    return _COMPACT.get(lower) or _CANONICAL.get(lower) or name


_LOOKUP_KEYS: dict[str, tuple[str, str, str]] = {}
_CACHE_LIMIT = 1024


def _lookup_key(name: str) -> tuple[str, str, str]:
    """(name lower-cased, canonical name, canonical lower-cased), memoised."""
    found = _LOOKUP_KEYS.get(name)
    if found is None:
        key = canonical_name(name)
        found = (name.lower(), key, key.lower())
        if len(_LOOKUP_KEYS) < _CACHE_LIMIT:
            _LOOKUP_KEYS[name] = found
    return found


class SipMessage:
    """Headers (canonical name, value) in wire order plus a body.

    Lookups go through an index by lower-case name that is rebuilt whenever ``headers`` no
    longer equals the snapshot it was built from, so editing ``headers`` directly (append,
    insert, item assignment, a new list) is always seen.
    """

    __slots__ = (
        "_call_id",
        "_cseq",
        "_from",
        "_index",
        "_indexed",
        "_to",
        "_via",
        "body",
        "headers",
    )

    def __init__(self, headers: list[Header] | None = None, body: bytes = b"") -> None:
        self.headers: list[Header] = headers if headers is not None else []
        self.body = body
        self._indexed: tuple[Header, ...] | None = None
        self._index: dict[str, tuple[Header, ...]] = {}
        self._clear_parsed()

    def _clear_parsed(self) -> None:
        """Forget the memoised parses of Call-ID, CSeq, From, To and the top Via."""
        self._call_id: str | None = None
        self._cseq: tuple[int, str] | None = None
        self._from: NameAddr | None = None
        self._to: NameAddr | None = None
        self._via: Via | None = None

    def _lookup(self) -> dict[str, tuple[Header, ...]]:
        """The index; rebuilt (and the memoised parses dropped) when ``headers`` changed.

        Tuples, not lists: once the garbage collector has seen them they are untracked, which
        keeps long-lived messages (transactions linger 64*T1) cheap for every later collection.
        """
        snapshot = tuple(self.headers)
        if snapshot == self._indexed:  # compares the header tuples by identity first
            return self._index
        self._clear_parsed()
        index: dict[str, tuple[Header, ...]] = {}
        for header in snapshot:
            lower = header[0].lower()
            found = index.get(lower)
            index[lower] = (header,) if found is None else (*found, header)
        self._index = index
        self._indexed = snapshot
        return index

    def get(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None. An exact spelling
        wins over the canonical one, which wins over any other case."""
        index = self._lookup()
        lower, key, key_lower = _lookup_key(name)
        entries = index.get(lower)
        if entries is not None:
            for hname, value in entries:
                if hname == name:
                    return value
        if key_lower != lower:
            entries = index.get(key_lower)
        if entries is None:
            return None
        for hname, value in entries:
            if hname == key:
                return value
        return entries[0][1]

    def get_all(self, name: str) -> list[str]:
        entries = self._lookup().get(_lookup_key(name)[2])
        return [value for _, value in entries] if entries is not None else []

    def add(self, name: str, value: str) -> None:
        self.headers.append((canonical_name(name), value))

    def remove(self, name: str) -> None:
        lower = canonical_name(name).lower()
        self.headers = [h for h in self.headers if h[0].lower() != lower]

    def set(self, name: str, value: str) -> None:
        """Replace every value of ``name`` by one value (keeps the first position)."""
        key = canonical_name(name)
        lower = key.lower()
        for index, (hname, _) in enumerate(self.headers):
            if hname.lower() == lower:
                self.headers[index] = (key, value)
                self.headers[index + 1 :] = [
                    h for h in self.headers[index + 1 :] if h[0].lower() != lower
                ]
                return
        self.headers.append((key, value))

    def _require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise SipParseError(f"missing {name} header")
        return value

    # Parsed views, memoised until ``headers`` changes; treat the results as read-only.

    @property
    def call_id(self) -> str:
        self._lookup()
        if self._call_id is None:
            self._call_id = self._require("Call-ID")
        return self._call_id

    @property
    def cseq(self) -> tuple[int, str]:
        self._lookup()
        if self._cseq is None:
            self._cseq = parse_cseq(self._require("CSeq"))
        return self._cseq

    @property
    def from_addr(self) -> NameAddr:
        self._lookup()
        if self._from is None:
            self._from = parse_name_addr(self._require("From"))
        return self._from

    @property
    def to_addr(self) -> NameAddr:
        self._lookup()
        if self._to is None:
            self._to = parse_name_addr(self._require("To"))
        return self._to

    @property
    def top_via(self) -> Via:
        self._lookup()
        if self._via is None:
            self._via = parse_via(self._require("Via"))
        return self._via

    @property
    def content_type(self) -> str | None:
        value = self.get("Content-Type")
        return value.split(";", 1)[0].strip().lower() if value else None

    def start_line(self) -> str:
        raise NotImplementedError

    def serialize(self) -> bytes:
        """Wire bytes; Content-Length always reflects the body."""
        lines = [self.start_line()]
        lines.extend(f"{n}: {v}" for n, v in self.headers if n != "Content-Length")
        lines.append(f"Content-Length: {len(self.body)}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode() + self.body


class SentResponse:
    """A response a server transaction keeps to send again (RFC 3261 §17.2): status, To tag
    and wire bytes. A transaction lingers up to 64*T1 after its final response; a parsed
    message is ~30 objects every young-generation collection walks, this is one bytes object.
    """

    __slots__ = ("_data", "status", "to_tag")

    def __init__(self, response: SipResponse) -> None:
        self.status = response.status
        self.to_tag = response.to_addr.tag
        self._data = response.serialize()

    def serialize(self) -> bytes:
        return self._data

    def __repr__(self) -> str:
        return f"<SentResponse {self.status}>"


class SipRequest(SipMessage):
    __slots__ = ("method", "uri")

    def __init__(
        self, method: str, uri: str, headers: list[Header] | None = None, body: bytes = b""
    ) -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri

    def start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"

    def __repr__(self) -> str:
        return f"<SipRequest {self.method} {self.uri}>"


class SipResponse(SipMessage):
    __slots__ = ("reason", "status")

    def __init__(
        self, status: int, reason: str, headers: list[Header] | None = None, body: bytes = b""
    ) -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = reason

    def start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<SipResponse {self.status} {self.reason}>"


def parse_cseq(value: str) -> tuple[int, str]:
    parts = value.split()
    number = ascii_int(parts[0]) if len(parts) == 2 else None
    if number is None or number > MAX_CSEQ:
        raise SipParseError(f"malformed CSeq {value[:40]!r}")
    return number, parts[1].upper()


def is_token(text: str) -> bool:
    return _TOKEN_RE.fullmatch(text) is not None
