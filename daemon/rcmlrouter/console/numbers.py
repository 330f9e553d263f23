"""Numbers: the list (the API's filters and paging), buy from the inventory (area-code search),
create a SIP or regex number (the pattern checked live), edit, release.

Every change goes through the API's own operations (``api/numbers.py``): the same validation,
the same error codes (21505 for a pattern, 21422 for a number not available…), shown inline.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from rcmlrouter.api.available import inventory_query
from rcmlrouter.api.context import store_of
from rcmlrouter.api.flavour import RESTCOMM
from rcmlrouter.api.form import Params, read_paging
from rcmlrouter.api.numbers import (
    TYPE_SEGMENTS,
    change_number,
    check_sip_number,
    number_query,
    owned_number,
    provision_number,
    release_number,
)
from rcmlrouter.console.access import page
from rcmlrouter.console.templating import html, see_other
from rcmlrouter.console.visit import visit_of
from rcmlrouter.errors import ApiError
from rcmlrouter.store.records import IncomingNumber

# The fields of the create and edit forms, by API parameter name: (label, kind).
WEBHOOK_FIELDS = (
    ("VoiceUrl", "Voice URL", "url"),
    ("VoiceMethod", "Voice method", "method"),
    ("VoiceFallbackUrl", "Voice fallback URL", "url"),
    ("VoiceFallbackMethod", "Voice fallback method", "method"),
    ("StatusCallback", "Status callback URL", "url"),
    ("StatusCallbackMethod", "Status callback method", "method"),
    ("SmsUrl", "SMS URL", "url"),
    ("SmsMethod", "SMS method", "method"),
    ("SmsFallbackUrl", "SMS fallback URL", "url"),
    ("SmsFallbackMethod", "SMS fallback method", "method"),
    ("ReferUrl", "Refer URL", "url"),
    ("ReferMethod", "Refer method", "method"),
)
NUMBER_TYPES = {"": "Any type", **{segment: segment for segment in TYPE_SEGMENTS}}
SIP_KINDS = {
    "dial": "an exact dial string",
    "channel": "a channel URI",
    "regex": "a regex pattern (RE2, valid)",
    "catchall": "the catch-all: every call no other number takes",
}


def number_values(number: IncomingNumber) -> dict[str, str]:
    """The edit form's values, by API parameter name."""
    values = {"FriendlyName": number.friendly_name}
    for name, _label, _kind in WEBHOOK_FIELDS:
        attribute = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
        value: Any = getattr(number, attribute)
        values[name] = "" if value is None else str(value)
    return values


@page
async def list_numbers(request: web.Request) -> web.StreamResponse:
    visit = visit_of(request)
    params = Params.from_query(request)
    paging = read_paging(params)
    kind = params.text("Type") or ""
    query = number_query(visit.acting.sid, params, TYPE_SEGMENTS.get(kind))
    found = await store_of(request).list_numbers(query, paging.page, paging.page_size)
    last = max(0, (found.total - 1) // paging.page_size)
    filters = {name: params.text(name) or "" for name in ("PhoneNumber", "FriendlyName")}
    return html(
        request,
        "numbers.html",
        numbers=found.items,
        total=found.total,
        paging=paging,
        last_page=last,
        filters={**filters, "Type": kind, "PageSize": str(paging.page_size)},
        types=NUMBER_TYPES,
        done=request.query.get("done", ""),
    )


@page
async def new_number(request: web.Request) -> web.StreamResponse:
    return await _new_number_page(request, Params({}), error=None)


async def _new_number_page(
    request: web.Request, form: Params, error: ApiError | None
) -> web.StreamResponse:
    params = Params.from_query(request)
    area_code = params.text("AreaCode") or ""
    available, search_error = [], None
    if area_code or params.text("Contains"):
        try:
            query = inventory_query(
                params, "US", TYPE_SEGMENTS.get(params.text("Type") or "Local", "local")
            )
            available = await store_of(request).list_inventory(query, time.time())
        except ApiError as exc:
            search_error = exc
    return html(
        request,
        "number_new.html",
        status=error.http_status if error else 200,
        area_code=area_code,
        contains=params.text("Contains") or "",
        available=available,
        search_error=search_error,
        form=form,
        error=error,
        fields=WEBHOOK_FIELDS,
    )


@page
async def create_number(request: web.Request) -> web.StreamResponse:
    visit = visit_of(request)
    form = await Params.from_body(request)
    try:
        created = await provision_number(request, visit.acting, form, None, RESTCOMM.api_version)
    except ApiError as exc:
        return await _new_number_page(request, form, exc)
    return see_other(visit.url(f"numbers/{created.sid}", done="created"))


@page
async def check_number(request: web.Request) -> web.StreamResponse:
    """The live pattern check of the create form: the API's own SIP-number validation."""
    raw = (request.query.get("PhoneNumber") or "").strip()
    try:
        kind = check_sip_number(raw)
    except ApiError as exc:
        return web.json_response({"ok": False, "code": exc.code, "message": exc.message})
    return web.json_response(
        {"ok": True, "kind": kind, "message": f"{raw!r} is {SIP_KINDS[kind]}."}
    )


@page
async def edit_number(request: web.Request) -> web.StreamResponse:
    visit = visit_of(request)
    number = await owned_number(store_of(request), visit.acting, request.match_info["sid"])
    return _edit_page(request, number, number_values(number), None)


def _edit_page(
    request: web.Request, number: IncomingNumber, values: dict[str, str], error: ApiError | None
) -> web.Response:
    return html(
        request,
        "number_edit.html",
        status=error.http_status if error else 200,
        number=number,
        values=values,
        error=error,
        fields=WEBHOOK_FIELDS,
        done=request.query.get("done", ""),
    )


@page
async def update_number(request: web.Request) -> web.StreamResponse:
    visit = visit_of(request)
    number = await owned_number(store_of(request), visit.acting, request.match_info["sid"])
    form = await Params.from_body(request)
    try:
        await change_number(request, visit.viewer, number, form)
    except ApiError as exc:
        values = {name: form.text(name) or "" for name in number_values(number)}
        return _edit_page(request, number, values, exc)
    return see_other(visit.url(f"numbers/{number.sid}", done="saved"))


@page
async def confirm_release(request: web.Request) -> web.StreamResponse:
    visit = visit_of(request)
    number = await owned_number(store_of(request), visit.acting, request.match_info["sid"])
    return html(request, "number_release.html", number=number)


@page
async def release(request: web.Request) -> web.StreamResponse:
    visit = visit_of(request)
    number = await owned_number(store_of(request), visit.acting, request.match_info["sid"])
    await release_number(request, number)
    return see_other(visit.url("numbers", done=f"released {number.phone_number}"))
