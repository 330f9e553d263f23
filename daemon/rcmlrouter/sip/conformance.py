"""Request checks the parser leaves to the UAS: what RFC 3261 and the RFC 4475 torture tests
say a user agent refuses before acting on a well-framed request, sans-I/O.

:func:`request_refusal` returns ``(status, reason text, extra headers)`` or None. It runs once per
new request (not on retransmissions or ACKs), after the parser has checked framing, the
start line, the mandatory headers and CSeq:

- extraneous separators in Via / Contact (``;;``, a trailing ``;``, an empty comma-separated
  value: RFC 4475 §3.1.2.1) → 400;
- a single-value header given more than once (§3.3.8) → 400;
- out-of-range scalars: Max-Forwards over 255, Expires over 2**32-1 (§3.1.2.4) → 400;
- a Request-URI that is no URI (``<sip:…>``, §3.1.2.7) or a SIP URI with headers (§3.1.2.11)
  → 400; a scheme other than sip, sips or tel (§3.3.2, §3.3.3) → 416;
- an INVITE body we cannot read (neither SDP nor multipart) → 415; an INVITE whose Accept
  excludes SDP (§3.3.15) → 406.
"""

from __future__ import annotations

import re

from rcmlrouter.sip.message import Header, SipRequest
from rcmlrouter.sip.uri import ascii_int, split_outside_quotes

Refusal = tuple[int, str, list[Header]]
Index = dict[str, tuple[Header, ...]]

SINGLE_VALUE = ("from", "to", "call-id", "cseq", "max-forwards", "content-type", "expires")
URI_SCHEMES = frozenset({"sip", "sips", "tel"})
MAX_FORWARDS_LIMIT = 255
MAX_EXPIRES = 2**32 - 1
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_EMPTY_PARAM = re.compile(r";\s*(?:;|$)")
_ACCEPTS_SDP = frozenset({"application/sdp", "application/*", "*/*"})
_ACCEPT_SDP: list[Header] = [("Accept", "application/sdp")]


def request_refusal(request: SipRequest) -> Refusal | None:
    """Why ``request`` must be refused before anything acts on it, or None."""
    index = request._lookup()
    for name in SINGLE_VALUE:
        entries = index.get(name)
        if entries is not None and len(entries) > 1:
            return 400, f"more than one {entries[0][0]} header", []
    problem = _separators(index) or _scalars(index)
    if problem is not None:
        return 400, problem, []
    refusal = _request_uri(request.uri)
    if refusal is None and request.method == "INVITE":
        refusal = _invite_body(request, index)
    return refusal


def _separators(index: Index) -> str | None:
    """Empty values or parameters in Via and Contact (RFC 4475 §3.1.2.1)."""
    for name in ("via", "contact"):
        for header, value in index.get(name, ()):
            if not value.strip():
                return f"empty {header} value (extra comma)"
            if (
                _EMPTY_PARAM.search(value) is not None
                and any(  # then outside quotes?
                    not part.strip() for part in split_outside_quotes(value, ";")[1:]
                )
            ):
                return f"empty parameter in {header} (extra semicolon)"
    return None


def _scalars(index: Index) -> str | None:
    max_forwards = index.get("max-forwards")
    if max_forwards is not None:
        hops = ascii_int(max_forwards[0][1].strip(), 3)
        if hops is None or hops > MAX_FORWARDS_LIMIT:
            return "Max-Forwards out of range"
    expires = index.get("expires")
    if expires is not None:
        seconds = ascii_int(expires[0][1].strip())
        if seconds is None or seconds > MAX_EXPIRES:
            return "Expires out of range"
    return None


def _request_uri(uri: str) -> Refusal | None:
    scheme, colon, rest = uri.partition(":")
    if not colon or not rest or _SCHEME_RE.fullmatch(scheme) is None:
        return 400, "malformed Request-URI", []
    scheme = scheme.lower()
    if scheme not in URI_SCHEMES:
        return 416, f"unsupported URI scheme {scheme[:20]}", []
    if scheme != "tel" and "?" in rest.rpartition("@")[2]:  # the user part may hold a "?"
        return 400, "headers in the Request-URI", []
    return None


def _invite_body(request: SipRequest, index: Index) -> Refusal | None:
    content_type = request.content_type if request.body else None
    if content_type is None or content_type == "application/sdp":
        readable = True  # no Content-Type: read as SDP, as peers that omit it mean
    else:
        readable = content_type.startswith("multipart/")
    if request.body and not readable:
        return 415, "only application/sdp bodies are understood", _ACCEPT_SDP
    accepted = [v.split(";", 1)[0].strip().lower() for _, v in index.get("accept", ())]
    accepted = [v for v in accepted if v]
    if accepted and _ACCEPTS_SDP.isdisjoint(accepted):
        return 406, "the answer is application/sdp", _ACCEPT_SDP
    return None


__all__ = ["Refusal", "request_refusal"]
