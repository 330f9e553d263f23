"""The retry of a request we sent that drew ``401`` / ``407``: the answer to the strongest usable
Digest challenge (SHA-256 before MD5; :mod:`rcmlrouter.sip.auth` computes it), and the same
request again with the next CSeq and that answer. Sans-I/O; the outgoing call
(:mod:`rcmlrouter.sip.outgoing`) retries once.
"""

from __future__ import annotations

from rcmlrouter.errors import SipParseError
from rcmlrouter.sip.auth import DigestCredentials, authorization, parse_challenge
from rcmlrouter.sip.message import Header, SipRequest, SipResponse

# status → (the challenge's header, the answer's header)
CHALLENGE_HEADERS = {
    401: ("WWW-Authenticate", "Authorization"),
    407: ("Proxy-Authenticate", "Proxy-Authorization"),
}


def digest_answer(
    response: SipResponse,
    names: tuple[str, str],
    request: SipRequest,
    credentials: DigestCredentials,
) -> Header | None:
    """The Authorization/Proxy-Authorization header answering the strongest usable challenge."""
    challenge_name, answer_name = names
    challenges = []
    for value in response.get_all(challenge_name):
        try:
            challenges.append(parse_challenge(value))
        except SipParseError:
            continue
    if not challenges:
        return None
    best = max(challenges, key=lambda c: c.base_algorithm == "SHA-256")
    value = authorization(best, credentials, request.method, request.uri, body=request.body)
    return answer_name, value


def next_request(request: SipRequest, auth: list[Header]) -> SipRequest:
    """The same request with the next CSeq and the credentials (a new Via is stamped)."""
    dropped = {"Via", "CSeq", "Authorization", "Proxy-Authorization"}
    headers = [h for h in request.headers if h[0] not in dropped]
    headers.insert(0, ("CSeq", f"{request.cseq[0] + 1} {request.method}"))
    headers.extend(auth)
    return SipRequest(request.method, request.uri, headers, request.body)


__all__ = ["CHALLENGE_HEADERS", "digest_answer", "next_request"]
