"""IncomingPhoneNumbers: list, create, read, update, delete (SPEC §1.3, §1.4)."""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web

from rcmlrouter.api.auth import authorize
from rcmlrouter.api.context import settings_of, store_of
from rcmlrouter.api.flavour import flavour_of
from rcmlrouter.api.form import Params, invalid, read_paging
from rcmlrouter.api.number_params import (
    APPLICATION_PARAMS,
    apply_changes,
    check_applications,
    national_format,
    number_changes,
    number_collection,
    number_resource,
    parse_provider_number,
)
from rcmlrouter.api.render import Collection, Resource, page_meta, render, strip_format
from rcmlrouter.api.render_twilio import twilio_number_fields
from rcmlrouter.api.twilio_paging import (
    keyset_page,
    offset_number_page,
    page_token,
    twilio_page_meta,
)
from rcmlrouter.errors import (
    ApiError,
    ConflictError,
    InvalidNumberError,
    InvalidPatternError,
    NotFoundError,
)
from rcmlrouter.routing.numbers import SipNumberKind, classify_sip_number, compile_pattern
from rcmlrouter.store.base import Store
from rcmlrouter.store.filters import InventoryQuery, NumberQuery
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import Account, IncomingNumber, InventoryEntry

TYPE_SEGMENTS = {"Local": "local", "TollFree": "toll-free", "Mobile": "mobile"}
AREA_CODE = re.compile(r"[2-9][0-9]{2}")
LIST_FILTERS = ("PhoneNumber", "FriendlyName", "Beta")


async def handle_list_resource(request: web.Request) -> web.Response:
    """``IncomingPhoneNumbers[.json]``: GET lists, POST creates."""
    if request.method == "POST":
        return await create_number(request, None)
    return await list_numbers(request, None)


async def handle_instance_resource(request: web.Request) -> web.Response:
    """``IncomingPhoneNumbers/{Local|TollFree|Mobile|PN…}[.json]``."""
    segment = strip_format(request.match_info["sid"])
    number_type = TYPE_SEGMENTS.get(segment)
    if number_type is not None:
        if request.method == "POST":
            return await create_number(request, number_type)
        if request.method == "GET":
            return await list_numbers(request, number_type)
        raise ApiError(405, 20001, f"{request.method} is not allowed on {segment}")
    if request.method == "GET":
        return await read_number(request)
    if request.method == "DELETE":
        return await delete_number(request)
    return await update_number(request)


def number_query(account_sid: str, params: Params, number_type: str | None) -> NumberQuery:
    """The ``PhoneNumber``, ``FriendlyName`` and ``Beta`` filters of a number list."""
    beta = params.boolean("Beta")
    return NumberQuery(
        account_sid=account_sid,
        phone_number=params.text("PhoneNumber") or None,
        friendly_name=params.text("FriendlyName") or None,
        include_beta=True if beta is None else beta,
        number_type=number_type,
    )


async def list_numbers(request: web.Request, number_type: str | None) -> web.Response:
    _, account = await authorize(request)
    params = Params.from_query(request)
    paging = read_paging(params)
    query = number_query(account.sid, params, number_type)
    filters = [(name, params.text(name) or "") for name in LIST_FILTERS if params.text(name)]
    if flavour_of(request).is_twilio:
        return await _twilio_list(request, query, params, filters)
    page = await store_of(request).list_numbers(query, paging.page, paging.page_size)
    meta = page_meta(request, paging, page.total, len(page.items), filters)
    return render(request, _collection(request, meta, page.items))


async def _twilio_list(
    request: web.Request, query: NumberQuery, params: Params, filters: list[tuple[str, str]]
) -> web.Response:
    """A Twilio list page: read at the ``PageToken`` cursor (or from the start), one row more
    than the page to know whether another follows. ``Page`` > 0 without a token: by offset."""
    paging, cursor, store = read_paging(params), page_token(params), store_of(request)
    if cursor is None and paging.page > 0:
        found = await store.list_numbers(query, paging.page, paging.page_size)
        items, page = found.items, offset_number_page(paging, found.items, found.total)
    else:
        rows = await store.list_numbers_from(query, cursor, paging.page_size + 1)
        items, page = keyset_page(paging, cursor, params.text("PageToken"), rows)
    meta = twilio_page_meta(request, page, filters)
    return render(request, _collection(request, meta, items))


