"""A request retried with Digest credentials after 401/407 (sip/digest_retry.py)."""

from __future__ import annotations

import re

from rcmlrouter.sip.auth import DigestCredentials, digest_response, parse_challenge
from rcmlrouter.sip.digest_retry import CHALLENGE_HEADERS, digest_answer, next_request
from rcmlrouter.sip.message import SipRequest
from rcmlrouter.sip.response import build_response

CREDENTIALS = DigestCredentials("alice", "secret")
MD5 = 'Digest realm="trunk", nonce="n-md5", qop="auth"'
SHA256 = 'Digest realm="trunk", nonce="n-sha", qop="auth", algorithm=SHA-256'


def invite(method: str = "INVITE") -> SipRequest:
    return SipRequest(
        method,
        "sip:+15105550000@trunk.example.com",
        [
            ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1"),
            ("From", "<sip:a@example.com>;tag=1"),
            ("To", "<sip:+15105550000@trunk.example.com>"),
            ("Call-ID", "c1"),
            ("CSeq", f"1 {method}"),
            ("Proxy-Authorization", "Digest stale"),
        ],
        b"v=0\r\n",
    )


def params_of(value: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|[^,\s]+)', value)}


def test_the_strongest_usable_challenge_is_answered() -> None:
    request = invite()
    challenges = [("WWW-Authenticate", v) for v in (MD5, "Basic realm=x", SHA256)]
    response = build_response(request, 401, "Unauthorized", to_tag="t", headers=challenges)
    answer = digest_answer(response, CHALLENGE_HEADERS[401], request, CREDENTIALS)
    assert answer is not None and answer[0] == "Authorization"
    params = params_of(answer[1])
    assert params["algorithm"] == "SHA-256" and params["nonce"] == "n-sha"
    assert params["uri"] == request.uri
    expected = digest_response(
        parse_challenge(SHA256),
        CREDENTIALS,
        "INVITE",
        request.uri,
        qop="auth",
        cnonce=params["cnonce"],
    )
    assert params["response"] == expected


def test_a_proxy_challenge_gets_a_proxy_answer_for_the_request_method() -> None:
    request = invite("MESSAGE")
    response = build_response(
        request, 407, "Proxy Authentication Required", headers=[("Proxy-Authenticate", MD5)]
    )
    answer = digest_answer(response, CHALLENGE_HEADERS[407], request, CREDENTIALS)
    assert answer is not None and answer[0] == "Proxy-Authorization"
    params = params_of(answer[1])
    expected = digest_response(
        parse_challenge(MD5),
        CREDENTIALS,
        "MESSAGE",
        request.uri,
        qop="auth",
        cnonce=params["cnonce"],
    )
    assert params["response"] == expected


def test_no_usable_challenge_no_answer() -> None:
    request = invite()
    response = build_response(
        request, 401, "Unauthorized", headers=[("WWW-Authenticate", "Basic realm=x")]
    )
    assert digest_answer(response, CHALLENGE_HEADERS[401], request, CREDENTIALS) is None


def test_the_retry_has_the_next_cseq_and_only_the_new_answer() -> None:
    request = invite()
    retry = next_request(request, [("Authorization", "Digest new")])
    assert (retry.method, retry.uri, retry.body) == (request.method, request.uri, request.body)
    assert retry.cseq == (2, "INVITE")
    assert retry.get("Via") is None  # stamped again when sent
    assert retry.get("Proxy-Authorization") is None
    assert retry.get_all("Authorization") == ["Digest new"]
    assert retry.call_id == "c1" and retry.from_addr.tag == "1"
