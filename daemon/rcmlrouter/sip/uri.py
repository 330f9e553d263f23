"""SIP URIs, name-addrs and Via values (RFC 3261 §19.1, §20.10, §20.42), sans-I/O.

Every parser raises :class:`SipParseError` on malformed input and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from rcmlrouter.errors import SipParseError

_HOST_RE = re.compile(r"[A-Za-z0-9._~!$&'()*+,=%-]+")
_SCHEMES = ("sip", "sips", "tel")
_USER_SAFE = "-_.!~*'()&=+$,;?/#%"
_VIA_PROTO_RE = re.compile(r"SIP\s*/\s*2\.0\s*/\s*([A-Za-z]+)\s+(.+)", re.IGNORECASE | re.DOTALL)

Params = dict[str, str | None]


def ascii_int(text: str, max_digits: int = 10) -> int | None:
    """``text`` as an integer when it is ASCII digits whose value has at most ``max_digits``
    digits, else None. Leading zeros do not count: the grammar is ``1*DIGIT``, so
    ``Max-Forwards: 0068`` is 68 (RFC 4475 §3.1.1.1) and ``CSeq: 0009`` is 9.

    ``str.isdigit`` alone lets through what ``int`` refuses ('²', or over 4300 digits): a
    ValueError from a header value would escape the parser.
    """
    if text and text.isascii() and text.isdigit():
        significant = text.lstrip("0")
        if len(significant) <= max_digits:
            return int(significant or "0")
    return None


def split_outside_quotes(text: str, sep: str) -> list[str]:
    """Split ``text`` at ``sep`` except inside double quotes or angle brackets."""
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts: list[str] = []
    start = 0
    in_quote = False
    in_angle = False
    i = 0
    length = len(text)
    while i < length:
        char = text[i]
        if in_quote:
            if char == "\\":
                i += 1
            elif char == '"':
                in_quote = False
        elif char == '"':
            in_quote = True
        elif char == "<":
            in_angle = True
        elif char == ">":
            in_angle = False
        elif char == sep and not in_angle:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if in_quote:
        raise SipParseError("unterminated quoted string")
    parts.append(text[start:])
    return parts


def parse_params(text: str) -> Params:
    """Parse ``;a=b;c`` (leading ``;`` optional) into an ordered dict; names lower-cased."""
    params: Params = {}
    for raw in split_outside_quotes(text, ";"):
        item = raw.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        name = name.strip().lower()
        if not name or " " in name:
            raise SipParseError(f"malformed parameter {item!r}")
        params[name] = value.strip() if eq else None
    return params


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def parse_hostport(text: str) -> tuple[str, int | None]:
    """``host[:port]`` with IPv6 references in brackets; the host is lower-cased."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError(f"malformed IPv6 reference {text!r}")
        host = text[: end + 1]
        rest = text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise SipParseError(f"malformed host {text!r}")
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = text.partition(":")
        if not host or not _HOST_RE.fullmatch(host):
            raise SipParseError(f"malformed host {text!r}")
    port: int | None = None
    if port_text or text.endswith(":"):
        port = ascii_int(port_text, 5)
        if port is None or not 0 < port < 65536:
            raise SipParseError(f"malformed port in {text!r}")
    return host.lower(), port


