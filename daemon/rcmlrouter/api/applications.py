"""Applications CRUD under ``Accounts/{AC}/Applications`` (SPEC §1.5)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from aiohttp import web

from rcmlrouter.api.auth import authorize
from rcmlrouter.api.context import settings_of, store_of
from rcmlrouter.api.flavour import flavour_of
from rcmlrouter.api.form import Params, invalid, read_paging
from rcmlrouter.api.render import (
    Collection,
    Resource,
    api_base,
    render,
    rfc2822,
    strip_format,
)
from rcmlrouter.api.render_twilio import twilio_application_fields
from rcmlrouter.api.twilio_paging import list_meta
from rcmlrouter.errors import ApiError, NotFoundError
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import Application

URLS = {"VoiceUrl": "voice_url", "SmsUrl": "sms_url", "ReferUrl": "refer_url"}
METHODS = {"VoiceMethod": "voice_method", "SmsMethod": "sms_method", "ReferMethod": "refer_method"}


def application_fields(request: web.Request, a: Application) -> dict[str, Any]:
    return {
        "sid": a.sid,
        "friendly_name": a.friendly_name,
        "voice_url": a.voice_url,
        "voice_method": a.voice_method,
        "sms_url": a.sms_url,
        "sms_method": a.sms_method,
        "refer_url": a.refer_url,
        "refer_method": a.refer_method,
        "date_created": rfc2822(a.date_created),
        "date_updated": rfc2822(a.date_updated),
        "uri": f"{api_base(request)}/Accounts/{a.account_sid}/Applications/{a.sid}.json",
    }


def _resource(request: web.Request, app: Application) -> Resource:
    fields = twilio_application_fields if flavour_of(request).is_twilio else application_fields
    return Resource("Application", fields(request, app))


def _changes(request: web.Request, params: Params) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    name = params.friendly_name()
    if name is not None:
        if not name:
            raise invalid("FriendlyName", "must not be empty")
        changes["friendly_name"] = name
    base = settings_of(request).public_base_url
    for param, field in URLS.items():
        url = params.url(param, base)
        if url is not None:
            changes[field] = url or None
    for param, field in METHODS.items():
        method = params.method(param)
        if method is not None:
            changes[field] = method or "POST"
    return changes


async def handle_list_resource(request: web.Request) -> web.Response:
    _, account = await authorize(request)
    store = store_of(request)
    if request.method == "POST":
        params = await Params.from_body(request)
        changes = _changes(request, params)
        if "friendly_name" not in changes:
            raise invalid("FriendlyName", "is required")
        now = time.time()
        blank = Application(
            new_sid("AP"), account.sid, "", None, "POST", None, "POST", None, "POST", now, now
        )
        created = await store.create_application(replace(blank, **changes))
        return render(request, _resource(request, created), flavour_of(request).create_status)
    paging = read_paging(Params.from_query(request))
    page = await store.list_applications(account.sid, paging.page, paging.page_size)
    meta = list_meta(request, paging, page.total, len(page.items))
    items = [_resource(request, a).fields for a in page.items]
    return render(request, Collection("Applications", "Application", "applications", meta, items))


async def handle_instance(request: web.Request) -> web.Response:
    _, account = await authorize(request)
    store = store_of(request)
    sid = strip_format(request.match_info["sid"])
    try:
        app = await store.get_application(sid)
    except NotFoundError as exc:
        raise ApiError(404, 20404, f"application {sid} not found") from exc
    if app.account_sid != account.sid:
        raise ApiError(403, 20403, f"application {sid} belongs to another account")
    if request.method == "DELETE":
        await store.delete_application(sid)
        return web.Response(status=204)
    if request.method in ("POST", "PUT"):
        changes = _changes(request, await Params.from_body(request))
        app = await store.update_application(replace(app, **changes, date_updated=time.time()))
    return render(request, _resource(request, app))
