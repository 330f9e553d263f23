"""Building responses: copied headers, reason phrases, where a response goes, and salvaging
just enough of a malformed request to answer it with 400."""

from __future__ import annotations

import random

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
    split_head,
)
from rcmlrouter.sip.transport import Source
from rcmlrouter.sip.uri import bare_host, split_outside_quotes


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
        value = request.get(name) or ""
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
    404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    415: "Unsupported Media Type",
    420: "Bad Extension", 480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    483: "Too Many Hops", 486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    500: "Server Internal Error", 501: "Not Implemented", 503: "Service Unavailable",
    505: "Version Not Supported", 603: "Decline",
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
    port = int(rport) if rport and rport.isdigit() else (via.port or 5060)
    return ("udp", via.params.get("received") or bare_host(via.host), port)


def salvage_request(data: bytes) -> SipRequest | None:
    """Best effort: a request with just enough headers to send a 400, or None."""
    try:
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
                    request.headers.extend(
                        (name, v.strip()) for v in split_outside_quotes(value, ",")
                    )
                else:
                    request.headers.append((name, value.strip()))
        for name in REQUIRED_HEADERS:
            request._require(name)
        request.top_via  # noqa: B018
        request.cseq  # noqa: B018
    except SipParseError:
        return None
    return request


def reason_header(status: int, text: str) -> Header:
    """``Reason: SIP;cause=N;text="..."`` (RFC 3326) with the text made safe to quote."""
    safe = "".join(c for c in text if c >= " " and c not in '"\\')[:200]
    return ("Reason", f'SIP;cause={status};text="{safe}"')