def format_host(host: str) -> str:
    """Bracket a bare IPv6 address for use in a URI or Via."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def bare_host(host: str) -> str:
    """Strip IPv6 brackets for use with sockets."""
    return host[1:-1] if host.startswith("[") else host


@dataclass(slots=True)
class SipUri:
    """A ``sip:``, ``sips:`` or ``tel:`` URI. ``user`` is percent-decoded."""

    scheme: str
    user: str | None
    host: str
    port: int | None = None
    params: Params = field(default_factory=dict)
    headers: str = ""
    password: str | None = None

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user or ''}{format_params(self.params)}"
        text = f"{self.scheme}:"
        if self.user is not None:
            text += quote(self.user, safe=_USER_SAFE)
            if self.password is not None:
                text += ":" + self.password
            text += "@"
        text += format_host(self.host)
        if self.port is not None:
            text += f":{self.port}"
        text += format_params(self.params)
        if self.headers:
            text += "?" + self.headers
        return text

    @property
    def transport(self) -> str:
        """The transport asked for by the URI (``udp`` unless ``transport=`` or sips)."""
        value = self.params.get("transport")
        if value:
            return value.lower()
        return "tls" if self.scheme == "sips" else "udp"


def parse_uri(text: str) -> SipUri:
    """Parse a SIP, SIPS or tel URI."""
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if not colon or scheme not in _SCHEMES or not rest:
        raise SipParseError(f"unsupported URI {text[:80]!r}")
    if scheme == "tel":
        number, _, param_text = rest.partition(";")
        if not number:
            raise SipParseError("empty tel URI")
        return SipUri("tel", unquote(number), "", None, parse_params(param_text))
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user_text, pcolon, pass_text = userinfo.partition(":")
        user = unquote(user_text, errors="replace") if "%" in user_text else user_text
        password = pass_text if pcolon else None
    rest, _, headers = rest.partition("?")
    hostport, _, param_text = rest.partition(";")
    host, port = parse_hostport(hostport)
    return SipUri(scheme, user, host, port, parse_params(param_text), headers, password)


def _unquote_display(text: str) -> str:
    text = text.strip()
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise SipParseError("malformed display name")
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return " ".join(text.split())


@dataclass(slots=True)
class NameAddr:
    """A From/To/Contact/Route value: optional display name, URI, header parameters."""

    uri: SipUri
    display: str | None = None
    params: Params = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        display = ""
        if self.display:
            escaped = self.display.replace("\\", "\\\\").replace('"', '\\"')
            display = f'"{escaped}" '
        return f"{display}<{self.uri}>{format_params(self.params)}"


def _find_angle(text: str) -> int:
    """Index of the ``<`` opening the URI, skipping a quoted display name."""
    if text.startswith('"'):
        i = 1
        while i < len(text):
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == '"':
                return text.find("<", i)
            i += 1
        raise SipParseError("unterminated display name")
    return text.find("<")


_NAME_ADDR_FAST = re.compile(
    r'(?:"([^"\\]*)"\s*|([A-Za-z0-9 .+_-]*))<(sips?):(?:([A-Za-z0-9.+_!~*\'()&=$,/-]+)@)?'
    r"([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?(;[^<>?\"]*)?>(.*)",
    re.DOTALL,
)


def parse_name_addr(text: str) -> NameAddr:
    """Parse ``"Name" <sip:u@h>;tag=x`` or ``sip:u@h;tag=x`` (params belong to the header)."""
    text = text.strip()
    fast = _NAME_ADDR_FAST.fullmatch(text)
    if fast is not None:  # the common form in one match; same result as the general path
        quoted, bare, scheme, user, host, port_text, uri_params, params = fast.groups()
        port = int(port_text) if port_text else None
        if port is None or 0 < port < 65536:
            display = quoted if quoted is not None else " ".join(bare.split())
            uri = SipUri(scheme, user, host.lower(), port, parse_params(uri_params or ""))
            return NameAddr(uri, display or None, parse_params(params))
    lt = _find_angle(text)
    if lt >= 0:
        gt = text.find(">", lt)
        if gt < 0:
            raise SipParseError("missing '>' in name-addr")
        display = _unquote_display(text[:lt]) or None
        return NameAddr(parse_uri(text[lt + 1 : gt]), display, parse_params(text[gt + 1 :]))
    uri_text, _, param_text = text.partition(";")
    return NameAddr(parse_uri(uri_text), None, parse_params(param_text))


@dataclass(slots=True)
class Via:
    """One Via value. ``host`` keeps IPv6 brackets; ``port`` is None when absent."""

    transport: str
    host: str
    port: int | None
    params: Params

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> str:
        return f"{self.host}:{self.port or 5060}"

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"


def parse_via(text: str) -> Via:
    match = _VIA_PROTO_RE.fullmatch(text.strip())
    if match is None:
        raise SipParseError(f"malformed Via {text[:80]!r}")
    sent_by, _, param_text = match.group(2).partition(";")
    host, port = parse_hostport(sent_by)
    return Via(match.group(1).upper(), host, port, parse_params(param_text))
