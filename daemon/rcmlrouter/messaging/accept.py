"""Whether an inbound MESSAGE can be accepted (SPEC §5), and which ones were accepted lately.

Pure decisions over the request: :func:`message_text` returns the body as text or raises a
:class:`~rcmlrouter.errors.SipError` carrying the refusal (415 / 400 / 413). :class:`RecentMessages`
remembers the ``Call-ID CSeq`` of accepted messages for 32 s (64*T1, a non-INVITE transaction's
lifetime), so a MESSAGE re-sent outside its transaction is answered 202 again and not processed
twice.
"""

from __future__ import annotations

import asyncio
import codecs
import time
from collections import OrderedDict
from typing import Generic, TypeVar

from rcmlrouter.errors import SipError
from rcmlrouter.sip.message import SipRequest

UDP_MAX_BODY = 1300
STREAM_MAX_BODY = 64 * 1024
DEDUPE_SECONDS = 32.0
DEDUPE_MAX = 200_000
ACCEPTED_TYPE = "text/plain"
T = TypeVar("T")


def message_text(request: SipRequest, transport: str) -> str:
    """The MESSAGE body as text; ``SipError`` 415 (not text/plain, or an unknown charset),
    400 (empty, or not valid in its charset) or 413 (over 1,300 bytes on UDP, 64 KiB on TCP)."""
    media_type, charset = content_type(request.get("Content-Type") or "")
    if media_type != ACCEPTED_TYPE:
        shown = media_type or "no Content-Type"
        raise SipError(f"{shown} is not supported; send text/plain", sip_status=415)
    body = request.body
    if not body:
        raise SipError("empty message body", sip_status=400)
    limit = UDP_MAX_BODY if transport == "udp" else STREAM_MAX_BODY
    if len(body) > limit:
        raise SipError(f"body of {len(body)} bytes is over {limit} on {transport}", sip_status=413)
    try:
        codecs.lookup(charset)
    except LookupError as exc:
        raise SipError(f"unknown charset {charset!r}", sip_status=415) from exc
    try:
        return body.decode(charset)
    except UnicodeDecodeError as exc:
        raise SipError(f"body is not valid {charset}", sip_status=400) from exc


def content_type(value: str) -> tuple[str, str]:
    """``(media type, charset)`` of a Content-Type value, lower case; charset default utf-8."""
    media_type, *params = value.split(";")
    charset = "utf-8"
    for param in params:
        name, _, param_value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = param_value.strip().strip('"').lower() or charset
    return media_type.strip().lower(), charset


def dedupe_key(request: SipRequest) -> str:
    """``Call-ID CSeq-number``: what a re-sent MESSAGE repeats (RFC 3428 §7)."""
    return f"{request.call_id} {request.cseq[0]}"


class RecentMessages(Generic[T]):
    """``dedupe_key`` → a future of how the first copy was answered (a re-send arriving before
    the first one is stored waits for it, then gets the same answer).

    Entries expire ``DEDUPE_SECONDS`` after they were added; at most ``DEDUPE_MAX`` are kept
    (the oldest go first).
    """

    def __init__(self, seconds: float = DEDUPE_SECONDS, size: int = DEDUPE_MAX) -> None:
        self.seconds = seconds
        self.size = size
        self._items: OrderedDict[str, tuple[float, asyncio.Future[T]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> asyncio.Future[T] | None:
        self._expire(time.monotonic())
        item = self._items.get(key)
        return item[1] if item is not None else None

    def add(self, key: str, stored: asyncio.Future[T]) -> None:
        now = time.monotonic()
        self._items[key] = (now + self.seconds, stored)
        self._items.move_to_end(key)
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        self._expire(now)

    def forget(self, key: str) -> None:
        self._items.pop(key, None)

    def _expire(self, now: float) -> None:
        items = self._items
        while items:
            key, (expires, _) = next(iter(items.items()))
            if expires > now:
                return
            del items[key]
