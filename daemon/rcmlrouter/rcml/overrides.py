"""Per-URL connection overrides in the webhook URL's fragment (SPEC §3.2, Twilio's syntax).

URL-fragment overrides (``#ct=ms&rt=ms&tt=ms&rc=n&rp=ct,rt,4xx,5xx,all``, Twilio's syntax) are
stripped before the request. A bad key or value is *ignored with a warning* rather than failing
the call: URLs are validated at provisioning (:func:`url_override_problems`), so a bad fragment at
call time should not cost the caller the call. Retry tokens: ``ct`` = connection failures (refused,
DNS, connect timeout), ``rt`` = read/total timeouts, ``4xx`` / ``5xx`` = those statuses, ``all`` =
every transport or HTTP failure. Content-type and parse errors are deterministic and never retried.
When ``rc`` is given without ``rp`` and the defaults have no policy, ``rp=ct`` (Twilio's default).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import structlog

log = structlog.get_logger(__name__)

RETRY_TOKENS = frozenset({"ct", "rt", "4xx", "5xx", "all"})
_MAX_OVERRIDE_MS = 600_000
_MAX_RETRIES = 5


@dataclass(frozen=True, slots=True)
class FetchTimeouts:
    """Timeouts in seconds and the retry policy of one webhook request."""

    connect: float = 5.0
    read: float = 15.0
    total: float = 15.0
    retries: int = 0
    retry_on: frozenset[str] = frozenset()


def parse_url_overrides(url: str, defaults: FetchTimeouts) -> tuple[str, FetchTimeouts]:
    """Split ``url`` into the URL to request and the effective timeouts (bad keys ignored)."""
    if "#" not in url:
        return url, defaults
    return _parse_fragment_cached(url, defaults)


@functools.lru_cache(maxsize=1024)
def _parse_fragment_cached(url: str, defaults: FetchTimeouts) -> tuple[str, FetchTimeouts]:
    """Parse each distinct URL once (the hot path sees the same few URLs); warn once per URL."""
    base, _sep, fragment = url.partition("#")
    timeouts, problems = _apply_overrides(fragment, defaults)
    for problem in problems:
        log.warning("webhook.override_ignored", url=base, problem=problem)
    return base, timeouts


def url_override_problems(url: str) -> list[str]:
    """Every problem in ``url``'s override fragment (empty when valid); for provisioning checks."""
    _base, _sep, fragment = url.partition("#")
    return _apply_overrides(fragment, FetchTimeouts())[1] if fragment else []


def _apply_overrides(fragment: str, defaults: FetchTimeouts) -> tuple[FetchTimeouts, list[str]]:
    changes: dict[str, object] = {}
    problems: list[str] = []
    for item in fragment.split("&"):
        if not item:
            continue
        key, _eq, value = item.partition("=")
        problem = _apply_override(key, value, changes)
        if problem:
            problems.append(problem)
    if "retries" in changes and "retry_on" not in changes and not defaults.retry_on:
        changes["retry_on"] = frozenset({"ct"})
    return replace(defaults, **changes), problems  # type: ignore[arg-type]


def _apply_override(key: str, value: str, changes: dict[str, object]) -> str | None:
    fields = {"ct": "connect", "rt": "read", "tt": "total"}
    if key in fields:
        if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= _MAX_OVERRIDE_MS:
            return f"{key}={value!r}: expected milliseconds from 1 to {_MAX_OVERRIDE_MS}"
        changes[fields[key]] = int(value) / 1000.0
    elif key == "rc":
        if not (value.isascii() and value.isdigit()) or int(value) > _MAX_RETRIES:
            return f"rc={value!r}: expected a retry count from 0 to {_MAX_RETRIES}"
        changes["retries"] = int(value)
    elif key == "rp":
        tokens = frozenset(token.strip() for token in value.split(",") if token.strip())
        if not tokens or not tokens <= RETRY_TOKENS:
            return f"rp={value!r}: expected a comma list of {', '.join(sorted(RETRY_TOKENS))}"
        changes["retry_on"] = tokens
    else:
        return f"{key!r}: unknown override (known: ct, rt, tt, rc, rp)"
    return None
