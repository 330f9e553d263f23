"""Request parameters: reading form bodies and query strings, validating values (SPEC §1.3)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urljoin, urlsplit

from aiohttp import web

from rcmlrouter.api.render import Paging
from rcmlrouter.errors import ApiError

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_FRIENDLY_NAME = 64
MAX_URL = 2048
MAX_TWIML = 4000  # Twiml of POST Calls and of a call update (Twilio's limit)
MAX_TIME_LIMIT = 86_400  # TimeLimit of a call, seconds (Twilio: 24 h at most; 4 h by default)
_TRUE_FALSE = {"true": True, "false": False}


def invalid(name: str, problem: str, code: int = 20001) -> ApiError:
    return ApiError(400, code, f"{name}: {problem}")


class Params:
    """Parameters of one request. ``has`` tells absent from empty (empty clears a field)."""

    def __init__(
        self, values: Mapping[str, str], repeated: Mapping[str, list[str]] | None = None
    ) -> None:
        self._values = dict(values)
        self._repeated = dict(repeated or {})  # every value of a parameter sent more than once

    @classmethod
    async def from_body(cls, request: web.Request) -> Params:
        """The urlencoded (or multipart) body; 400 for any other non-empty body."""
        if request.body_exists and request.content_type not in FORM_TYPES:
            raise ApiError(400, 20001, "request body must be application/x-www-form-urlencoded")
        try:
            form = await request.post()
        except UnicodeDecodeError as exc:
            raise ApiError(400, 20001, "request body is not valid UTF-8") from exc
        except ValueError as exc:
            raise ApiError(400, 20001, f"malformed request body: {exc}") from exc
        values: dict[str, str] = {}
        repeated: dict[str, list[str]] = {}
        for key, value in form.items():
            if not isinstance(value, str):
                raise invalid(key, "file uploads are not accepted")
            if key in values:
                repeated.setdefault(key, [values[key]]).append(value)
            values.setdefault(key, value)
        return cls(values, repeated)

    @classmethod
    def from_query(cls, request: web.Request) -> Params:
        values: dict[str, str] = {}
        for key, value in request.query.items():
            values.setdefault(key, value)
        return cls(values)

    def has(self, name: str) -> bool:
        return name in self._values

    def raw(self, name: str) -> str | None:
        """The value as sent (not trimmed): a message Body keeps its spaces."""
        return self._values.get(name)

    def items(self) -> list[tuple[str, str]]:
        """Every parameter (the first of a repeated one), sorted by name."""
        return sorted(self._values.items())

    def every(self) -> list[tuple[str, str]]:
        """Every value sent, repeated parameters included, sorted (values of one name in the
        order sent)."""
        pairs = [(k, v) for k, v in self._values.items() if k not in self._repeated]
        pairs += [(k, v) for k, values in self._repeated.items() for v in values]
        return sorted(pairs, key=lambda pair: pair[0])

    def all(self, name: str) -> list[str]:
        """Every value of ``name`` in the order sent (``[]`` when absent)."""
        if name in self._repeated:
            return list(self._repeated[name])
        return [self._values[name]] if name in self._values else []

    def text(self, name: str) -> str | None:
        value = self._values.get(name)
        return value.strip() if value is not None else None

    def boolean(self, name: str) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        if value.lower() not in _TRUE_FALSE:
            raise invalid(name, f"{value!r} is not true or false")
        return _TRUE_FALSE[value.lower()]

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.text(name)
        if value is None or value == "":
            return default
        # ASCII digits only: str.isdigit() takes '²' (int() refuses it: a 500) and '𝟙' alike,
        # and a 5,000-digit value would be past int()'s limit
        digits = value.lstrip("0") or "0"
        if not (value.isascii() and value.isdigit() and len(digits) <= len(str(high))):
            raise invalid(name, f"{value[:40]!r} is not an integer from {low} to {high}")
        if not low <= int(digits) <= high:
            raise invalid(name, f"{value[:40]!r} is not an integer from {low} to {high}")
        return int(digits)

    def friendly_name(self, name: str = "FriendlyName") -> str | None:
        value = self.text(name)
        if value is not None and len(value) > MAX_FRIENDLY_NAME:
            raise invalid(name, f"longer than {MAX_FRIENDLY_NAME} characters", 21506)
        return value

    def url(self, name: str, base: str | None) -> str | None:
        """None when absent, "" to clear, else an absolute http(s) URL (21502)."""
        value = self.text(name)
        if not value:
            return value
        return check_url(name, value, base)

    def address(self, name: str) -> str | None:
        """An address parameter (``To``, ``From``); a leading ``+`` sent unencoded
        (``-d To=+1…``) arrives as a space and is read as ``+`` again (an address never starts
        with a space)."""
        value = self.raw(name)
        if value is None:
            return None
        if value[:1] == " " and value[1:2].isdigit():
            value = "+" + value[1:]
        return value.strip()

    def method(self, name: str) -> str | None:
        """None when absent, "" to reset, else GET or POST (21503)."""
        value = self.text(name)
        if not value:
            return value
        if value.upper() not in ("GET", "POST"):
            raise invalid(name, f"{value!r} is not GET or POST", 21503)
        return value.upper()


# Twilio's parameters a create does not implement: name -> (why, the one value accepted because
# it means what rcmlrouter does anyway, or None)
Unsupported = Mapping[str, tuple[str, str | None]]


def refuse_unsupported(
    params: Params, unsupported: Unsupported, *, empty_is_absent: bool = False
) -> None:
    """400 (20001) naming the first parameter of ``unsupported`` that is sent (never ignored),
    unless with its accepted value; an empty value is absent when ``empty_is_absent``."""
    for name, (why, allowed) in unsupported.items():
        value = params.text(name)
        if value is None or (empty_is_absent and value == ""):
            continue
        if allowed is not None and value.lower() == allowed:
            continue
        raise invalid(name, f"not supported by rcmlrouter ({why})")


def check_url(name: str, value: str, base: str | None) -> str:
    if base is not None and value.startswith("/") and not value.startswith("//"):
        value = urljoin(base, value)
    if len(value) > MAX_URL or any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise invalid(name, "is not a valid URL", 21502)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise invalid(name, f"{value!r} is not a valid URL", 21502) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid(name, f"{value!r} is not an absolute http or https URL", 21502)
    return value


MAX_PAGE_SIZE = 1000


def read_paging(params: Params) -> Paging:
    """``Page`` (0-based, default 0) and ``PageSize`` (1-1000, default 50); else 20001."""
    return Paging(
        params.integer("Page", 0, 0, 10**9),
        params.integer("PageSize", 50, 1, MAX_PAGE_SIZE),
    )
