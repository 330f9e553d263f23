"""Live calls: the calls in progress of the acting account and its sub-accounts, with their
state, duration and node, pushed once a second over server-sent events.

Calls in progress are read from the store: every call's ringing and in-progress checkpoints
are records without an end time (``calls_unfinished``, a partial index), and on PostgreSQL each
carries the node that runs it (``owner``), so any node's console sees the whole cluster's calls.
One indexed query per watching browser per second; nothing is added to the call path. Each row
has a hang-up button (``console/call.py``: the live-call API's update) where this process has
live call control.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from aiohttp import web

from rcmlrouter.api.context import store_of
from rcmlrouter.console.access import SESSIONS_KEY, page
from rcmlrouter.console.call import live_call_api_available
from rcmlrouter.console.sessions import COOKIE
from rcmlrouter.console.sources import sources_of
from rcmlrouter.console.templating import SECURITY_HEADERS, fragment, html
from rcmlrouter.console.visit import Visit, visit_of
from rcmlrouter.store.records import LiveCall

INTERVAL = 1.0
MAX_ACCOUNTS = 1000  # the acting account and up to this many of its sub-accounts
STOPPING_KEY = web.AppKey("console_stopping", asyncio.Event)


async def watched_accounts(request: web.Request, visit: Visit) -> list[str]:
    """The acting account and its descendants (the API's list of an account's tree)."""
    page_ = await store_of(request).list_accounts(visit.acting.sid, None, None, 0, MAX_ACCOUNTS)
    sids = [account.sid for account in page_.items]
    return sids if visit.acting.sid in sids else [visit.acting.sid, *sids]


def live_rows(request: web.Request, calls: list[LiveCall]) -> dict[str, Any]:
    """What a table of live calls shows: per call its state, duration and node."""
    local = sources_of(request).health().get("node_id") or "this node"
    now = time.time()
    rows = [
        {
            "call": live.record,
            "node": live.node or local,
            "duration": now - (live.record.answer_time or live.record.start_time),
            "since_answer": live.record.answer_time is not None,
        }
        for live in calls
    ]
    controls = live_call_api_available(request.app)  # hang-up buttons (the live-call API)
    return {"rows": rows, "visit": visit_of(request), "controls": controls}


@page
async def live_page(request: web.Request) -> web.StreamResponse:
    visit = visit_of(request)
    calls = await store_of(request).live_calls(await watched_accounts(request, visit))
    return html(request, "live.html", stream=visit.url("live/stream"), **live_rows(request, calls))


@page
async def live_stream(request: web.Request) -> web.StreamResponse:
    """``text/event-stream``: an ``calls`` event (the table body's HTML) every second, until
    the browser leaves, the session ends or the daemon stops."""
    visit = visit_of(request)
    accounts = await watched_accounts(request, visit)
    response = web.StreamResponse(headers={**SECURITY_HEADERS, "X-Accel-Buffering": "no"})
    response.content_type = "text/event-stream"
    await response.prepare(request)
    stopping = request.app[STOPPING_KEY]
    sessions, key = request.app[SESSIONS_KEY], request.cookies.get(COOKIE)
    with contextlib.suppress(ConnectionError):
        while not stopping.is_set() and sessions.get(key) is not None:
            calls = await store_of(request).live_calls(accounts)
            body = fragment("live_rows.html", **live_rows(request, calls))
            await send_event(response, "calls", body)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), INTERVAL)
    return response


async def send_event(response: web.StreamResponse, event: str, data: str) -> None:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    await response.write(f"event: {event}\n{lines}\n".encode())
