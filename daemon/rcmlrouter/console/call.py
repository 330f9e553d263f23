"""One call's page: its record (the API's Calls resource fields), the webhooks it fetched and
whether the fallback was used, its status callbacks (still in the outbox, or delivered: the
attempts this node remembers, ``callback_attempts.py``), its notifications; while it runs, its
node and the live-call controls.

Hang-up and redirect go through the live-call API, ``POST …/Calls/{CA}.json`` with
``Status=completed`` or ``Url=…`` (Twilio's shape), sent to this process's own API with the
call's account credentials. While the API does not serve that route, the buttons are disabled
with a note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from rcmlrouter.api.auth import controls
from rcmlrouter.api.context import store_of
from rcmlrouter.api.records import call_fields
from rcmlrouter.callback_attempts import CallbackAttempt
from rcmlrouter.console.access import page
from rcmlrouter.console.sources import sources_of
from rcmlrouter.console.templating import html, see_other
from rcmlrouter.console.visit import visit_of
from rcmlrouter.errors import ApiError, NotFoundError
from rcmlrouter.store.records import CallRecord, Notification, OutboxEvent

LIVE_CALL_ROUTE = re.compile(r"/2010-04-01/Accounts/\{[^}]+\}/Calls/\{[^}]+\}(\.json)?")
EXPIRED = 15003


@dataclass(frozen=True, slots=True)
class CallbackRow:
    """One status-callback event of the call, as the page shows it."""

    sequence: int
    state: str  # pending | delivered | given up | sent (no detail on this node)
    url: str
    attempts: list[CallbackAttempt]


def live_call_api_available(app: web.Application) -> bool:
    """Whether the API serves ``POST Accounts/{AC}/Calls/{CA}`` (the live-call API)."""
    return any(
        route.method == "POST" and LIVE_CALL_ROUTE.fullmatch(route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    )


def callback_rows(
    record: CallRecord,
    pending: list[OutboxEvent],
    attempts: list[CallbackAttempt],
    notes: list[Notification],
) -> list[CallbackRow]:
    """Every event sequence the call owes or owed, with its state."""
    waiting = {event.sequence: event for event in pending}
    sequences = set(waiting) | {a.sequence for a in attempts}
    if record.status_callback:
        sequences |= set(range(record.next_sequence))
    # callbacks.py names the sequence in the 15003 notification of an event it gave up
    given_up = {n.message for n in notes if n.error_code == EXPIRED}
    rows = []
    for sequence in sorted(sequences):
        tried = [a for a in attempts if a.sequence == sequence]
        url = waiting[sequence].url if sequence in waiting else tried[-1].url if tried else ""
        if sequence in waiting:
            state = "pending"
        elif tried and tried[-1].error is None:
            state = "delivered"
        elif any(f"(sequence {sequence})" in message for message in given_up):
            state = "given up"
        else:
            state = "sent (no detail on this node)"
        rows.append(CallbackRow(sequence, state, url or record.status_callback or "", tried))
    return rows


@page
async def call_page(request: web.Request) -> web.StreamResponse:
    visit, store = visit_of(request), store_of(request)
    sid = request.match_info["sid"]
    try:
        record = await store.get_call(sid)
    except NotFoundError as exc:
        raise ApiError(404, 20404, f"call {sid} not found") from exc
    if not await controls(store, visit.viewer, record.account_sid):
        raise ApiError(403, 20403, f"call {sid} belongs to another account")
    notes = await store.call_notifications(sid, 200)
    pending = await store.call_callbacks(sid)
    attempts = sources_of(request).attempts.of_call(sid)
    live = None
    if record.end_time is None:
        running = await store.live_calls([record.account_sid])
        live = next((c for c in running if c.record.sid == sid), None)
    return html(
        request,
        "call.html",
        call=record,
        fields=call_fields(request, record),
        notifications=notes,
        callbacks=callback_rows(record, pending, attempts, notes),
        live=live,
        node=(live.node if live else None) or sources_of(request).health().get("node_id"),
        controls_available=live_call_api_available(request.app),
        done=request.query.get("done", ""),
    )


@page
async def control_call(request: web.Request) -> web.StreamResponse:
    """Hang up or redirect a live call through the live-call API (see the module doc)."""
    visit, store = visit_of(request), store_of(request)
    sid = request.match_info["sid"]
    form = await request.post()
    try:
        record = await store.get_call(sid)
    except NotFoundError as exc:
        raise ApiError(404, 20404, f"call {sid} not found") from exc
    if not await controls(store, visit.viewer, record.account_sid):
        raise ApiError(403, 20403, f"call {sid} belongs to another account")
    if form.get("action") == "redirect":
        data = {"Url": str(form.get("Url", "")), "Method": str(form.get("Method", "POST"))}
    else:
        data = {"Status": "completed"}
    status, text = await _post_live_call(request, record, data)
    message = "request sent" if 200 <= status < 300 else f"the live-call API answered {status}"
    if status in (404, 405):
        message = "the live-call API is not available in this build"
    elif status >= 300:
        message += f": {text[:300]}"
    return see_other(visit.url(f"calls/{sid}", done=message))


async def _post_live_call(
    request: web.Request, record: CallRecord, data: dict[str, str]
) -> tuple[int, str]:
    """POST the live-call API of this process with the call's account credentials."""
    account = await store_of(request).get_account(record.account_sid)
    base = sources_of(request).api_url
    if not base:
        return 503, "the API's own address is not known yet"
    url = f"{base}/2010-04-01/Accounts/{account.sid}/Calls/{record.sid}.json"
    headers = {"Authorization": aiohttp.encode_basic_auth(account.sid, account.auth_token)}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.post(url, data=data, headers=headers) as response,
        ):
            return response.status, await response.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return 502, f"could not reach the API: {exc!r}"
