"""Twilio 2010-04-01 list envelopes: ``Page``/``PageSize`` and the ``PageToken`` cursor.

Twilio's envelope has no ``total``/``num_pages``/``last_page_uri``: a client follows
``next_page_uri`` until it is null. Number lists page with a ``PageToken`` holding the last
(phone_number, sid) of the page (``PA…``: the rows after it) or the first (``PB…``: the rows
before it), so a page does not shift when numbers are bought or released meanwhile. Other lists
page by offset (``Page``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from rcmlrouter.api.flavour import flavour_of
from rcmlrouter.api.form import Params, invalid
from rcmlrouter.api.render import Paging, page_meta
from rcmlrouter.store.filters import NumberCursor
from rcmlrouter.store.records import IncomingNumber

AFTER, BEFORE = "PA", "PB"


def encode_token(number: IncomingNumber, before: bool = False) -> str:
    return token_of(NumberCursor(number.phone_number, number.sid), before)


def token_of(cursor: NumberCursor, before: bool) -> str:
    """``PA…`` (rows after the position) or ``PB…`` (rows before it): base64url JSON."""
    raw = json.dumps([cursor.phone_number, cursor.sid], separators=(",", ":")).encode()
    return (BEFORE if before else AFTER) + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> NumberCursor:
    """The cursor of a ``PageToken``; 400 (20001) when it is not one of ours."""
    prefix, body = token[:2], token[2:]
    try:
        if prefix not in (AFTER, BEFORE):
            raise ValueError(prefix)
        phone, sid = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if not isinstance(phone, str) or not isinstance(sid, str):
            raise ValueError(token)
    except (ValueError, binascii.Error, TypeError) as exc:
        raise invalid("PageToken", f"{token!r} is not a page token of this list") from exc
    return NumberCursor(phone, sid, before=prefix == BEFORE)


@dataclass(frozen=True, slots=True)
class TwilioPage:
    """One page as Twilio describes it: where it starts and how to reach its neighbours."""

    paging: Paging
    count: int
    next_token: str | None = None  # PageToken of the next page ("" = by offset)
    previous_token: str | None = None  # PageToken of the previous page ("" = by offset)
    token: str | None = None  # this page's own PageToken


def twilio_page_meta(
    request: web.Request, page: TwilioPage, filters: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """Twilio's list envelope; ``end`` is the index of the last item (``start`` when empty)."""
    paging = page.paging
    start = paging.page * paging.page_size
    end = start + page.count - 1 if page.count else start

    def uri(number: int, token: str | None) -> str:
        query = [*filters, ("PageSize", str(paging.page_size)), ("Page", str(number))]
        if token:
            query.append(("PageToken", token))
        return f"{request.path}?{urlencode(query)}"

    has_previous = page.previous_token is not None and paging.page > 0
    return {
        "page": paging.page,
        "page_size": paging.page_size,
        "start": start,
        "end": end,
        "uri": uri(paging.page, page.token),
        "first_page_uri": uri(0, None),
        "previous_page_uri": uri(paging.page - 1, page.previous_token) if has_previous else None,
        "next_page_uri": (
            uri(paging.page + 1, page.next_token) if page.next_token is not None else None
        ),
    }


def offset_page(paging: Paging, count: int, total: int) -> TwilioPage:
    """A page of an offset-paged list of ``total`` items."""
    more = paging.page * paging.page_size + count < total
    return TwilioPage(paging, count, "" if more else None, "" if paging.page > 0 else None)


def page_token(params: Params) -> NumberCursor | None:
    token = params.text("PageToken")
    return decode_token(token) if token else None


def keyset_page(
    paging: Paging, cursor: NumberCursor | None, token: str | None, rows: list[IncomingNumber]
) -> tuple[list[IncomingNumber], TwilioPage]:
    """The page's items and tokens from up to ``page_size + 1`` rows read at ``cursor``.

    The extra row tells that more rows lie in the reading direction: after the page when
    reading forwards, before it when reading backwards (``PB…``).
    """
    size = paging.page_size
    backwards = cursor is not None and cursor.before
    more = len(rows) > size
    items = (rows[1:] if more else rows) if backwards else rows[:size]
    has_next = more if not backwards else True
    has_previous = more if backwards else cursor is not None or paging.page > 0
    next_token = previous_token = None
    if items:
        next_token = encode_token(items[-1]) if has_next else None
        previous_token = encode_token(items[0], before=True) if has_previous else None
    elif paging.page > 0:  # nothing left at the cursor: step back by offset
        previous_token = ""
    return items, TwilioPage(paging, len(items), next_token, previous_token, token)


def offset_number_page(paging: Paging, items: list[IncomingNumber], total: int) -> TwilioPage:
    """A number page read by offset (``Page`` without a token); its neighbours by token."""
    more = paging.page * paging.page_size + len(items) < total
    next_token = encode_token(items[-1]) if more and items else None
    previous_token = encode_token(items[0], before=True) if items else ""
    return TwilioPage(paging, len(items), next_token, previous_token)


def list_meta(
    request: web.Request,
    paging: Paging,
    total: int,
    count: int,
    filters: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The list envelope of the request's flavour, for a list paged by offset."""
    if flavour_of(request).is_twilio:
        return twilio_page_meta(request, offset_page(paging, count, total), filters)
    return page_meta(request, paging, total, count, filters)
