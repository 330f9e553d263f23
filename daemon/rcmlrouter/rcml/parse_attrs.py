"""What the RCML parsers share (pure, no I/O): the parse context that resolves relative URLs,
and the attribute readers, each raising :class:`~rcmlrouter.errors.RcmlParseError` that names the
element and the attribute (``parse.py``, ``parse_dial.py``)."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urljoin, urlsplit
from xml.etree.ElementTree import Element

from rcmlrouter.errors import RcmlParseError

METHODS: Final = frozenset({"GET", "POST"})
DTMF_KEYS: Final = frozenset("0123456789*#")
MAX_TARGET_LENGTH: Final = 256  # a dialled number, SIP URI or conference name
_ABSOLUTE_HTTP_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:@%_~!$&'()*+,;=]+(?:[/?#][^\s]*)?\Z")


class Context:
    """What every verb parser needs: the base URL for resolving relative URLs."""

    __slots__ = ("base_url",)

    def __init__(self, base_url: str | None) -> None:
        self.base_url = base_url

    def resolve(self, element: Element, where: str, raw: str) -> str:
        """Return ``raw`` as an absolute http(s) URL, or raise naming ``where``."""
        url = raw.strip()
        if not url:
            raise RcmlParseError(f"<{element.tag}> {where}: URL is empty")
        if _ABSOLUTE_HTTP_URL.match(url):
            return url  # the common case, without urljoin/urlsplit
        if self.base_url is not None:
            url = urljoin(self.base_url, url)
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise RcmlParseError(f"<{element.tag}> {where}: invalid URL {raw!r}") from exc
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RcmlParseError(
                f"<{element.tag}> {where}: expected an absolute http(s) URL, got {raw!r}"
            )
        return url


def int_attr(element: Element, name: str, default: int, low: int, high: int) -> int:
    raw = element.get(name)
    if raw is None:
        return default
    value = raw.strip()
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise RcmlParseError(
            f"<{element.tag}> attribute {name}: expected an integer from {low} to {high}, "
            f"got {raw!r}"
        )
    return int(value)


def method_attr(element: Element, name: str = "method") -> str:
    raw = element.get(name)
    if raw is None:
        return "POST"
    method = raw.strip().upper()
    if method not in METHODS:
        raise RcmlParseError(f"<{element.tag}> attribute {name}: expected GET or POST, got {raw!r}")
    return method


def bool_attr(element: Element, name: str, default: bool) -> bool:
    raw = element.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise RcmlParseError(
            f"<{element.tag}> attribute {name}: expected true or false, got {raw!r}"
        )
    return value == "true"


def keys_attr(element: Element, name: str, default: str, max_keys: int) -> str:
    raw = element.get(name)
    if raw is None:
        return default
    keys = raw.strip()
    if len(keys) > max_keys or not set(keys) <= DTMF_KEYS:
        raise RcmlParseError(
            f"<{element.tag}> attribute {name}: expected at most {max_keys} of 0-9 * #, got {raw!r}"
        )
    return keys


def url_attr(element: Element, name: str, context: Context) -> str | None:
    raw = element.get(name)
    if raw is None or not raw.strip():
        return None
    return context.resolve(element, f"attribute {name}", raw)


def text_of(element: Element) -> str:
    return (element.text or "").strip()


def no_children(element: Element) -> None:
    if len(element):
        raise RcmlParseError(f"<{element[0].tag}> is not allowed inside <{element.tag}>")
