"""A call in a conference: ``<Dial><Conference>`` on the caller's own media.

The caller is answered with our media (``CallMedia``; a call a ``<Dial>`` bridge left gets the
re-offer first), becomes a :class:`~rcmlrouter.conference.participant.Participant` of the room
the registry finds or creates for the name, and stays until it leaves: kicked over the API, the
conference ended (``endConferenceOnExit``, the API, the last one left), or the caller hung up.
Meanwhile it plays what its mode asks for: the ``waitUrl`` RCML while the conference has not
started, the hold RCML (``HoldUrl``) while held, nothing while mixed (the mixer sends).

Wait and hold RCML: the document's ``<Play>``, ``<Say>`` and ``<Pause>`` verbs, looped;
``<Redirect>`` is followed; other verbs are skipped. Without a URL both play the default sound,
a soft 440 Hz tone of 0.2 s every 3 s at -26 dBFS (``waitUrl=""``: silence). A document that
cannot be fetched is a notification, then silence.

The outcome is ``DialCallStatus`` ``completed`` with ``ConferenceSid`` and ``DialCallDuration``
(seconds in the room) for the ``<Dial action>``; without an action the next verb runs (the
executor). A caller who hangs up leaves the room; the action still gets its request, through
the outbox. A room that cannot be joined (full; held by another node: joining across nodes is
not in this build) ends the ``<Dial>`` ``failed`` with a notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Final, Protocol

import numpy as np
import structlog

from rcmlrouter.calls.bridge import Bridge, CallerLeg
from rcmlrouter.calls.call_events import post_action_after_hangup
from rcmlrouter.calls.call_media import CallMedia
from rcmlrouter.calls.call_state import CallState
from rcmlrouter.calls.documents import CallDocuments
from rcmlrouter.calls.wiring import CallWiring
from rcmlrouter.conference.events import StatusCallback
from rcmlrouter.conference.internal_leg import InternalJoin, encode
from rcmlrouter.conference.participant import Mode, Participant, Settings
from rcmlrouter.conference.registry import ConferenceElsewhereError, JoinRequest
from rcmlrouter.conference.room import ConferenceFullError, Room, RoomOptions
from rcmlrouter.errors import MediaError, RcmlError, StoreError
from rcmlrouter.media.audio import AudioClip, silence, tone
from rcmlrouter.rcml.model import Dial, DialConference, DialSip, Pause, Play, Redirect, Say
from rcmlrouter.rcml.ports import DialOutcome
from rcmlrouter.sip.uri import SipUri, format_host
from rcmlrouter.store.conference_records import ConferenceRecord

log = structlog.get_logger(__name__)

ERROR_CONFERENCE = 13250  # notification: the conference could not be joined (full, owner gone)
DEFAULT_SOUND: Final = AudioClip(
    np.concatenate([tone(440.0, 0.2, amplitude=0.05).pcm, silence(2.8).pcm])
)
MAX_WAIT_REDIRECTS: Final = 5


class ConferenceCaller(CallerLeg, Protocol):
    """The caller's side as a conference needs it: a bridge's caller with media of ours."""

    media: CallMedia


async def join_conference(caller: ConferenceCaller, verb: Dial) -> DialOutcome:
    """Join ``verb.conference``; returns when this call has left it."""
    conference = verb.conference
    assert conference is not None
    media, state, wiring = caller.media, caller.state, caller.wiring
    registry = wiring.services.conferences
    session = await media.conference_session()
    if registry is None or session is None:
        return _failed(wiring, state, "conferences need call media in this process")
    participant = Participant(state.call_sid, session, _settings(conference))
    try:
        room = await registry.join(_request(state, conference), participant)
    except ConferenceElsewhereError as exc:
        return await _join_remote(caller, verb, conference, exc.record)
    except (ConferenceFullError, StoreError) as exc:
        return _failed(wiring, state, f"<Conference> {conference.name}: {exc}")
    joined = time.time()
    try:
        await stay(participant, media, CallDocuments(state, wiring), conference)
    except asyncio.CancelledError:
        room.leave(state.call_sid, "hangup")
        if media.call.ended.done() and verb.action is not None:
            post_action_after_hangup(
                wiring.services.outbox, state, state.call_sid, "completed",
                (verb.action, verb.method), _params(room, joined),
            )  # fmt: skip
        raise
    finally:
        room.leave(state.call_sid, "hangup")
    return DialOutcome("completed", True, _params(room, joined))


async def _join_remote(
    caller: ConferenceCaller, verb: Dial, conference: DialConference, held: ConferenceRecord
) -> DialOutcome:
    """The room lives on another node: bridge the caller to it through an internal SIP leg
    (``conference/internal_leg.py``); the caller's media goes to the owner, which mixes it. The
    leg ends when the owner lets the caller go (kick, end), the caller hangs up, or the owner
    stops heartbeating (its conference is over: the caller goes on with its next verb)."""
    state, wiring = caller.state, caller.wiring
    registry = wiring.services.conferences
    assert registry is not None
    address = await registry.owner_address(held.node_id)
    if address is None:
        return _failed(wiring, state, f"<Conference> {conference.name}: node {held.node_id} "
                       "holds it and is not alive")  # fmt: skip
    join = InternalJoin(
        held.sid, state.call_sid, _settings(conference), conference.wait_url,
        conference.wait_method,
    )  # fmt: skip
    user, params = encode(join)
    uri = SipUri("sip", user, format_host(address[0]), address[1], dict(params))
    bridge = Bridge(
        caller, Dial(timeout=10, time_limit=verb.time_limit, targets=(DialSip(str(uri)),))
    )
    log.info("conference.remote_join", conference_sid=held.sid, node_id=held.node_id)

    def owner_dead() -> None:
        winner = bridge.winner
        if winner is not None and winner.call is not None and not winner.call.ended.done():
            bridge.spawn(winner.call.hangup("conference owner is gone"))

    stop_watching = registry.watch_owner(held.node_id, owner_dead)
    joined = time.time()
    caller.media.suspend()
    try:
        outcome = await bridge.run()
    except asyncio.CancelledError:  # the caller hung up: the action still hears of it
        if caller.call.ended.done() and verb.action is not None:
            params = _remote_params(held, joined)
            post_action_after_hangup(
                wiring.services.outbox, state, state.call_sid, "completed",
                (verb.action, verb.method), params,
            )  # fmt: skip
        raise
    finally:
        stop_watching()
        await caller.media.resume()
    if not outcome.answered:
        return _failed(wiring, state, f"<Conference> {conference.name}: the internal leg to "
                       f"node {held.node_id} failed ({outcome.status})")  # fmt: skip
    return DialOutcome("completed", True, _remote_params(held, joined))


def _remote_params(held: ConferenceRecord, joined: float) -> dict[str, str]:
    return {
        "DialCallStatus": "completed",
        "ConferenceSid": held.sid,
        "DialCallDuration": str(int(time.time() - joined)),
    }


def _settings(conference: DialConference) -> Settings:
    return Settings(
        muted=conference.muted,
        beep=conference.beep,
        start_conference_on_enter=conference.start_conference_on_enter,
        end_conference_on_exit=conference.end_conference_on_exit,
        coach=conference.coach,
        label=conference.label,
    )


def _request(state: CallState, conference: DialConference) -> JoinRequest:
    callback = None
    if conference.status_callback:
        callback = StatusCallback(
            conference.status_callback,
            conference.status_callback_method,
            conference.status_callback_event,
        )
    options = RoomOptions(conference.max_participants, conference.record_from_start)
    return JoinRequest(state.account_sid, conference.name, callback, options)


def _params(room: Room, joined: float) -> dict[str, str]:
    return {
        "DialCallStatus": "completed",
        "ConferenceSid": room.sid,
        "DialCallDuration": str(int(time.time() - joined)),
    }


def _failed(wiring: CallWiring, state: CallState, message: str) -> DialOutcome:
    wiring.notify(state, ERROR_CONFERENCE, message)
    log.warning("conference.join_failed", message=message)
    return DialOutcome("failed", False, {"DialCallStatus": "failed"})


# -- while in the room ------------------------------------------------------------------------

Music = tuple[str, str] | None | bool  # (url, method), None: silence, True: the default sound


async def stay(
    participant: Participant, media: CallMedia, documents: CallDocuments, conf: DialConference
) -> None:
    playing: Music = None
    music: asyncio.Task[None] | None = None
    try:
        while not participant.gone.done():
            wanted = _music(participant, conf)
            if wanted != playing or (music is not None and music.done()):
                if music is not None:
                    music.cancel()
                playing, music = wanted, None
                if wanted is not None:
                    music = asyncio.create_task(_play_loop(media, documents, wanted))
            waits: list[asyncio.Future[Any]] = [participant.changed, participant.gone]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if music is not None:
            music.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await music


def _music(participant: Participant, conf: DialConference) -> Music:
    if participant.mode is Mode.WAIT:
        if conf.wait_url is None:
            return True
        return (conf.wait_url, conf.wait_method) if conf.wait_url else None
    if participant.mode is Mode.HOLD:
        if participant.hold_url:
            return (participant.hold_url, participant.hold_method)
        return True
    return None


async def _play_loop(media: CallMedia, documents: CallDocuments, music: Music) -> None:
    """Play the wait / hold sound until cancelled."""
    if music is True or music is None or music is False:
        await media.play_clip(DEFAULT_SOUND, loop=0)
        return
    url, method = music
    try:
        document = await documents.fetch(url, method, {})
        verbs = document.verbs
        for _ in range(MAX_WAIT_REDIRECTS):
            redirect = next((v for v in verbs if isinstance(v, Redirect)), None)
            if redirect is None:
                break
            verbs = (await documents.fetch(redirect.url, redirect.method, {})).verbs
    except RcmlError as exc:
        documents.notify(exc.error_code, f"conference wait/hold RCML: {exc}", url)
        await asyncio.Event().wait()  # silence until the mode changes
        return
    playable = [v for v in verbs if isinstance(v, Play | Say | Pause)]
    if not playable:
        await asyncio.Event().wait()
    loop = asyncio.get_running_loop()
    while True:
        began = loop.time()
        for item in playable:
            try:
                if isinstance(item, Pause):
                    await media.pause(float(item.length))
                else:
                    await media.play(item)
            except MediaError as exc:
                documents.notify(exc.error_code, f"conference wait/hold: {exc}")
        if loop.time() - began < 0.5:  # nothing that takes time to play: do not spin
            await asyncio.sleep(1.0)
