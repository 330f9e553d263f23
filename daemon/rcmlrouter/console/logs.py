"""The call log and the message log: an account's latest records, filtered by number and
date with the API's own filters (``To``, ``From``, ``StartTime`` / ``DateSent`` and their
``<``/``>`` forms: :func:`~rcmlrouter.api.records.call_query`, ``message_query``), newest
first, 50 at a time. The console pages by position (older than the last row shown) and counts
nothing, so a page costs about the same with a million records as with ten.

A number filter reads the account's time index (which carries the numbers, migration 0016) and
keeps what matches; one page searches at most :data:`SEARCH_DEPTH` records back, then says how
far it looked and offers to go on ("Older"). Indexing the numbers themselves would have doubled
the cost of writing every call record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web

from rcmlrouter.api.context import store_of
from rcmlrouter.api.form import Params
from rcmlrouter.api.records import call_query, message_query
from rcmlrouter.console.access import page
from rcmlrouter.console.templating import html
from rcmlrouter.console.visit import Visit, visit_of
from rcmlrouter.errors import ApiError
from rcmlrouter.store.filters import CallQuery, MessageQuery, RecordCursor

PAGE_SIZE = 50
SEARCH_DEPTH = 200_000
CALL_FILTERS = ("To", "From", "StartTime", "StartTime>", "StartTime<")
MESSAGE_FILTERS = ("To", "From", "DateSent", "DateSent>", "DateSent<")
AFTER_EVERY_SID = "~"  # sorts after every sid: a cursor at a time, not at a row
Q = TypeVar("Q", CallQuery, MessageQuery)


@dataclasses.dataclass(frozen=True, slots=True)
class LogWindow:
    """The rows of one page, where the next page starts, and how far a number filter looked."""

    rows: Sequence[Any]
    older: RecordCursor | None
    searched_to: float | None


def read_cursor(value: str | None) -> RecordCursor | None:
    """``Before=<seconds>_<sid>``: where the previous page ended; None when absent."""
    if not value:
        return None
    seconds, _, sid = value.partition("_")
    try:
        return RecordCursor(float(seconds), sid)
    except ValueError as exc:
        raise ApiError(400, 20001, f"Before: {value!r} is not a position") from exc


@dataclasses.dataclass(frozen=True, slots=True)
class RecordLog:
    """How to read one kind of record: a window, the search floor, the time bounds."""

    fetch: Callable[[Any, RecordCursor | None, int], Awaitable[Sequence[Any]]]
    floor: Callable[[Any, RecordCursor | None, int], Awaitable[float | None]]
    lower_of: Callable[[Any], float | None]  # the query's own lower time bound
    from_time: Callable[[Any, float], Any]  # the query bounded below at a time
    time_of: Callable[[Any], float]  # a row's time


async def read_window(log: RecordLog, query: Q, before: RecordCursor | None) -> LogWindow:
    """One page of ``query`` (a number filter searching at most SEARCH_DEPTH rows back)."""
    searched_to = None
    if query.to or query.from_:
        deepest = await log.floor(query, before, SEARCH_DEPTH)
        own = log.lower_of(query)
        if deepest is not None and (own is None or deepest > own):
            searched_to = deepest
            query = log.from_time(query, deepest)
    rows = await log.fetch(query, before, PAGE_SIZE + 1)
    shown = rows[:PAGE_SIZE]
    if len(rows) > PAGE_SIZE:
        return LogWindow(shown, RecordCursor(log.time_of(shown[-1]), shown[-1].sid), None)
    if searched_to is not None:
        return LogWindow(shown, RecordCursor(searched_to, AFTER_EVERY_SID), searched_to)
    return LogWindow(shown, None, None)


def _context(
    visit: Visit, path: str, params: Params, names: tuple[str, ...], window: LogWindow
) -> dict[str, Any]:
    kept = {name: params.text(name) or "" for name in names}
    older = window.older
    return {
        "filters": kept,
        "older": visit.url(path, Before=f"{older.time!r}_{older.sid}", **kept) if older else "",
        "first": visit.url(path, **kept) if params.text("Before") else "",
        "searched_to": window.searched_to,
    }


async def _log_page(
    request: web.Request,
    template: str,
    names: tuple[str, ...],
    read: Callable[[Params], Awaitable[LogWindow]],
) -> web.StreamResponse:
    visit = visit_of(request)
    params = Params.from_query(request)
    try:
        window, error = await read(params), None
    except ApiError as exc:
        if exc.http_status != 400:
            raise
        window, error = LogWindow([], None, None), exc
    path = template.removesuffix(".html")
    return html(
        request,
        template,
        status=400 if error else 200,
        rows=window.rows,
        error=error,
        **_context(visit, path, params, names, window),
    )


@page
async def call_log(request: web.Request) -> web.StreamResponse:
    visit, store = visit_of(request), store_of(request)

    async def read(params: Params) -> LogWindow:
        query = call_query(visit.acting.sid, params)
        before = read_cursor(params.text("Before"))
        log = RecordLog(
            store.recent_calls,
            store.call_search_floor,
            lambda q: q.started_from,
            lambda q, t: dataclasses.replace(q, started_from=t),
            lambda call: call.start_time,
        )
        return await read_window(log, query, before)

    return await _log_page(request, "calls.html", CALL_FILTERS, read)


@page
async def message_log(request: web.Request) -> web.StreamResponse:
    visit, store = visit_of(request), store_of(request)

    async def read(params: Params) -> LogWindow:
        query = message_query(visit.acting.sid, params)
        before = read_cursor(params.text("Before"))
        log = RecordLog(
            store.recent_messages,
            store.message_search_floor,
            lambda q: q.sent_from,
            lambda q, t: dataclasses.replace(q, sent_from=t),
            lambda message: message.date_created,
        )
        return await read_window(log, query, before)

    return await _log_page(request, "messages.html", MESSAGE_FILTERS, read)