def _resource(request: web.Request, number: IncomingNumber) -> Resource:
    if flavour_of(request).is_twilio:
        return number_resource(request, number, twilio_number_fields)
    return number_resource(request, number)


def _collection(
    request: web.Request, meta: dict[str, Any], numbers: list[IncomingNumber]
) -> Collection:
    if flavour_of(request).is_twilio:
        return number_collection(
            request, meta, numbers, twilio_number_fields, "incoming_phone_numbers"
        )
    return number_collection(request, meta, numbers)


async def create_number(request: web.Request, number_type: str | None) -> web.Response:
    _, account = await authorize(request)
    params = await Params.from_body(request)
    flavour = flavour_of(request)
    created = await provision_number(request, account, params, number_type, flavour.api_version)
    return render(request, _resource(request, created), flavour.create_status)


async def provision_number(
    request: web.Request,
    account: Account,
    params: Params,
    number_type: str | None,
    api_version: str,
) -> IncomingNumber:
    """Create a number for ``account`` from create parameters (SPEC §1.3): a provider number
    bought from the inventory by ``PhoneNumber`` or ``AreaCode``, or a SIP number."""
    store = store_of(request)
    changes = number_changes(params, settings_of(request).public_base_url)
    changes.setdefault("api_version", api_version)
    e164 = _bought_by_phone_number(params)
    try:
        if e164 is not None:
            created = await _buy(store, account, e164, changes, number_type)
        else:
            base = await _new_number(store, account, params, number_type)
            number = apply_changes(base, changes, base.date_created)
            await check_applications(store, account.sid, number)
            created = await store.create_number(number, from_inventory=not number.is_sip)
    except ConflictError as exc:
        phone = e164 or params.text("PhoneNumber") or params.text("AreaCode")
        raise ApiError(400, 21422, f"PhoneNumber: {phone} is not available") from exc
    return created


def _bought_by_phone_number(params: Params) -> str | None:
    """The E.164 number of a provider purchase by ``PhoneNumber`` (None: SIP or AreaCode)."""
    phone = params.text("PhoneNumber")
    if params.text("AreaCode") or params.boolean("isSIP") or not phone:
        return None
    return parse_provider_number(phone)


async def _buy(
    store: Store, account: Account, e164: str, changes: dict[str, Any], number_type: str | None
) -> IncomingNumber:
    """Claim ``e164`` from the inventory and create it, in one store transaction."""
    now = time.time()
    probe = apply_changes(_provider_number(account, InventoryEntry(e164, "", "")), changes, now)
    await check_applications(store, account.sid, probe)

    def build(entry: InventoryEntry) -> IncomingNumber:
        if number_type is not None and entry.number_type != number_type:
            raise invalid("PhoneNumber", f"{e164} is a {entry.number_type} number", 21421)
        return apply_changes(_provider_number(account, entry), changes, now)

    try:
        return await store.buy_number(e164, build)
    except NotFoundError as exc:
        raise invalid("PhoneNumber", f"{e164} is not in the number inventory", 21422) from exc


async def _new_number(
    store: Store, account: Account, params: Params, number_type: str | None
) -> IncomingNumber:
    """A SIP number, or a provider number picked by ``AreaCode``."""
    area_code = params.text("AreaCode")
    if area_code:
        if number_type is not None:
            raise invalid("AreaCode", "not allowed on this sub-resource; use PhoneNumber", 21457)
        return _provider_number(account, await _pick_by_area_code(store, area_code))
    phone = params.text("PhoneNumber")
    if not phone:
        raise invalid("PhoneNumber", "PhoneNumber or AreaCode is required")
    # An unencoded "+" (curl -d PhoneNumber=mms:+1234) arrives form-decoded as a space; a
    # space is never part of a SIP number, so it can only have been a "+".
    return _sip_number(account, phone.replace(" ", "+"), number_type)


async def _pick_by_area_code(store: Store, area_code: str) -> InventoryEntry:
    if not AREA_CODE.fullmatch(area_code):
        raise invalid("AreaCode", f"{area_code!r} is not a US/CA area code", 21451)
    query = InventoryQuery(iso_country=None, number_type=None, area_code=area_code)
    try:
        return await store.pick_available_number(query, time.time())
    except NotFoundError as exc:
        raise invalid("AreaCode", f"no numbers available in area code {area_code}", 21452) from exc


