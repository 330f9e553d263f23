"""One call's page: its record (the API's Calls resource fields), the webhooks it fetched and
whether the fallback was used, its status callbacks (still in the outbox, or delivered: the
attempts this node remembers, ``callback_attempts.py``), its notifications, the conferences it
took part in (the Conferences API's rows), its media streams (the rows the call's node wrote,
``calls/call_streams.py``); while it runs, its node and the live-call controls.

Hang-up and redirect are the live-call API's own update (``api/call_update.py``: the same
validation, the same way to the node that runs the call, the same Twilio codes), called for the
signed-in account with ``Status=completed`` or ``Url=…`` / ``Method``; its answer (or its
refusal) is shown on the call's page. A process without live call control (the API's
``CallControl`` not wired) shows the buttons disabled with a note.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from rcmlrouter.api.auth import controls
from rcmlrouter.api.call_update import apply_update, read_update
from rcmlrouter.api.context import call_control_of, settings_of, store_of
from rcmlrouter.api.form import Params
from rcmlrouter.api.records import call_fields
from rcmlrouter.callback_attempts import CallbackAttempt
from rcmlrouter.console.access import page
from rcmlrouter.console.sources import sources_of
from rcmlrouter.console.templating import html, see_other
from rcmlrouter.console.visit import visit_of
from rcmlrouter.errors import ApiError, NotFoundError
from rcmlrouter.store.records import CallRecord, Notification, OutboxEvent

EXPIRED = 15003


@dataclass(frozen=True, slots=True)
class CallbackRow:
    """One status-callback event of the call, as the page shows it."""

    sequence: int
    state: str  # pending | delivered | given up | sent (no detail on this node)
    url: str
    attempts: list[CallbackAttempt]


def live_call_api_available(app: web.Application) -> bool:
    """Whether this process's API can update live calls (``POST Calls/{CA}``)."""
    return call_control_of(app) is not None


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
    conferences = await store.call_conferences(sid)
    streams = await store.call_streams(sid)
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
        conferences=conferences,
        streams=streams,
        callbacks=callback_rows(record, pending, attempts, notes),
        live=live,
        node=(live.node if live else None) or sources_of(request).health().get("node_id"),
        controls_available=live_call_api_available(request.app),
        done=request.query.get("done", ""),
    )


@page
async def control_call(request: web.Request) -> web.StreamResponse:
    """Hang up or redirect a live call through the live-call API's update (module doc)."""
    visit, store = visit_of(request), store_of(request)
    sid = request.match_info["sid"]
    form = await request.post()
    try:
        record = await store.get_call(sid)
    except NotFoundError as exc:
        raise ApiError(404, 20404, f"call {sid} not found") from exc
    if form.get("action") == "redirect":
        fields = {"Url": str(form.get("Url", "")), "Method": str(form.get("Method", "POST"))}
        done = "redirected"
    else:
        fields, done = {"Status": "completed"}, "hung up"
    try:
        update = read_update(Params(fields), settings_of(request).public_base_url)
        if update.empty:
            raise ApiError(400, 21205, "Url: a URL is required to redirect")
        after = await apply_update(request.app, visit.viewer, record.account_sid, sid, update)
    except ApiError as exc:
        if exc.http_status in (403, 404):
            raise
        message = f"refused ({exc.code}): {exc.message}"
    else:
        message = f"{done}; the call is {after.status}"
    return see_other(visit.url(f"calls/{sid}", done=message))
