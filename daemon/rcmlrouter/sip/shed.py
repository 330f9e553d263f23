"""Shedding load early and cheaply: 503 to a new INVITE from its raw bytes.

When the endpoint is overloaded, a new INVITE (no To tag) is answered statelessly with
``503 Service Unavailable`` + ``Retry-After`` built from the request's own Via/From/To/Call-ID/
CSeq lines: no message object, no transaction, only the top Via parsed (to know where the
response goes). The 503 carries a per-process To tag, so the ACK it draws is recognised and
dropped just as cheaply. Anything unusual (folded lines, no header end, a To tag) returns None
and takes the ordinary path, which also answers 503 while overloaded.
"""

from __future__ import annotations

from rcmlrouter.errors import SipParseError
from rcmlrouter.sip.uri import Via, bare_host, parse_via

Source = tuple[str, str, int]

_COMPACT = {b"v": b"via", b"f": b"from", b"t": b"to", b"i": b"call-id"}
_NAMES = {b"via": b"Via", b"from": b"From", b"to": b"To", b"call-id": b"Call-ID", b"cseq": b"CSeq"}


def shed_response(
    data: bytes, source: Source, tag: str, retry_after: int, server: str
) -> tuple[bytes, Source] | None:
    """(503 response bytes, where to send them) for a new INVITE, or None when ``data`` is
    not one or looks unusual."""
    if not data.startswith(b"INVITE "):
        return None
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    copied: dict[bytes, list[bytes]] = {name: [] for name in _NAMES}
    for line in data[:end].split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not line or line[0] in b" \t":
            return None  # folded or malformed: leave it to the parser
        key = name.strip().lower()
        key = _COMPACT.get(key, key)
        if key in copied:
            copied[key].append(value.strip())
    if any(len(copied[name]) != 1 for name in (b"from", b"to", b"call-id", b"cseq")):
        return None
    to = copied[b"to"][0]
    if not copied[b"via"] or b";tag=" in to.replace(b" ", b"").lower():
        return None  # in-dialog (or odd): the ordinary path decides
    top = copied[b"via"][0]
    first = top.split(b",", 1)[0]
    try:
        via = parse_via(first.decode("ascii"))
    except (SipParseError, UnicodeDecodeError):
        return None
    destination, stamped = _reply_to(via, source)
    copied[b"via"][0] = stamped.encode("ascii") + top[len(first) :]
    copied[b"to"][0] = to + b";tag=" + tag.encode("ascii")
    lines = [b"SIP/2.0 503 Service Unavailable"]
    for key, values in copied.items():
        lines.extend(_NAMES[key] + b": " + value for value in values)
    lines.append(b"Retry-After: " + str(retry_after).encode("ascii"))
    lines.append(b"Server: " + server.encode("utf-8", "replace"))
    lines.append(b"Content-Length: 0")
    return b"\r\n".join(lines) + b"\r\n\r\n", destination


def _reply_to(via: Via, source: Source) -> tuple[Source, str]:
    """RFC 3261 §18.2.2 + RFC 3581: where the response goes, and the top Via stamped with
    ``received``/``rport`` as the transport layer does for parsed requests."""
    transport, host, port = source
    params = dict(via.params)
    if bare_host(via.host) != host or "rport" in params:
        params["received"] = host
    if "rport" in params:
        params["rport"] = str(port)
    stamped = str(Via(via.transport, via.host, via.port, params))
    if transport != "udp":
        return source, stamped
    return (transport, host, port if "rport" in params else (via.port or 5060)), stamped


def is_shed_ack(data: bytes, tag: str) -> bool:
    """The ACK of a 503 this module built (its To tag is ours)."""
    return data.startswith(b"ACK ") and (b"tag=" + tag.encode("ascii")) in data


__all__ = ["is_shed_ack", "shed_response"]
