"""Building responses: copied headers, reason phrases, where a response goes, and salvaging
just enough of a malformed request to answer it with 400; :class:`Responder`, the endpoint as
what makes and resends its responses (for the calls and the receiver)."""

from __future__ import annotations

import random
import re
from typing import Protocol

from rcmlrouter.errors import SipParseError
from rcmlrouter.sip.message import (
    MAX_HEADERS,
    MAX_MESSAGE_BYTES,
    REQUIRED_HEADERS,
    Header,
    SipRequest,
    SipResponse,
    canonical_name,
    is_token,
)
from rcmlrouter.sip.stream import Source
from rcmlrouter.sip.uri import ascii_int, bare_host, split_outside_quotes
from rcmlrouter.sip.via import stamp_received
from rcmlrouter.sip.wire import split_head


class Responder(Protocol):
    """What makes and resends the endpoint's responses (``Endpoint``): a response to ``request``
    with the endpoint's own headers (Server, Contact) and ``headers``; a response sent again to
    ``destination``. ``CallHost`` and ``ReceiverHost`` extend it."""

    def make_response(
        self,
        request: SipRequest,
        status: int,
        reason: str | None,
        *,
        to_tag: str | None,
        headers: list[Header] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SipResponse: ...

    def resend(self, response: SipResponse, destination: Source) -> None: ...


def build_response(
    request: SipRequest,
    status: int,
    reason: str,
    *,
    to_tag: str | None = None,
    headers: list[Header] | None = None,
    body: bytes = b"",
) -> SipResponse:
    """A response with Via/From/To/Call-ID/CSeq copied (§8.2.6.2); ``to_tag`` is added to To
    unless it already has one. Record-Route is copied for dialog-forming responses."""
    copied: list[Header] = [h for h in request.headers if h[0] == "Via"]
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = request.get(name)
        if value is None:
            continue  # a salvaged request may lack From/To/Call-ID (RFC 4475 §3.3.1)
        if name == "To" and to_tag and ";tag=" not in value.replace(" ", "").lower():
            value = f"{value};tag={to_tag}"
        copied.append((name, value))
    if request.method == "INVITE" and 100 < status < 300:
        copied.extend(h for h in request.headers if h[0] == "Record-Route")
    if headers:
        copied.extend(headers)
    return SipResponse(status, reason, copied, body)


REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout",
    413: "Request Entity Too Large", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension", 480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    483: "Too Many Hops", 486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    500: "Server Internal Error", 501: "Not Implemented", 503: "Service Unavailable",
    505: "Version Not Supported", 513: "Message Too Large", 603: "Decline",
}  # fmt: skip


def reason_phrase(status: int) -> str:
    return REASON_PHRASES.get(status) or ("OK" if status < 300 else "Error")


def new_tag() -> str:
    return f"{random.getrandbits(64):016x}"


def reply_destination(request: SipRequest, source: Source) -> Source:
    """RFC 3261 §18.2.2 + RFC 3581: TCP → the connection; UDP → received + rport/Via port."""
    if source[0] != "udp":
        return source
    via = request.top_via
    rport = via.params.get("rport")
    port = (ascii_int(rport, 5) if rport else None) or via.port or 5060
    return ("udp", via.params.get("received") or bare_host(via.host), port)


def salvage_request(data: bytes) -> SipRequest | None:
    """Best effort: a request with just enough headers to answer it (an error status), or None.

    A Via and a CSeq are enough (RFC 4475 §3.3.1: From, To or Call-ID may be missing; §3.1.2.4:
    the CSeq number may be out of range; both are copied as they are). A top Via of another
    SIP version (§3.1.2.16) is read as SIP/2.0 so that the 505 can be sent.
    """
    head, _, _ = split_head(data[:MAX_MESSAGE_BYTES])
    lines = head.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ")
    if len(parts) < 3 or not is_token(parts[0]) or parts[0].upper() == "ACK":
        return None
    request = SipRequest(parts[0], parts[1])
    for line in lines[1 : MAX_HEADERS + 1]:
        name, colon, value = line.partition(":")
        name = canonical_name(name.strip())
        if colon and name in REQUIRED_HEADERS:
            if name == "Via":
                request.headers.extend((name, v.strip()) for v in split_outside_quotes(value, ","))
            else:
                request.headers.append((name, value.strip()))
    if request.get("Via") is None or request.get("CSeq") is None:
        return None
    try:
        request.top_via  # noqa: B018
    except SipParseError:
        index = next(i for i, (name, _) in enumerate(request.headers) if name == "Via")
        request.headers[index] = ("Via", _OTHER_VERSION.sub("SIP/2.0/", request.headers[index][1]))
        try:
            request.top_via  # noqa: B018
        except SipParseError:
            return None
    return request


_OTHER_VERSION = re.compile(r"^\s*SIP\s*/\s*\d+\.\d+\s*/", re.IGNORECASE)


def error_destination(request: SipRequest, source: Source) -> Source:
    """Where a stateless error response goes: as for any request (RFC 3581 ``received`` and
    ``rport`` stamped from ``source``, so a name in the Via is never looked up)."""
    stamp_received(request, source[1], source[2])
    return reply_destination(request, source)


def reason_header(status: int, text: str) -> Header:
    """``Reason: SIP;cause=N;text="..."`` (RFC 3326) with the text made safe to quote."""
    safe = "".join(c for c in text if c >= " " and c not in '"\\')[:200]
    return ("Reason", f'SIP;cause={status};text="{safe}"')
