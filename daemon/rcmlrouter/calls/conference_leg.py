"""The owning node's side of an internal conference leg (``conference/internal_leg.py``).

An INVITE whose Request-URI user is ``rcmlconf-{CF}-{CA}`` is not routed: it is another node
bringing its caller ``CA`` into room ``CF``, which lives here. It is refused 403 unless it comes
from the SIP host of a live node, 404 when the room is not here (any more), 486 when the room
is full. Otherwise it is answered with our media and the caller is a participant like a local
one (under its own CallSid, with its ``<Conference>`` attributes from the URI): it hears the
wait / hold RCML here, is mixed here, and the API of this node mutes, holds or kicks it. When
the room lets it go (kick, end) the leg is hung up and the caller's node goes on with its next
verb; when the caller's node hangs up the leg, it leaves the room. No call record is written
here: the call's record is the caller's node's.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from rcmlrouter.calls.call_media import CallMedia
from rcmlrouter.calls.call_state import CallState, read_facts
from rcmlrouter.calls.conference_call import stay
from rcmlrouter.calls.documents import CallDocuments
from rcmlrouter.calls.in_dialog import InDialog
from rcmlrouter.calls.live_call import LiveCall
from rcmlrouter.calls.wiring import CallWiring
from rcmlrouter.conference.internal_leg import PREFIX, InternalJoin, decode
from rcmlrouter.conference.participant import Participant
from rcmlrouter.conference.room import ConferenceFullError, Room
from rcmlrouter.errors import RcmlRouterError, SipError
from rcmlrouter.rcml.model import DialConference
from rcmlrouter.sip.call import IncomingCall
from rcmlrouter.sip.uri import parse_uri

log = structlog.get_logger(__name__)


def internal_join(call: IncomingCall) -> InternalJoin | None:
    """The join an INVITE carries, if it is an internal conference leg (else None)."""
    try:
        uri = parse_uri(call.request.uri)
    except SipError:
        return None
    if not (uri.user or "").startswith(PREFIX):
        return None
    return decode(uri.user or "", dict(uri.params))


async def run_conference_leg(
    call: IncomingCall, join: InternalJoin, live: LiveCall, wiring: CallWiring
) -> None:
    """The internal leg's task (cancelled when the caller's node hangs it up)."""
    structlog.contextvars.bind_contextvars(call_sid=join.call_sid)
    room = await _room(call, join, wiring)
    if room is None:
        return
    record = room.events.record
    facts = read_facts(call.request, wiring.services.config.routing.dialed_from)
    state = CallState(join.call_sid, time.time(), facts, record.account_sid)
    state.auth_token = await wiring.services.directory.auth_token(record.account_sid)
    in_dialog = InDialog(call, state)
    media = CallMedia(call, in_dialog, state, wiring)
    in_dialog.own_digits(media)
    live.watch(call.ended)
    try:
        if not await call.answer(await media.local_sdp()):
            return
        media.on_answered()
        session = await media.conference_session()
        if session is None:
            return
        participant = Participant(join.call_sid, session, join.settings)
        try:
            room.join(participant)
        except ConferenceFullError:
            await call.hangup("conference full")
            return
        conference = DialConference(record.friendly_name, wait_url=join.wait_url,
                                    wait_method=join.wait_method)  # fmt: skip
        try:
            await stay(participant, media, CallDocuments(state, wiring), conference)
        finally:
            room.leave(join.call_sid, "hangup")
        await call.hangup()
    except asyncio.CancelledError:
        live.uncancel()
        if not live.remote_ended:
            await call.hangup()
    except RcmlRouterError as exc:  # no RTP port, an offer we cannot answer, the store…
        log.warning("conference.internal_leg_failed", error=str(exc))
        if call.answered:
            await call.hangup()
        else:
            status = exc.sip_status if isinstance(exc, SipError) else 500
            call.reject(status, reason_header=str(exc))
    finally:
        live.settle()
        media.close()
        in_dialog.close()
        structlog.contextvars.unbind_contextvars("call_sid")


async def _room(call: IncomingCall, join: InternalJoin, wiring: CallWiring) -> Room | None:
    registry = wiring.services.conferences
    host = call.source[1]
    if registry is None or not await registry.is_node_host(host):
        call.reject(403, reason_header="internal conference legs come from cluster nodes only")
        return None
    room = registry.room(join.conference_sid)
    if room is None or room.ended:
        call.reject(404, reason_header=f"conference {join.conference_sid} is not here")
        return None
    return room
