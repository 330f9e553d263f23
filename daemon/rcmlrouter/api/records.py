"""Read-only Calls, Messages (also at SMS/Messages) and Notifications (SPEC §4, §5)."""

from __future__ import annotations

import calendar
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiohttp import web

from rcmlrouter.api.auth import authorize
from rcmlrouter.api.context import store_of
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
from rcmlrouter.api.render_twilio import UNSENT, twilio_call_fields, twilio_message_fields
from rcmlrouter.api.twilio_paging import list_meta
from rcmlrouter.errors import ApiError, NotFoundError
from rcmlrouter.store.base import Store
from rcmlrouter.store.filters import CallQuery, MessageQuery, Page
from rcmlrouter.store.records import API_VERSION, CallRecord, MessageRecord, Notification

R = TypeVar("R")
# Twilio's names: DateSent=YYYY-MM-DD is that UTC day; "DateSent<=D" arrives as the parameter
# "DateSent<" (on or before D), "DateSent>=D" as "DateSent>" (on or after D). StartTime alike.
MESSAGE_FILTERS = ("To", "From", "DateSent", "DateSent<", "DateSent>")
CALL_FILTERS = ("To", "From", "StartTime", "StartTime<", "StartTime>")
DAY = 86400.0
Handler = Callable[[web.Request], Awaitable[web.Response]]


