"""Recordings (``<Record>``): metadata as JSON/XML like the other records, audio as ``.wav``.

``Accounts/{AC}/Recordings`` lists an account's recordings (newest first; ``CallSid`` filters),
``Accounts/{AC}/Calls/{CA}/Recordings`` one call's; ``Accounts/{AC}/Recordings/{RE}`` is one
recording and ``…/{RE}.wav`` its audio (16-bit 8 kHz mono), read from the data directory.
Every one of them needs the account's credentials.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from rcmlrouter.api.auth import authorize
from rcmlrouter.api.context import store_of
from rcmlrouter.api.form import Params
from rcmlrouter.api.records import RecordKind, instance_handler, list_handler
from rcmlrouter.api.render import api_base, rfc2822
from rcmlrouter.errors import ApiError, NotFoundError
from rcmlrouter.store.base import Store
from rcmlrouter.store.filters import Page
from rcmlrouter.store.records import API_VERSION, Recording

RECORDINGS_DIR_KEY = web.AppKey("recordings_dir", Path)


def recording_fields(request: web.Request, r: Recording) -> dict[str, Any]:
    uri = f"{api_base(request)}/Accounts/{r.account_sid}/Recordings/{r.sid}"
    return {
        "sid": r.sid,
        "account_sid": r.account_sid,
        "call_sid": r.call_sid,
        "duration": str(round(r.duration)),
        "date_created": rfc2822(r.date_created),
        "date_updated": rfc2822(r.date_created),
        "start_time": rfc2822(r.date_created),
        "status": r.status,
        "source": r.source,
        "channels": r.channels,
        "media_format": "wav",
        "api_version": API_VERSION,
        "uri": f"{uri}.json",
        "file_uri": f"{uri}.wav",
    }


async def _list(
    store: Store, account_sid: str, params: Params, page: int, size: int
) -> Page[Recording]:
    return await store.list_recordings(account_sid, params.text("CallSid") or None, page, size)


RECORDINGS: RecordKind[Recording] = RecordKind(
    "recording", ("Recordings", "Recording", "recordings"), recording_fields, _list,
    lambda store, sid: store.get_recording(sid), filters=("CallSid",),
)  # fmt: skip
handle_recordings = list_handler(RECORDINGS)
_handle_metadata = instance_handler(RECORDINGS)


async def handle_recording(request: web.Request) -> web.StreamResponse:
    """``{RE}`` / ``{RE}.json`` / ``{RE}.xml``: metadata; ``{RE}.wav``: the audio."""
    segment = request.match_info["sid"]
    if not segment.endswith(".wav"):
        return await _handle_metadata(request)
    _, account = await authorize(request)
    sid = segment[: -len(".wav")]
    try:
        recording = await store_of(request).get_recording(sid)
    except NotFoundError as exc:
        raise ApiError(404, 20404, f"recording {sid} not found") from exc
    if recording.account_sid != account.sid:
        raise ApiError(403, 20403, f"recording {sid} belongs to another account")
    directory = request.app.get(RECORDINGS_DIR_KEY)
    path = directory / recording.account_sid / f"{sid}.wav" if directory else None
    if path is None or not path.is_file():
        raise ApiError(404, 20404, f"the audio of recording {sid} is gone")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


async def handle_call_recordings(request: web.Request) -> web.Response:
    """``Calls/{CA}/Recordings``: the account's list filtered by the call."""
    call_sid = request.match_info["call_sid"]
    query = dict(request.query)
    query["CallSid"] = call_sid
    return await handle_recordings(request.clone(rel_url=request.rel_url.with_query(query)))
