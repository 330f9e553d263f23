"""Conferences and their participants (``<Dial><Conference>``), on both bases.

- ``Accounts/{AC}/Conferences``: list, newest first; ``Status`` (init, in-progress,
  completed), ``FriendlyName`` (exact), ``DateCreated`` / ``DateCreated<`` / ``DateCreated>``
  (``YYYY-MM-DD``, UTC) filter.
- ``Accounts/{AC}/Conferences/{CF}``: read; POST ``Status=completed`` ends it (everyone goes on
  with their next verb). Ending a conference that is over answers it as it is.
- ``…/{CF}/Recordings``: the conference's recording (``record-from-start``), if any.
- ``…/{CF}/Participants``: list (``Muted``, ``Hold`` filter; joining order);
  ``…/Participants/{CA}``: read; POST ``Muted``, ``Hold``, ``HoldUrl``, ``HoldMethod``;
  DELETE takes the participant out (its call goes on with its next verb), 204.

Reads come from the store; changes go to the live room through the node's
:class:`~rcmlrouter.conference.control.ConferenceControl` and answer the room's state as it is
after the change. A change to a conference that lives on another node is a command sent to that
node the way live call updates are (``api/call_update.send_command``: the cluster's command
channel), answered with the room's row after the change; an owner that cannot be reached (or a
room that is over) answers 409 (20409) naming the node. Adding a participant by dialling
out (POST ``…/Participants``) is ``api/participants_create.py``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rcmlrouter.api.auth import authorize
from rcmlrouter.api.call_update import NodeUnreachable, send_command
from rcmlrouter.api.catalog import CONFERENCE_FILTERS
from rcmlrouter.api.context import call_control_of, settings_of, store_of
from rcmlrouter.api.form import Params, invalid, read_paging
from rcmlrouter.api.recordings import recording_fields
from rcmlrouter.api.records import day_bounds
from rcmlrouter.api.render import Collection, Resource, api_base, render, rfc2822, strip_format
from rcmlrouter.api.twilio_paging import list_meta
from rcmlrouter.call_updates import (
    APPLIED,
    ConferenceCommand,
    ConferenceEnd,
    ParticipantKick,
    ParticipantUpdate,
)
from rcmlrouter.conference.control import ConferenceControl
from rcmlrouter.errors import ApiError, NotFoundError
from rcmlrouter.store.conference_records import (
    ACTIVE_STATUSES,
    ConferenceQuery,
    ConferenceRecord,
    ParticipantRecord,
)
from rcmlrouter.store.records import API_VERSION, Account

CONFERENCES_KEY = web.AppKey("conferences", ConferenceControl)
STATUSES = ("init", "in-progress", "completed")


def conference_fields(request: web.Request, c: ConferenceRecord) -> dict[str, Any]:
    uri = f"{api_base(request)}/Accounts/{c.account_sid}/Conferences/{c.sid}"
    return {
        "sid": c.sid,
        "account_sid": c.account_sid,
        "friendly_name": c.friendly_name,
        "status": c.status,
        "date_created": rfc2822(c.date_created),
        "date_updated": rfc2822(c.date_updated),
        "api_version": API_VERSION,
        "region": "local",
        "reason_conference_ended": c.reason_ended,
        "call_sid_ending_conference": c.call_sid_ending,
        "recording_sid": c.recording_sid,
        "uri": f"{uri}.json",
        "subresource_uris": {
            "participants": f"{uri}/Participants.json",
            "recordings": f"{uri}/Recordings.json",
        },
    }


def participant_fields(request: web.Request, p: ParticipantRecord) -> dict[str, Any]:
    base = f"{api_base(request)}/Accounts/{p.account_sid}/Conferences/{p.conference_sid}"
    return {
        "account_sid": p.account_sid,
        "call_sid": p.call_sid,
        "conference_sid": p.conference_sid,
        "label": p.label,
        "status": p.status,
        "muted": p.muted,
        "hold": p.hold,
        "coaching": p.coaching,
        "call_sid_to_coach": p.call_sid_to_coach,
        "start_conference_on_enter": p.start_conference_on_enter,
        "end_conference_on_exit": p.end_conference_on_exit,
        "date_created": rfc2822(p.date_created),
        "date_updated": rfc2822(p.date_updated),
        "api_version": API_VERSION,
        "uri": f"{base}/Participants/{p.call_sid}.json",
    }


def _control(request: web.Request) -> ConferenceControl | None:
    return request.app.get(CONFERENCES_KEY)


async def _conference(request: web.Request, account: Account, sid: str) -> ConferenceRecord:
    try:
        record = await store_of(request).get_conference(sid)
    except NotFoundError as exc:
        raise ApiError(404, 20404, f"conference {sid} not found") from exc
    if record.account_sid != account.sid:
        raise ApiError(403, 20403, f"conference {sid} belongs to another account")
    return record


def not_here(record: ConferenceRecord, why: str = "") -> ApiError:
    return ApiError(
        409, 20409, f"conference {record.sid} lives on node {record.node_id}{why}: change it there"
    )


async def _elsewhere(
    request: web.Request, record: ConferenceRecord, command: ConferenceCommand
) -> dict[str, Any] | None:
    """The room is not live here: ``command`` applied by its owner if another node owns it
    (the row after the change; None for a kick), else 409."""
    control = _control(request)
    if control is None or record.node_id == control.node_id or not call_control_of(request.app):
        raise not_here(record, " (not live)")
    try:
        result = await send_command(request.app, record.sid, record.node_id, command)
    except NodeUnreachable as exc:
        raise not_here(record, " (unreachable)") from exc
    if result.outcome != APPLIED:
        raise not_here(record, " (not live)")
    if result.result is None and not isinstance(command, ParticipantKick):
        raise not_here(record, " (no answer of its row)")
    return result.result


# -- conferences ----------------------------------------------------------------------------------


async def handle_conferences(request: web.Request) -> web.Response:
    _, account = await authorize(request)
    params = Params.from_query(request)
    paging = read_paging(params)
    status = params.text("Status") or None
    if status is not None and status not in STATUSES:
        raise invalid("Status", f"{status!r} is not one of {', '.join(STATUSES)}")
    created_from, created_before = day_bounds(params, "DateCreated")
    query = ConferenceQuery(
        account.sid, status, params.text("FriendlyName") or None, created_from, created_before
    )
    page = await store_of(request).list_conferences(query, paging.page, paging.page_size)
    filters = [(n, params.text(n) or "") for n in CONFERENCE_FILTERS if params.text(n)]
    meta = list_meta(request, paging, page.total, len(page.items), filters)
    items = [conference_fields(request, c) for c in page.items]
    return render(request, Collection("Conferences", "Conference", "conferences", meta, items))


async def handle_conference(request: web.Request) -> web.Response:
    _, account = await authorize(request)
    sid = strip_format(request.match_info["sid"])
    record = await _conference(request, account, sid)
    if request.method == "POST":
        params = await Params.from_body(request)
        status = params.text("Status")
        if status is not None and status != "completed":
            raise invalid("Status", f"{status!r}: only completed can be set")
        if status == "completed" and record.status in ACTIVE_STATUSES:
            control = _control(request)
            ended = control.end(sid) if control is not None else None
            if ended is None:
                ended = ConferenceRecord(
                    **(await _elsewhere(request, record, ConferenceEnd()) or {})
                )
            record = ended
    return render(request, Resource("Conference", conference_fields(request, record)))


async def handle_conference_recordings(request: web.Request) -> web.Response:
    """``Conferences/{CF}/Recordings``: the conference's recording (``record-from-start``)."""
    _, account = await authorize(request)
    conference = await _conference(request, account, request.match_info["conference_sid"])
    params = Params.from_query(request)
    paging = read_paging(params)
    items = []
    if conference.recording_sid is not None and paging.page == 0:
        try:
            recording = await store_of(request).get_recording(conference.recording_sid)
            items.append(recording_fields(request, recording))
        except NotFoundError:  # still being written (the conference just ended), or pruned
            pass
    meta = list_meta(request, paging, len(items), len(items))
    return render(request, Collection("Recordings", "Recording", "recordings", meta, items))