def _provider_number(account: Account, entry: InventoryEntry) -> IncomingNumber:
    now = time.time()
    return IncomingNumber(
        sid=new_sid("PN"),
        account_sid=account.sid,
        organization_sid=account.organization_sid,
        phone_number=entry.phone_number,
        friendly_name=national_format(entry.phone_number),
        is_sip=False,
        number_type=entry.number_type,
        beta=entry.beta,
        capabilities=entry.capabilities,
        date_created=now,
        date_updated=now,
    )


def check_sip_number(raw: str) -> SipNumberKind:
    """The kind of a SIP number as given (dial, channel, regex, catchall) if it may be
    provisioned; else 400 with 21505 (a regex breaking the pattern rules) or 21421."""
    try:
        kind = classify_sip_number(raw)
        if kind == "regex":
            compile_pattern(raw)
    except InvalidPatternError as exc:
        raise invalid("PhoneNumber", str(exc), 21505) from exc
    except InvalidNumberError as exc:
        raise invalid("PhoneNumber", str(exc), 21421) from exc
    return kind


def _sip_number(account: Account, raw: str, number_type: str | None) -> IncomingNumber:
    check_sip_number(raw)
    now = time.time()
    return IncomingNumber(
        sid=new_sid("PN"),
        account_sid=account.sid,
        organization_sid=account.organization_sid,
        phone_number=raw,
        friendly_name=raw,
        is_sip=True,
        number_type=number_type or "sip",
        beta=False,
        date_created=now,
        date_updated=now,
    )


async def _owned_number(request: web.Request) -> tuple[Account, IncomingNumber]:
    """(caller, number) for an instance URL; 404 unknown sid, 403 another account's number."""
    caller, account = await authorize(request)
    sid = strip_format(request.match_info["sid"])
    return caller, await owned_number(store_of(request), account, sid)


async def owned_number(store: Store, account: Account, sid: str) -> IncomingNumber:
    """The number ``sid`` of ``account``: 404 unknown sid, 403 another account's number."""
    try:
        number = await store.get_number(sid)
    except NotFoundError as exc:
        raise ApiError(404, 20404, f"number {sid} not found") from exc
    if number.account_sid != account.sid:
        raise ApiError(403, 20403, f"number {sid} belongs to another account")
    return number


async def read_number(request: web.Request) -> web.Response:
    _, number = await _owned_number(request)
    return render(request, _resource(request, number))


async def update_number(request: web.Request) -> web.Response:
    caller, number = await _owned_number(request)
    params = await Params.from_body(request)
    saved = await change_number(request, caller, number, params)
    return render(request, _resource(request, saved))


async def change_number(
    request: web.Request, caller: Account, number: IncomingNumber, params: Params
) -> IncomingNumber:
    """Apply update parameters to ``number`` (SPEC §1.4): only those present change."""
    store = store_of(request)
    changes = number_changes(params, settings_of(request).public_base_url)
    target = params.text("AccountSid")
    if target and target != number.account_sid:
        await _check_transfer(store, caller, target)
        changes["account_sid"] = target
        for field in APPLICATION_PARAMS.values():
            changes.setdefault(field, None)
    updated = apply_changes(number, changes, time.time())
    await check_applications(store, updated.account_sid, updated)
    try:
        return await store.update_number(updated)
    except NotFoundError as exc:
        raise ApiError(404, 20404, f"number {number.sid} not found") from exc


async def _check_transfer(store: Store, caller: Account, target: str) -> None:
    """The target must be the caller, an ancestor of it, or a descendant it controls."""
    lineage = await store.account_lineage(target)
    if not lineage:
        raise invalid("AccountSid", f"no account {target}")
    if target in await store.account_lineage(caller.sid) or caller.sid in lineage:
        return
    raise ApiError(403, 20403, f"AccountSid: {target} is outside the caller's account tree")


async def delete_number(request: web.Request) -> web.Response:
    _, number = await _owned_number(request)
    await release_number(request, number)
    return web.Response(status=204)


async def release_number(request: web.Request, number: IncomingNumber) -> None:
    """Delete ``number``; a provider number goes back to the inventory after
    ``numbers.recycle_after``."""
    try:
        await store_of(request).delete_number(number.sid, settings_of(request).recycle_after)
    except NotFoundError as exc:
        raise ApiError(404, 20404, f"number {number.sid} not found") from exc
