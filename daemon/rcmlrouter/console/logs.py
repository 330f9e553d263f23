"""The call log and the message log: an account's latest records, filtered by number and
date with the API's own filters (``To``, ``From``, ``StartTime`` / ``DateSent`` and their
``<``/``>`` forms: :func:`~rcmlrouter.api.records.call_query`, ``message_query``), newest
first, 50 at a time. The console pages by position (older than the last row shown) and counts
nothing, so a page costs the same with a million records as with ten.
"""

from __future__ import annotations

from aiohttp import web

from rcmlrouter.api.context import store_of
from rcmlrouter.api.form import Params
from rcmlrouter.api.records import call_query, message_query
from rcmlrouter.console.access import page
from rcmlrouter.console.templating import html
from rcmlrouter.console.visit import Visit, visit_of
from rcmlrouter.errors import ApiError
from rcmlrouter.store.base import RecordCursor

PAGE_SIZE = 50
CALL_FILTERS = ("To", "From", "StartTime", "StartTime>", "StartTime<")
MESSAGE_FILTERS = ("To", "From", "DateSent", "DateSent>", "DateSent<")


def read_cursor(value: str | None) -> RecordCursor | None:
    """``Before=<seconds>_<sid>``: the last row of the previous page; None when absent."""
    if not value:
        return None
    seconds, _, sid = value.partition("_")
    try:
        return RecordCursor(float(seconds), sid)
    except ValueError as exc:
        raise ApiError(400, 20001, f"Before: {value!r} is not a position") from exc


def _links(
    visit: Visit, path: str, params: Params, names: tuple[str, ...], last: RecordCursor | None
) -> dict[str, str]:
    kept = {name: params.text(name) or "" for name in names}
    older = visit.url(path, Before=f"{last.time!r}_{last.sid}", **kept) if last else ""
    first = visit.url(path, **kept) if params.text("Before") else ""
    return {"older": older, "first": first}


@page
async def call_log(request: web.Request) -> web.StreamResponse:
    visit = visit_of(request)
    params = Params.from_query(request)
    error, calls = None, []
    try:
        query = call_query(visit.acting.sid, params)
        before = read_cursor(params.text("Before"))
        calls = await store_of(request).recent_calls(query, before, PAGE_SIZE + 1)
    except ApiError as exc:
        if exc.http_status != 400:
            raise
        error = exc
    shown = calls[:PAGE_SIZE]
    last = RecordCursor(shown[-1].start_time, shown[-1].sid) if len(calls) > PAGE_SIZE else None
    return html(
        request,
        "calls.html",
        status=400 if error else 200,
        calls=shown,
        error=error,
        filters={name: params.text(name) or "" for name in CALL_FILTERS},
        **_links(visit, "calls", params, CALL_FILTERS, last),
    )


@page
async def message_log(request: web.Request) -> web.StreamResponse:
    visit = visit_of(request)
    params = Params.from_query(request)
    error, messages = None, []
    try:
        query = message_query(visit.acting.sid, params)
        before = read_cursor(params.text("Before"))
        messages = await store_of(request).recent_messages(query, before, PAGE_SIZE + 1)
    except ApiError as exc:
        if exc.http_status != 400:
            raise
        error = exc
    shown = messages[:PAGE_SIZE]
    last = (
        RecordCursor(shown[-1].date_created, shown[-1].sid) if len(messages) > PAGE_SIZE else None
    )
    return html(
        request,
        "messages.html",
        status=400 if error else 200,
        messages=shown,
        error=error,
        filters={name: params.text(name) or "" for name in MESSAGE_FILTERS},
        **_links(visit, "messages", params, MESSAGE_FILTERS, last),
    )
