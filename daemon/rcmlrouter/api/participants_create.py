"""Adding a participant by dialling out: ``POST Accounts/{AC}/Conferences/{CF}/Participants``.

The participant is an outbound API call (``api/calls_create.py``: the same validation of
``To`` / ``From``, ``StatusCallback`` / ``StatusCallbackEvent``, ``Timeout``, ``TimeLimit``,
``Record``, ``SipAuth*``, the same pacing, durable queue and ``Idempotency-Key``) whose document,
once answered, is ``<Dial><Conference>`` into this conference, built from Twilio's participant
parameters:

=============================================  ===============================================
Parameter                                      ``<Conference>`` attribute
=============================================  ===============================================
``Muted``                                      ``muted``
``Beep`` (true, false, onEnter, onExit)        ``beep``
``StartConferenceOnEnter``                     ``startConferenceOnEnter``
``EndConferenceOnExit``                        ``endConferenceOnExit``
``WaitUrl``, ``WaitMethod``                    ``waitUrl``, ``waitMethod``
``MaxParticipants``                            ``maxParticipants``
``Label``                                      ``participantLabel``
``Coaching=true`` + ``CallSidToCoach``         ``coach``
``ConferenceStatusCallback``,                  ``statusCallback``, ``statusCallbackMethod``,
``ConferenceStatusCallbackMethod``,            ``statusCallbackEvent``
``ConferenceStatusCallbackEvent``
=============================================  ===============================================

The answer (201 on the Twilio base, 200 on the Restcomm base) is the participant as it will be,
``status`` ``queued``; the participant resource exists once the call has joined. The conference
must still be running (``init`` or ``in-progress``), else 400 (20001). Parameters Twilio has and
rcmlrouter does not (``ConferenceRecord``, ``EarlyMedia``, ``Region``, …) are refused by name.
"""

from __future__ import annotations

import time
from typing import Final
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web

from rcmlrouter.api.auth import authorize
from rcmlrouter.api.calls_create import queue_call
from rcmlrouter.api.conferences import (
    conference_fields,
    handle_participants,
    participant_fields,
)
from rcmlrouter.api.context import settings_of, store_of
from rcmlrouter.api.flavour import flavour_of
from rcmlrouter.api.form import MAX_TWIML, Params, check_url, invalid
from rcmlrouter.api.render import Resource, render
from rcmlrouter.errors import ApiError, NotFoundError
from rcmlrouter.store.conference_records import ACTIVE_STATUSES, ParticipantRecord
from rcmlrouter.store.records import CallRecord

BEEPS: Final = ("true", "false", "onEnter", "onExit")
CONFERENCE_EVENTS: Final = ("start", "end", "join", "leave", "mute", "hold")
MAX_PARTICIPANTS: Final = 250
UNSUPPORTED: Final = {
    "ConferenceRecord": "a conference records with record-from-start on its first <Dial>",
    "ConferenceTrim": "recordings are kept as recorded",
    "ConferenceRecordingStatusCallback": "a conference records with record-from-start",
    "ConferenceRecordingStatusCallbackMethod": "a conference records with record-from-start",
    "ConferenceRecordingStatusCallbackEvent": "a conference records with record-from-start",
    "EarlyMedia": "participants join when answered",
    "Region": "a conference lives on the node that holds it",
    "JitterBufferSize": "the mixer's jitter buffer is fixed (80 ms)",
    "AnnounceUrl": "announcements are not supported",
    "WaitUrlMethod": "use WaitMethod",
}


async def handle_participants_resource(request: web.Request) -> web.Response:
    """``…/Participants``: GET lists (``api/conferences.py``), POST dials a participant in."""
    if request.method == "POST":
        return await create_participant(request)
    return await handle_participants(request)


