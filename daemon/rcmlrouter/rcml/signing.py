"""Webhook request signing, compatible with Twilio's ``X-Twilio-Signature`` (SPEC §3.3).

signature = base64(HMAC-SHA1(auth_token, url + name1 + value1 + name2 + value2 …)) where the
names are the POST form parameters sorted by name (then by value, for repeated names). For a GET
request the parameters are already part of ``url`` (its query string) and ``params`` is empty.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence

SIGNATURE_HEADERS = ("X-Restcomm-Signature", "X-Twilio-Signature")


def compute_signature(
    url: str, params: Mapping[str, str] | Sequence[tuple[str, str]], auth_token: str
) -> str:
    """Return the base64 signature of a request to ``url`` with form ``params``."""
    pairs = params.items() if isinstance(params, Mapping) else params
    parts = [url]
    for name, value in sorted(pairs):
        parts.append(name)
        parts.append(value)
    digest = hmac.new(
        auth_token.encode("utf-8"), "".join(parts).encode("utf-8"), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_matches(
    signature: str,
    url: str,
    params: Mapping[str, str] | Sequence[tuple[str, str]],
    auth_token: str,
) -> bool:
    """Check a received signature in constant time."""
    expected = compute_signature(url, params, auth_token)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))
