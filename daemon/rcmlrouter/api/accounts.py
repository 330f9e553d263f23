"""Accounts: read, list, update an account; create a sub-account (SPEC §1.5).

The list holds the URL account and its descendants; an update changes ``FriendlyName``,
``Status`` (active / suspended / closed; not one's own status, and a closed account stays
closed: its numbers are released) and rotates the AuthToken (``AuthToken=rotate``: a new token,
the old one still accepted for ``[api] token_grace`` seconds).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from typing import Any

from aiohttp import web

from rcmlrouter.api.auth import authenticate, authorize
from rcmlrouter.api.context import accounts_of, settings_of, store_of
from rcmlrouter.api.flavour import flavour_of
from rcmlrouter.api.form import MAX_PAGE_SIZE, Params, invalid, read_paging
from rcmlrouter.api.render import Collection, Resource, api_base, render, rfc2822
from rcmlrouter.api.render_twilio import twilio_account_fields
from rcmlrouter.api.twilio_paging import list_meta
from rcmlrouter.errors import ApiError, ConflictError, NotFoundError
from rcmlrouter.store.filters import NumberQuery
from rcmlrouter.store.records import Account

MIN_PASSWORD = 8
MAX_EMAIL = 254
STATUSES = ("active", "suspended", "closed")


def account_fields(request: web.Request, a: Account) -> dict[str, Any]:
    return {
        "sid": a.sid,
        "friendly_name": a.friendly_name,
        "email_address": a.email,
        "type": "Full",
        "status": a.status,
        "role": "Administrator" if a.parent_sid is None else "Developer",
        "parent_sid": a.parent_sid,
        "organization_sid": a.organization_sid,
        "date_created": rfc2822(a.date_created),
        "date_updated": rfc2822(a.date_updated),
        "auth_token": a.auth_token,
        "uri": f"{api_base(request)}/Accounts/{a.sid}.json",
    }


def _resource(request: web.Request, account: Account) -> Resource:
    fields = twilio_account_fields if flavour_of(request).is_twilio else account_fields
    return Resource("Account", fields(request, account))


async def handle_instance(request: web.Request) -> web.Response:
    """``Accounts/{AC}``: GET reads, POST / PUT update."""
    caller, account = await authorize(request)
    if request.method in ("POST", "PUT"):
        account = await update_account(request, caller, account, await Params.from_body(request))
    return render(request, _resource(request, account))


async def update_account(
    request: web.Request, caller: Account, account: Account, params: Params
) -> Account:
    """``FriendlyName``, ``Status`` and ``AuthToken=rotate`` of ``account``, done by
    ``caller`` (itself or an ancestor: the caller's reach is checked before)."""
    name = params.friendly_name()
    if name is not None and not name:
        raise invalid("FriendlyName", "must not be empty")
    status = params.text("Status")
    if status is not None:
        status = status.lower()
        if status not in STATUSES:
            raise invalid("Status", f"{status!r} is not one of {', '.join(STATUSES)}")
        if status != account.status and account.sid == caller.sid:
            raise ApiError(403, 20403, "an account cannot change its own Status")
        if account.status == "closed" and status != "closed":
            raise invalid("Status", f"account {account.sid} is closed for good")
    rotate = _wants_rotation(params)
    store, settings = store_of(request), settings_of(request)
    updated = replace(
        account,
        friendly_name=name or account.friendly_name,
        status=status or account.status,
        date_updated=time.time(),
    )
    saved = await store.update_account(updated)
    if rotate:
        saved = await store.rotate_auth_token(saved.sid, settings.token_grace)
    if saved.status == "closed":  # again on a closed account: finishes an interrupted release
        await _release_numbers(request, saved)
    cache = accounts_of(request)  # the next request authenticates with the new status / token
    for key in (saved.sid, saved.email):
        if key is not None:
            cache.put(key, saved)
    if settings.on_account_change is not None:  # calls and messages see it at once
        settings.on_account_change(saved.sid)
    return saved


def _wants_rotation(params: Params) -> bool:
    """``AuthToken=rotate`` (or empty): issue a new AuthToken; clients never choose one."""
    value = params.text("AuthToken")
    if value is None:
        return False
    if value.lower() not in ("", "rotate"):
        raise invalid("AuthToken", "send AuthToken=rotate to issue a new token")
    return True


async def _release_numbers(request: web.Request, account: Account) -> None:
    """A closed account's numbers go back to the inventory, as DELETE does (with recycle)."""
    store, recycle_after = store_of(request), settings_of(request).recycle_after
    query = NumberQuery(account_sid=account.sid)
    while page := (await store.list_numbers(query, 0, MAX_PAGE_SIZE)).items:
        for number in page:
            with contextlib.suppress(NotFoundError):  # released meanwhile
                await store.delete_number(number.sid, recycle_after)


async def handle_list_resource(request: web.Request) -> web.Response:
    """``Accounts``: GET lists the caller and its descendants, POST creates a sub-account."""
    if request.method == "POST":
        return await handle_create(request)
    caller = await authenticate(request)
    params = Params.from_query(request)
    paging = read_paging(params)
    name, status = params.text("FriendlyName") or None, params.text("Status") or None
    page = await store_of(request).list_accounts(
        caller.sid, name, status, paging.page, paging.page_size
    )
    filters = [(k, v) for k, v in (("FriendlyName", name), ("Status", status)) if v]
    meta = list_meta(request, paging, page.total, len(page.items), filters)
    items = [_resource(request, account).fields for account in page.items]
    return render(request, Collection("Accounts", "Account", "accounts", meta, items))


def _email(params: Params) -> str | None:
    email = params.text("EmailAddress")
    if not email:
        return None
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > MAX_EMAIL or " " in email:
        raise invalid("EmailAddress", f"{email!r} is not an email address")
    return email


async def handle_create(request: web.Request) -> web.Response:
    """POST ``Accounts``: a sub-account of the caller; returns its sid and AuthToken."""
    caller = await authenticate(request)
    account = await create_sub_account(request, caller, await Params.from_body(request))
    return render(request, _resource(request, account), flavour_of(request).create_status)


async def create_sub_account(request: web.Request, caller: Account, params: Params) -> Account:
    """A sub-account of ``caller`` from ``FriendlyName``, ``EmailAddress``, ``Password``."""
    email = _email(params)
    password = params.text("Password")
    if password is not None and len(password) < MIN_PASSWORD:
        raise invalid("Password", f"must be at least {MIN_PASSWORD} characters")
    name = params.friendly_name() or email or "Sub-account"
    try:
        return await store_of(request).create_account(caller, name, email, password or None)
    except ConflictError as exc:
        raise invalid("EmailAddress", f"{email} is already in use") from exc
