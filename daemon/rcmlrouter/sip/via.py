"""The Via headers we write: ``received``/``rport`` stamped on an incoming request's top Via
(RFC 3581), and our own Via on a request we send (RFC 3261 §8.1.1.7).

Pure functions over values; :mod:`rcmlrouter.sip.transport` stamps every request it parses, the
client transactions and the dialer put our Via on what they send.
"""

from __future__ import annotations

from rcmlrouter.sip.message import SipRequest
from rcmlrouter.sip.uri import Via, bare_host, format_host


def stamp_received(request: SipRequest, host: str, port: int) -> None:
    """RFC 3581: add ``received`` (and fill ``rport``) on the top Via."""
    via = request.top_via
    rport_asked = "rport" in via.params
    if bare_host(via.host) == host and not rport_asked:
        return  # nothing to add: the Via (and every memoised parse) stays as it is
    params = dict(via.params)
    params["received"] = host
    if rport_asked:
        params["rport"] = str(port)
    for index, (name, _) in enumerate(request.headers):
        if name == "Via":
            request.headers[index] = ("Via", str(Via(via.transport, via.host, via.port, params)))
            return


def via_value(transport: str, host: str, port: int, branch: str) -> str:
    return f"SIP/2.0/{transport.upper()} {format_host(host)}:{port};branch={branch};rport"


__all__ = ["stamp_received", "via_value"]