def call_fields(request: web.Request, c: CallRecord) -> dict[str, Any]:
    return {
        "sid": c.sid,
        "account_sid": c.account_sid,
        "phone_number_sid": c.number_sid,
        "from": c.from_,
        "to": c.to,
        "direction": c.direction,
        "parent_call_sid": c.parent_call_sid,
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
        "num_media": "0",
        "urls": list(m.urls),
        "used_fallback": m.used_fallback,
        "error_code": m.error_code,
        "date_created": rfc2822(m.date_created),
        "date_sent": None if m.status in UNSENT else rfc2822(m.date_created),
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


def message_query(account_sid: str, params: Params) -> MessageQuery:
    """The ``To``, ``From`` and ``DateSent`` filters of a message list."""
    sent_from, sent_before = day_bounds(params, "DateSent")
    return MessageQuery(
        account_sid,
        to=_number_filter(params, "To"),
        from_=_number_filter(params, "From"),
        sent_from=sent_from,
        sent_before=sent_before,
    )


def call_query(account_sid: str, params: Params) -> CallQuery:
    """The ``To``, ``From`` and ``StartTime`` filters of a call list (Twilio's names)."""
    started_from, started_before = day_bounds(params, "StartTime")
    return CallQuery(
        account_sid,
        to=_number_filter(params, "To"),
        from_=_number_filter(params, "From"),
        started_from=started_from,
        started_before=started_before,
    )


def day_bounds(params: Params, name: str) -> tuple[float | None, float | None]:
    """(from, before) in POSIX seconds of ``name`` (that UTC day), ``name<`` (on or before)
    and ``name>`` (on or after), each ``YYYY-MM-DD``."""
    day, on_or_before, on_or_after = (
        _day_start(params, key) for key in (name, f"{name}<", f"{name}>")
    )
    starts = [t for t in (day, on_or_after) if t is not None]
    ends = [t + DAY for t in (day, on_or_before) if t is not None]
    return (max(starts) if starts else None, min(ends) if ends else None)


def _number_filter(params: Params, name: str) -> str | None:
    # An unencoded "+" inside a SIP number (?To=mms:+1234) arrives as a space; a number never
    # has one. (A leading one is lost to the whitespace trim: encode it, %2B.)
    value = params.text(name)
    return value.replace(" ", "+") if value else None


def _day_start(params: Params, name: str) -> float | None:
    """POSIX seconds at 00:00 UTC of the ``YYYY-MM-DD`` in ``name``; 400 (20001) if malformed."""
    value = params.text(name)
    if not value:
        return None
    try:
        parsed = time.strptime(value, "%Y-%m-%d")
    except ValueError as exc:
        raise invalid(name, f"{value!r} is not a date YYYY-MM-DD") from exc
    return float(calendar.timegm(parsed))


@dataclass(frozen=True, slots=True)
class RecordKind(Generic[R]):
    """One read-only record resource: how to list it, fetch one, and render it."""

    label: str  # for error messages
    collection: tuple[str, str, str]  # XML list element, XML item element, JSON list key
    fields: Callable[[web.Request, R], dict[str, Any]]
    list_page: Callable[[Store, str, Params, int, int], Awaitable[Page[R]]]
    get_one: Callable[[Store, str], Awaitable[R]]
    filters: tuple[str, ...] = ()  # query parameters repeated in the paging URIs
    # Twilio's shape where it differs: its fields and its (XML list, XML item, JSON key)
    twilio: tuple[Callable[[web.Request, R], dict[str, Any]], tuple[str, str, str]] | None = None

    def shape(
        self, request: web.Request
    ) -> tuple[Callable[[web.Request, R], dict[str, Any]], tuple[str, str, str]]:
        """(fields, collection names) in the request's flavour."""
        if self.twilio is not None and flavour_of(request).is_twilio:
            return self.twilio
        return self.fields, self.collection


def list_handler(kind: RecordKind[R]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        _, account = await authorize(request)
        params = Params.from_query(request)
        paging = read_paging(params)
        store = store_of(request)
        page = await kind.list_page(store, account.sid, params, paging.page, paging.page_size)
        filters = [(name, params.text(name) or "") for name in kind.filters if params.text(name)]
        meta = list_meta(request, paging, page.total, len(page.items), filters)
        fields, collection = kind.shape(request)
        items = [fields(request, item) for item in page.items]
        return render(request, Collection(*collection, meta, items))

    return handle


def instance_handler(kind: RecordKind[R]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        _, account = await authorize(request)
        sid = strip_format(request.match_info["sid"])
        try:
            item = await kind.get_one(store_of(request), sid)
        except NotFoundError as exc:
            raise ApiError(404, 20404, f"{kind.label} {sid} not found") from exc
        if getattr(item, "account_sid", None) != account.sid:
            raise ApiError(403, 20403, f"{kind.label} {sid} belongs to another account")
        fields, collection = kind.shape(request)
        return render(request, Resource(collection[1], fields(request, item)))

    return handle


CALLS: RecordKind[CallRecord] = RecordKind(
    "call", ("Calls", "Call", "calls"), call_fields,
    lambda store, account, params, page, size: store.list_calls(
        call_query(account, params), page, size
    ),
    lambda store, sid: store.get_call(sid),
    CALL_FILTERS,
    (twilio_call_fields, ("Calls", "Call", "calls")),
)  # fmt: skip
NOTIFICATIONS: RecordKind[Notification] = RecordKind(
    "notification", ("Notifications", "Notification", "notifications"), notification_fields,
    lambda store, account, _params, page, size: store.list_notifications(account, page, size),
    lambda store, sid: store.get_notification(sid),
)  # fmt: skip
MESSAGES: RecordKind[MessageRecord] = RecordKind(
    "message", ("SMSMessages", "SMSMessage", "messages"), message_fields,
    lambda store, account, params, page, size: store.list_messages(
        message_query(account, params), page, size
    ),
    lambda store, sid: store.get_message(sid),
    MESSAGE_FILTERS,
    (twilio_message_fields, ("Messages", "Message", "messages")),
)  # fmt: skip

handle_calls = list_handler(CALLS)
handle_call = instance_handler(CALLS)
handle_notifications = list_handler(NOTIFICATIONS)
handle_notification = instance_handler(NOTIFICATIONS)
handle_messages = list_handler(MESSAGES)
handle_message = instance_handler(MESSAGES)
