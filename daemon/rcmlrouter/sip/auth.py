"""HTTP Digest authentication for SIP clients (RFC 3261 §22, RFC 2617, RFC 7616), sans-I/O.

Two pure functions: :func:`parse_challenge` reads a ``WWW-Authenticate`` / ``Proxy-Authenticate``
value, :func:`authorization` builds the matching ``Authorization`` / ``Proxy-Authorization``
value. Supported: algorithms ``MD5``, ``MD5-sess``, ``SHA-256``, ``SHA-256-sess``; ``qop=auth``,
``qop=auth-int`` (when ``auth`` is not offered) and the RFC 2069 form without ``qop``.

Parsers raise :class:`~rcmlrouter.errors.SipParseError` and nothing else.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from rcmlrouter.errors import SipParseError
from rcmlrouter.sip.uri import split_outside_quotes

_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)\s*\Z', re.DOTALL)

_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """One ``Digest`` challenge. ``algorithm`` is upper-case; ``qop`` lists the offered values."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @property
    def base_algorithm(self) -> str:
        return self.algorithm.removesuffix("-SESS")

    @property
    def session(self) -> bool:
        return self.algorithm.endswith("-SESS")


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    username: str
    password: str


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_challenge(value: str) -> DigestChallenge:
    """Parse a ``Digest`` challenge; raise ``SipParseError`` for anything else or a bad one."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise SipParseError(f"unsupported authentication scheme {scheme!r}")
    params: dict[str, str] = {}
    for item in split_outside_quotes(rest, ","):
        if not item.strip():
            continue
        match = _PARAM_RE.match(item)
        if match is None:
            raise SipParseError(f"malformed Digest parameter {item.strip()!r}")
        params[match.group(1).lower()] = _unquote(match.group(2))
    if "realm" not in params or "nonce" not in params:
        raise SipParseError("Digest challenge without realm or nonce")
    algorithm = params.get("algorithm", "MD5").upper()
    if algorithm.removesuffix("-SESS") not in _HASHES:
        raise SipParseError(f"unsupported Digest algorithm {algorithm!r}")
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    return DigestChallenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=algorithm,
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
    )


def digest_response(
    challenge: DigestChallenge,
    credentials: DigestCredentials,
    method: str,
    uri: str,
    *,
    qop: str | None,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """The ``response`` value (RFC 7616 §3.4.1)."""
    digest = _HASHES[challenge.base_algorithm]
    ha1 = digest(f"{credentials.username}:{challenge.realm}:{credentials.password}".encode())
    if challenge.session:
        ha1 = digest(f"{ha1}:{challenge.nonce}:{cnonce}".encode())
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 += ":" + digest(body)
    ha2 = digest(a2.encode())
    if qop is None:
        return digest(f"{ha1}:{challenge.nonce}:{ha2}".encode())
    return digest(f"{ha1}:{challenge.nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}".encode())


def authorization(
    challenge: DigestChallenge,
    credentials: DigestCredentials,
    method: str,
    uri: str,
    *,
    cnonce: str | None = None,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """The ``Authorization`` / ``Proxy-Authorization`` value answering ``challenge``."""
    qop: str | None = None
    if "auth" in challenge.qop:
        qop = "auth"
    elif "auth-int" in challenge.qop:
        qop = "auth-int"
    cnonce = cnonce or secrets.token_hex(8)
    response = digest_response(
        challenge, credentials, method, uri, qop=qop, cnonce=cnonce, nc=nc, body=body
    )
    parts = [
        f'username="{_quote(credentials.username)}"',
        f'realm="{_quote(challenge.realm)}"',
        f'nonce="{_quote(challenge.nonce)}"',
        f'uri="{_quote(uri)}"',
        f'response="{response}"',
        f"algorithm={challenge.algorithm}",
    ]
    if challenge.opaque is not None:
        parts.append(f'opaque="{_quote(challenge.opaque)}"')
    if qop is not None:
        parts += [f"qop={qop}", f"nc={nc:08x}", f'cnonce="{_quote(cnonce)}"']
    return "Digest " + ", ".join(parts)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


__all__ = [
    "DigestChallenge",
    "DigestCredentials",
    "authorization",
    "digest_response",
    "parse_challenge",
]
