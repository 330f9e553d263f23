"""``<Record>`` on a call: the WAV under the data directory, its store row, its callbacks.

The audio goes to ``{data dir}/recordings/{AccountSid}/{RecordingSid}.wav`` (16-bit 8 kHz mono)
and is served by the API at ``Accounts/{AC}/Recordings/{RE}.wav``. When the caller hangs up
during the recording the call's task is cancelled: the recording is still finished and stored,
and the ``action`` gets ``Digits=hangup`` through the durable callback outbox (its document is
not run: the call is over), as does the ``recordingStatusCallback`` in every case. When the API
redirects the call during the recording (``POST Calls/{CA}``), only the recording stops: it is
stored and its ``recordingStatusCallback`` sent, its ``action`` is not requested (the new
document runs instead), and the call's media goes on.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from rcmlrouter.calls.call_events import post_action_after_hangup
from rcmlrouter.calls.call_state import CallState
from rcmlrouter.calls.live_call import stopped_by_redirect
from rcmlrouter.calls.wiring import CallWiring
from rcmlrouter.dates import rfc2822
from rcmlrouter.media.recorder import RecordingResult
from rcmlrouter.media.session import MediaSession
from rcmlrouter.rcml.model import Record
from rcmlrouter.rcml.ports import RecordingOutcome
from rcmlrouter.services import MediaServices
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import API_VERSION, Recording

log = structlog.get_logger(__name__)


def recording_url(base: str, account_sid: str, sid: str) -> str:
    return f"{base}/restcomm/{API_VERSION}/Accounts/{account_sid}/Recordings/{sid}.wav"


async def record_call(
    session: MediaSession,
    verb: Record,
    state: CallState,
    wiring: CallWiring,
    media: MediaServices,
) -> RecordingOutcome:
    """Record the caller as ``verb`` says; the parameters for its ``action``."""
    sid = new_sid("RE")
    path = media.recordings_dir / state.account_sid / f"{sid}.wav"
    started = time.time()
    recording = asyncio.ensure_future(
        session.record(
            path,
            max_length=float(verb.max_length),
            silence_timeout=float(verb.timeout),
            finish_on_key=verb.finish_on_key,
            beep=verb.play_beep,
        )
    )
    try:
        result = await asyncio.shield(recording)
    except asyncio.CancelledError:
        if stopped_by_redirect() and not session.closed.done():  # the call goes on elsewhere
            if session.stop_recording():
                result = await recording
                await _store(state, wiring, media, sid, result, started)
                _deliver(state, wiring, verb, sid, result, hung_up=False)
            else:  # still beeping: nothing recorded yet
                recording.cancel()
            raise
        # the caller hung up (or the call is being ended)
        session.close()
        result = await recording
        await _store(state, wiring, media, sid, result, started)
        _deliver(state, wiring, verb, sid, result, hung_up=True)
        raise
    await _store(state, wiring, media, sid, result, started)
    params = _deliver(state, wiring, verb, sid, result, hung_up=result.reason == "hangup")
    return RecordingOutcome(params, caller_hung_up=result.reason == "hangup")


async def _store(
    state: CallState,
    wiring: CallWiring,
    media: MediaServices,
    sid: str,
    result: RecordingResult,
    started: float,
    *,
    source: str = "RecordVerb",
    channels: int = 1,
) -> None:
    duration = round(result.duration, 3)
    row = Recording(sid, state.account_sid, state.call_sid, duration, started, source=source,
                    channels=channels)  # fmt: skip
    try:
        await asyncio.shield(media.save_recording(row))
    except Exception as exc:  # noqa: BLE001 - the call goes on; the file is there
        log.error("recording.store_failed", recording_sid=sid, error=repr(exc))
        wiring.notify(state, 12400, f"recording {sid} could not be stored: {exc}")
    log.info("recording.done", recording_sid=sid, duration=result.duration, reason=result.reason)


def _deliver(
    state: CallState,
    wiring: CallWiring,
    verb: Record,
    sid: str,
    result: RecordingResult,
    *,
    hung_up: bool,
) -> dict[str, str]:
    """The ``action`` parameters; the status callback (and, after a hangup, the action itself)
    go to the outbox, ordered under the recording's sid."""
    url = recording_url(wiring.services.config.api_base_url, state.account_sid, sid)
    duration = str(round(result.duration))
    params = {
        "RecordingUrl": url,
        "RecordingDuration": duration,
        "RecordingSid": sid,
        "Digits": "hangup" if hung_up else result.digits,
    }
    outbox, sequence = wiring.services.outbox, 0
    if hung_up and verb.action is not None:
        post_action_after_hangup(
            outbox, state, sid, "completed", (verb.action, verb.method), params
        )
        sequence += 1
    if verb.recording_status_callback:
        status = _status_params(state, params, result.duration)
        url, method = verb.recording_status_callback, verb.recording_status_callback_method
        outbox.enqueue(sid, state.account_sid, sequence, url, method, status)
    return params


def _status_params(state: CallState, action: dict[str, str], seconds: float) -> dict[str, str]:
    """The ``recordingStatusCallback`` parameters."""
    return {
        "AccountSid": state.account_sid,
        "CallSid": state.call_sid,
        "RecordingSid": action["RecordingSid"],
        "RecordingUrl": action["RecordingUrl"],
        "RecordingStatus": "completed",
        "RecordingDuration": action["RecordingDuration"],
        "RecordingChannels": "1",
        "RecordingSource": "RecordVerb",
        "RecordingStartTime": rfc2822(time.time() - seconds),
    }


async def store_call_recording(
    state: CallState,
    wiring: CallWiring,
    media: MediaServices,
    recording: tuple[str, float, float],
    callback: tuple[str, str] | None,
    channels: int = 1,
) -> None:
    """A whole-call recording (``Record=true`` of an API call; ``recording`` is its sid, start
    time and duration; ``channels`` 2 for ``RecordingChannels=dual``): its store row (source
    ``OutboundAPI``), and its ``RecordingStatusCallback`` (URL, method) through the outbox with
    ``RecordingSource`` ``OutboundAPI``."""
    sid, started, duration = recording
    result = RecordingResult(media.recordings_dir / state.account_sid / f"{sid}.wav", duration,
                             "hangup", "")  # fmt: skip
    await _store(state, wiring, media, sid, result, started, source="OutboundAPI",
                 channels=channels)  # fmt: skip
    if callback is None:
        return
    url = recording_url(wiring.services.config.api_base_url, state.account_sid, sid)
    action = {"RecordingSid": sid, "RecordingUrl": url, "RecordingDuration": str(round(duration))}
    params = _status_params(state, action, duration) | {
        "RecordingSource": "OutboundAPI",
        "RecordingChannels": str(channels),
    }
    wiring.services.outbox.enqueue(sid, state.account_sid, 0, callback[0], callback[1], params)
