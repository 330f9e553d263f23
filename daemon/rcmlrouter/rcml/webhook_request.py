"""One webhook request, ready for the wire: method, URL, form body, signature headers (SPEC §3).

:func:`prepare_request` turns what the RCML layer knows (a URL that may carry a ``#`` override
fragment, a method, the parameters, the account's AuthToken) into a :class:`WebhookRequest`:
GET parameters go to the query string, POST parameters to an
``application/x-www-form-urlencoded`` body, and both signature headers are set (Twilio's
algorithm, :mod:`rcmlrouter.rcml.signing`). A bad URL or method is a ``FetchError`` (11200).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from yarl import URL

from rcmlrouter.errors import FetchError
from rcmlrouter.rcml.overrides import FetchTimeouts, parse_url_overrides
from rcmlrouter.rcml.signing import SIGNATURE_HEADERS, compute_signature

__all__ = ["WebhookRequest", "form_encode", "prepare_request"]

_URL_SAFE = re.compile(r"[A-Za-z0-9_.~-]*")


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    method: str
    target_url: str  # as configured, without fragment and GET params (ErrorUrl, records)
    url: URL  # what goes on the wire (GET params included), already encoded
    data: bytes | None
    headers: dict[str, str]
    timeouts: FetchTimeouts


def form_encode(params: Mapping[str, str], quote_via: Callable[[str, str], str]) -> str:
    """``urlencode`` with a fast path for the common already-safe names and values."""
    safe = _URL_SAFE.fullmatch
    return "&".join(
        [
            (name if safe(name) else quote_via(name, ""))
            + "="
            + (value if safe(value) else quote_via(value, ""))
            for name, value in params.items()
        ]
    )


def prepare_request(
    url: str,
    method: str,
    params: Mapping[str, str],
    auth_token: str,
    defaults: FetchTimeouts,
    user_agent: str,
) -> WebhookRequest:
    """The signed request for ``method url`` with ``params``; ``FetchError`` (11200) if bad."""
    target_url, timeouts = parse_url_overrides(url, defaults)
    verb = method.strip().upper()
    if verb not in ("GET", "POST"):
        raise FetchError(f"invalid webhook method {method!r}", 11200, target_url)
    try:
        parsed = URL(target_url)
    except (ValueError, TypeError) as exc:
        raise FetchError(f"invalid webhook URL {target_url!r}", 11200, target_url) from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FetchError(f"webhook URL must be http(s): {target_url!r}", 11200, target_url)
    wire_url = str(parsed)
    headers = {"User-Agent": user_agent}
    data: bytes | None = None
    if verb == "GET":
        if params:
            joiner = "&" if "?" in wire_url else "?"
            if wire_url.endswith(("?", "&")):
                joiner = ""
            wire_url += joiner + form_encode(params, quote)
        signature = compute_signature(wire_url, (), auth_token)
    else:
        data = form_encode(params, quote_plus).encode("ascii")
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        signature = compute_signature(wire_url, params, auth_token)
    for header in SIGNATURE_HEADERS:
        headers[header] = signature
    return WebhookRequest(verb, target_url, URL(wire_url, encoded=True), data, headers, timeouts)
