"""Accounts: read an account, create a sub-account (SPEC §1.5)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rcmlrouter.api.auth import authenticate, authorize
from rcmlrouter.api.context import store_of
from rcmlrouter.api.form import Params, invalid
from rcmlrouter.api.render import Resource, api_base, render, rfc2822
from rcmlrouter.errors import ApiError, ConflictError
from rcmlrouter.store.base import Account

MIN_PASSWORD = 8
MAX_EMAIL = 254


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


async def handle_instance(request: web.Request) -> web.Response:
    """GET ``Accounts/{AC}``. Updating accounts is not supported (405)."""
    if request.method != "GET":
        raise ApiError(405, 20001, "updating accounts is not supported")
    _, account = await authorize(request)
    return render(request, Resource("Account", account_fields(request, account)))


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
    params = await Params.from_body(request)
    email = _email(params)
    password = params.text("Password")
    if password is not None and len(password) < MIN_PASSWORD:
        raise invalid("Password", f"must be at least {MIN_PASSWORD} characters")
    name = params.friendly_name() or email or "Sub-account"
    try:
        account = await store_of(request).create_account(caller, name, email, password or None)
    except ConflictError as exc:
        raise invalid("EmailAddress", f"{email} is already in use") from exc
    return render(request, Resource("Account", account_fields(request, account)))
