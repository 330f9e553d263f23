"""Read-only Calls, Messages (also at SMS/Messages) and Notifications (SPEC §4, §5)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rcmlrouter.api.auth import authorize
from rcmlrouter.api.context import store_of
from rcmlrouter.api.form import Params, read_paging
from rcmlrouter.api.render import (
    Collection,
    Resource,
    api_base,
    page_meta,
    render,
    rfc2822,
    strip_format,
)
from rcmlrouter.errors import ApiError, NotFoundError
from rcmlrouter.store.base import API_VERSION, CallRecord, MessageRecord, Notification


def call_fields(request: web.Request, c: CallRecord) -> dict[str, Any]:
    return {
        "sid": c.sid,
        "account_sid": c.account_sid,
        "phone_number_sid": c.number_sid,
        "from": c.from_,
        "to": c.to,
        "direction": c.direction,
        "status": c.status,
        "match_kind": c.match_kind,
        "start_time": rfc2822(c.start_time),
        "answer_time": rfc2822(c.answer_time),
        "end_time": rfc2822(c.end_time),
        "duration": None if c.duration is None else round(c.duration),
        "sip_response_code": c.sip_status,
        "urls": list(c.urls),
        "used_fallback": c.used_fallback,
        "error_code": c.error_code,
        "api_version": API_VERSION,
        "uri": f"{api_base(request)}/Accounts/{c.account_sid}/Calls/{c.sid}.json",
    }


def message_fields(request: web.Request, m: MessageRecord) -> dict[str, Any]:
    return {
        "sid": m.sid,
        "account_sid": m.account_sid,
        "phone_number_sid": m.number_sid,
        "from": m.from_,
        "to": m.to,
        "body": m.body,
        "status": m.status,
        "direction": m.direction,
        "urls": list(m.urls),
        "used_fallback": m.used_fallback,
        "error_code": m.error_code,
        "date_created": rfc2822(m.date_created),
        "api_version": API_VERSION,
        "uri": f"{api_base(request)}/Accounts/{m.account_sid}/SMS/Messages/{m.sid}.json",
    }


def notification_fields(request: web.Request, n: Notification) -> dict[str, Any]:
    return {
        "sid": n.sid,
        "account_sid": n.account_sid,
        "call_sid": n.call_sid,
        "api_version": API_VERSION,
        "log": 0 if n.level == "error" else 1,
        "error_code": n.error_code,
        "more_info": f"https://www.twilio.com/docs/errors/{n.error_code}",
        "message_text": n.message,
        "message_date": rfc2822(n.date_created),
        "request_url": n.request_url,
        "date_created": rfc2822(n.date_created),
        "uri": f"{api_base(request)}/Accounts/{n.account_sid}/Notifications/{n.sid}.json",
    }


async def handle_calls(request: web.Request) -> web.Response:
    _, account = await authorize(request)
    paging = read_paging(Params.from_query(request))
    page = await store_of(request).list_calls(account.sid, paging.page, paging.page_size)
    meta = page_meta(request, paging, page.total, len(page.items), [])
    items = [call_fields(request, c) for c in page.items]
    return render(request, Collection("Calls", "Call", "calls", meta, items))


async def handle_call(request: web.Request) -> web.Response:
    _, account = await authorize(request)
    sid = strip_format(request.match_info["sid"])
    try:
        call = await store_of(request).get_call(sid)
    except NotFoundError as exc:
        raise ApiError(404, 20404, f"call {sid} not found") from exc
    if call.account_sid != account.sid:
        raise ApiError(403, 20403, f"call {sid} belongs to another account")
    return render(request, Resource("Call", call_fields(request, call)))


async def handle_notifications(request: web.Request) -> web.Response:
    _, account = await authorize(request)
    paging = read_paging(Params.from_query(request))
    page = await store_of(request).list_notifications(account.sid, paging.page, paging.page_size)
    meta = page_meta(request, paging, page.total, len(page.items), [])
    items = [notification_fields(request, n) for n in page.items]
    return render(
        request, Collection("Notifications", "Notification", "notifications", meta, items)
    )


async def handle_notification(request: web.Request) -> web.Response:
    _, account = await authorize(request)
    sid = strip_format(request.match_info["sid"])
    try:
        item = await store_of(request).get_notification(sid)
    except NotFoundError as exc:
        raise ApiError(404, 20404, f"notification {sid} not found") from exc
    if item.account_sid != account.sid:
        raise ApiError(403, 20403, f"notification {sid} belongs to another account")
    return render(request, Resource("Notification", notification_fields(request, item)))


async def handle_messages(request: web.Request) -> web.Response:
    _, account = await authorize(request)
    paging = read_paging(Params.from_query(request))
    page = await store_of(request).list_messages(account.sid, paging.page, paging.page_size)
    meta = page_meta(request, paging, page.total, len(page.items), [])
    items = [message_fields(request, m) for m in page.items]
    return render(request, Collection("SMSMessages", "SMSMessage", "messages", meta, items))


async def handle_message(request: web.Request) -> web.Response:
    _, account = await authorize(request)
    sid = strip_format(request.match_info["sid"])
    try:
        message = await store_of(request).get_message(sid)
    except NotFoundError as exc:
        raise ApiError(404, 20404, f"message {sid} not found") from exc
    if message.account_sid != account.sid:
        raise ApiError(403, 20403, f"message {sid} belongs to another account")
    return render(request, Resource("SMSMessage", message_fields(request, message)))