async def create_participant(request: web.Request) -> web.Response:
    """POST ``…/Conferences/{CF}/Participants``: dial ``To`` into the conference."""
    _, account = await authorize(request)
    sid = request.match_info["conference_sid"]
    try:
        conference = await store_of(request).get_conference(sid)
    except NotFoundError as exc:
        raise ApiError(404, 20404, f"conference {sid} not found") from exc
    if conference.account_sid != account.sid:
        raise ApiError(403, 20403, f"conference {sid} belongs to another account")
    if conference.status not in ACTIVE_STATUSES:
        raise ApiError(400, 20001, f"conference {sid} is {conference.status}: it has ended")
    params = await Params.from_body(request)
    for name, why in UNSUPPORTED.items():
        if params.text(name):
            raise invalid(name, f"not supported: {why}")
    form = await request.post()
    events = [
        str(v) for v in form.getall("ConferenceStatusCallbackEvent", []) if isinstance(v, str)
    ]
    base = settings_of(request).public_base_url
    twiml = conference_document(params, conference.friendly_name, events, base)
    instructions = {
        "url": None,
        "method": "POST",
        "twiml": twiml,
        "application_sid": None,
        "fallback_url": None,
        "fallback_method": "POST",
    }
    muted = params.boolean("Muted") or False
    start = params.boolean("StartConferenceOnEnter")
    end = params.boolean("EndConferenceOnExit") or False
    coach = params.text("CallSidToCoach") or None

    def respond(request: web.Request, call: CallRecord) -> web.Response:
        now = time.time()
        participant = ParticipantRecord(
            conference.sid, call.sid, account.sid, "queued", muted, False,
            True if start is None else start, end, now, now,
            coach is not None, coach, params.text("Label") or None,
        )  # fmt: skip
        fields = participant_fields(request, participant)
        fields["conference"] = conference_fields(request, conference)["uri"]
        return render(request, Resource("Participant", fields), flavour_of(request).create_status)

    return await queue_call(request, account, params, instructions=instructions, respond=respond)


def conference_document(params: Params, name: str, events: list[str], base: str | None) -> str:
    """``<Response><Dial><Conference …>NAME</Conference></Dial></Response>`` from the
    participant parameters (module doc); ApiError 400 naming a bad one."""
    attributes: dict[str, str] = {}
    for param, attribute in (
        ("Muted", "muted"),
        ("StartConferenceOnEnter", "startConferenceOnEnter"),
        ("EndConferenceOnExit", "endConferenceOnExit"),
    ):
        value = params.boolean(param)
        if value is not None:
            attributes[attribute] = "true" if value else "false"
    beep = params.text("Beep")
    if beep is not None:
        if beep not in BEEPS:
            raise invalid("Beep", f"{beep[:40]!r} is not one of {', '.join(BEEPS)}")
        attributes["beep"] = beep
    wait_url = params.text("WaitUrl")
    if wait_url is not None:
        attributes["waitUrl"] = check_url("WaitUrl", wait_url, base) if wait_url else ""
    if (wait_method := params.method("WaitMethod")) is not None:
        attributes["waitMethod"] = wait_method
    if params.text("MaxParticipants"):
        limit = params.integer("MaxParticipants", MAX_PARTICIPANTS, 2, MAX_PARTICIPANTS)
        attributes["maxParticipants"] = str(limit)
    if label := params.text("Label"):
        attributes["participantLabel"] = label
    coaching = params.boolean("Coaching") or False
    coach = params.text("CallSidToCoach") or ""
    if coaching != bool(coach):
        raise invalid("CallSidToCoach", "Coaching=true needs CallSidToCoach (and only then)")
    if coach:
        attributes["coach"] = coach
    if callback := params.text("ConferenceStatusCallback"):
        attributes["statusCallback"] = check_url("ConferenceStatusCallback", callback, base)
        method = params.method("ConferenceStatusCallbackMethod")
        attributes["statusCallbackMethod"] = method or "POST"
    wanted = [e for value in events for e in value.replace(",", " ").split()]
    for event in wanted:
        if event not in CONFERENCE_EVENTS:
            raise invalid(
                "ConferenceStatusCallbackEvent",
                f"{event[:40]!r} is not one of {', '.join(CONFERENCE_EVENTS)}",
            )
    if wanted:
        attributes["statusCallbackEvent"] = " ".join(dict.fromkeys(wanted))
    rendered = "".join(f" {key}={quoteattr(value)}" for key, value in attributes.items())
    conference = f"<Conference{rendered}>{escape(name)}</Conference>"
    document = f"<Response><Dial>{conference}</Dial></Response>"
    if len(document) > MAX_TWIML:
        raise invalid("Label", f"the participant's document is over {MAX_TWIML} characters")
    return document