# -- participants ---------------------------------------------------------------------------------


async def handle_participants(request: web.Request) -> web.Response:
    _, account = await authorize(request)
    conference = await _conference(request, account, request.match_info["conference_sid"])
    params = Params.from_query(request)
    paging = read_paging(params)
    muted, hold = params.boolean("Muted"), params.boolean("Hold")
    page = await store_of(request).list_participants(
        conference.sid, None, paging.page, paging.page_size, muted=muted, hold=hold
    )
    items = page.items
    filters = [(n, params.text(n) or "") for n in ("Muted", "Hold") if params.text(n)]
    meta = list_meta(request, paging, page.total, len(items), filters)
    fields = [participant_fields(request, p) for p in items]
    return render(request, Collection("Participants", "Participant", "participants", meta, fields))


async def handle_participant(request: web.Request) -> web.Response:
    _, account = await authorize(request)
    conference = await _conference(request, account, request.match_info["conference_sid"])
    call_sid = strip_format(request.match_info["sid"])
    try:
        participant = await store_of(request).get_participant(conference.sid, call_sid)
    except NotFoundError as exc:
        raise ApiError(404, 20404, f"participant {call_sid} not found") from exc
    if request.method == "GET":
        return render(request, Resource("Participant", participant_fields(request, participant)))
    if participant.status != "connected":
        raise ApiError(404, 20404, f"participant {call_sid} has left the conference")
    control = _control(request)
    if request.method == "DELETE":
        if control is None or not control.kick(conference.sid, call_sid):
            await _elsewhere(request, conference, ParticipantKick(call_sid))
        return web.Response(status=204)
    params = await Params.from_body(request)
    hold_url = params.url("HoldUrl", settings_of(request).public_base_url) or None
    change = ParticipantUpdate(
        call_sid,
        muted=params.boolean("Muted"),
        hold=params.boolean("Hold"),
        hold_url=hold_url,
        hold_method=params.method("HoldMethod") or "GET",
    )
    updated = (
        control.update_participant(
            conference.sid,
            call_sid,
            muted=change.muted,
            hold=change.hold,
            hold_url=change.hold_url,
            hold_method=change.hold_method,
        )
        if control is not None
        else None
    )
    if updated is None:
        updated = ParticipantRecord(**(await _elsewhere(request, conference, change) or {}))
    return render(request, Resource("Participant", participant_fields(request, updated)))
