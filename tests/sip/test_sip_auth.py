"""Digest client authentication against the example vectors of RFC 2617 and RFC 7616."""

from __future__ import annotations

import re

import pytest

from rcmlrouter.errors import SipParseError
from rcmlrouter.sip.auth import (
    DigestChallenge,
    DigestCredentials,
    authorization,
    digest_response,
    parse_challenge,
)

RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def params_of(value: str) -> dict[str, str]:
    assert value.startswith("Digest ")
    return {k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|[^,\s]+)', value)}


def test_rfc2617_example() -> None:
    challenge = parse_challenge(RFC2617_CHALLENGE)
    assert challenge == DigestChallenge(
        realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        algorithm="MD5",
        qop=("auth", "auth-int"),
        opaque="5ccc069c403ebaf9f0171e9517f40e41",
    )
    value = authorization(
        challenge,
        DigestCredentials("Mufasa", "Circle Of Life"),
        "GET",
        "/dir/index.html",
        cnonce="0a4f113b",
    )
    params = params_of(value)
    assert params["response"] == "6629fae49393a05397450978507c4ef1"
    assert params["qop"] == "auth"
    assert params["nc"] == "00000001"
    assert params["cnonce"] == "0a4f113b"
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"
    assert params["username"] == "Mufasa"
    assert params["uri"] == "/dir/index.html"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_examples(algorithm: str, expected: str) -> None:
    challenge = parse_challenge(RFC7616_CHALLENGE.format(algorithm=algorithm))
    value = authorization(
        challenge,
        DigestCredentials("Mufasa", "Circle of Life"),
        "GET",
        "/dir/index.html",
        cnonce=RFC7616_CNONCE,
    )
    assert params_of(value)["response"] == expected
    assert params_of(value)["algorithm"] == algorithm


def test_without_qop_is_rfc2069() -> None:
    challenge = parse_challenge('Digest realm="sip.example.com", nonce="abc"')
    creds = DigestCredentials("bob", "zanzibar")
    value = authorization(challenge, creds, "MESSAGE", "sip:+15551234@gw.example.com")
    params = params_of(value)
    assert "qop" not in params and "cnonce" not in params and "opaque" not in params
    import hashlib

    ha1 = hashlib.md5(b"bob:sip.example.com:zanzibar").hexdigest()
    ha2 = hashlib.md5(b"MESSAGE:sip:+15551234@gw.example.com").hexdigest()
    assert params["response"] == hashlib.md5(f"{ha1}:abc:{ha2}".encode()).hexdigest()


def test_md5_sess_and_auth_int() -> None:
    import hashlib

    md5 = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731
    challenge = parse_challenge('Digest realm="r", nonce="n", algorithm=MD5-sess, qop="auth-int"')
    assert challenge.session and challenge.base_algorithm == "MD5"
    creds = DigestCredentials("u", "p")
    got = digest_response(
        challenge, creds, "MESSAGE", "sip:x@y", qop="auth-int", cnonce="c", body=b"hi"
    )
    ha1 = md5(f"{md5('u:r:p')}:n:c")
    ha2 = md5(f"MESSAGE:sip:x@y:{md5('hi')}")
    assert got == md5(f"{ha1}:n:00000001:c:auth-int:{ha2}")
    value = authorization(challenge, creds, "MESSAGE", "sip:x@y", cnonce="c", body=b"hi")
    assert params_of(value)["qop"] == "auth-int"
    assert params_of(value)["response"] == got


def test_stale_and_escaped_quotes() -> None:
    challenge = parse_challenge(
        'digest realm="a \\"quoted\\" realm, with comma",nonce=xyz,stale=TRUE'
    )
    assert challenge.realm == 'a "quoted" realm, with comma'
    assert challenge.nonce == "xyz"
    assert challenge.stale
    value = authorization(challenge, DigestCredentials("u", "p"), "MESSAGE", "sip:a@b")
    assert 'realm="a \\"quoted\\" realm, with comma"' in value


@pytest.mark.parametrize(
    "value",
    [
        'Basic realm="x"',
        'Digest nonce="n"',
        'Digest realm="r"',
        'Digest realm="r", nonce="n", algorithm=SHA-512-256',
        'Digest realm="r", nonce="n", garbage',
        'Digest realm="r, nonce="n"',
    ],
)
def test_bad_challenges(value: str) -> None:
    with pytest.raises(SipParseError):
        parse_challenge(value)
