"""A live call's media streams over REST (Twilio's Stream resource), on both bases.

- ``POST Accounts/{AC}/Calls/{CA}/Streams``: ``Url`` (``wss://``, or ``ws://`` where
  ``[streams] allow_insecure``), ``Name``, ``Track`` (``inbound_track`` | ``outbound_track`` |
  ``both_tracks``), ``StatusCallback``, ``StatusCallbackMethod``, ``ParameterN.Name`` /
  ``ParameterN.Value`` (N from 1 to 99) start a one-way stream on the running call, as
  ``<Start><Stream>`` does (201 on the Twilio base, 200 on the Restcomm base).
- ``POST Accounts/{AC}/Calls/{CA}/Streams/{MZ… or name}`` with ``Status=stopped`` stops it.

Both are commands about a live call (``call_updates.StreamStart`` / ``StreamStop``), sent the
way ``POST Calls/{CA}`` updates are (``api/call_update.send_command``): applied in this process
when the call runs here, else by the node its record names as ``owner`` (the cluster's command
channel), which answers with the stream's description or a refusal. A call that has ended, or
is unknown, or another account's, is 404 (20404), as is a stream that is not running; a node
that runs the call and does not answer is 503 (20503, ``Retry-After``). Refusals: 400 with 21220
(the call has no media of ours: not answered, or bridged), 31940 (too many streams on the call),
31941 (the name is in use), 20001 (a missing or malformed parameter, named).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from rcmlrouter.api.auth import authorize
from rcmlrouter.api.call_update import NodeUnreachable, send_command
from rcmlrouter.api.context import settings_of, store_of
from rcmlrouter.api.flavour import api_base, flavour_of
from rcmlrouter.api.form import Params, check_url, invalid
from rcmlrouter.api.render import Resource, render, strip_format
from rcmlrouter.call_updates import (
    APPLIED,
    ENDED,
    NO_STREAM,
    REFUSED,
    CallCommand,
    StreamStart,
    StreamStop,
)
from rcmlrouter.errors import ApiError, NotFoundError, RcmlParseError
from rcmlrouter.rcml.model import STREAM_TRACKS, Stream
from rcmlrouter.rcml.parse_streams import MAX_NAME, MAX_VALUE, stream_url

MAX_PARAMETERS: Final = 99


def _not_live(call_sid: str) -> ApiError:
    return ApiError(404, 20404, f"Call {call_sid} is not in progress")


async def handle_create(request: web.Request) -> web.Response:
    _, account = await authorize(request)
    call_sid = request.match_info["call_sid"]
    params = await Params.from_body(request)
    stream = read_stream(params, request)
    start = StreamStart(
        account.sid,
        stream.url,
        stream.name,
        stream.track,
        stream.status_callback,
        stream.status_callback_method,
        stream.parameters,
    )
    started = await _command(request, account.sid, call_sid, start)
    return render(request, Resource("Stream", _fields(request, started)), _created(request))


async def handle_update(request: web.Request) -> web.Response:
    _, account = await authorize(request)
    call_sid, ref = request.match_info["call_sid"], strip_format(request.match_info["sid"])
    params = await Params.from_body(request)
    if (params.text("Status") or "").lower() != "stopped":
        raise invalid("Status", "the only update is Status=stopped")
    stopped = await _command(request, account.sid, call_sid, StreamStop(account.sid, ref))
    return render(request, Resource("Stream", _fields(request, stopped)))


async def _command(
    request: web.Request, account_sid: str, call_sid: str, command: CallCommand
) -> Mapping[str, str]:
    """The stream's description once the node that runs the call applied ``command``."""
    try:
        live = await store_of(request).live_call(call_sid)
    except NotFoundError:  # unknown, or its first record not durable yet: this process answers
        owner = None
    else:
        if live.record.account_sid != account_sid or live.record.end_time is not None:
            raise _not_live(call_sid)
        owner = live.node
    result = await send_command(request.app, call_sid, owner, command)
    if result.outcome == APPLIED and result.result is not None:
        return result.result
    if result.outcome == ENDED:
        raise _not_live(call_sid)
    if result.outcome == REFUSED:
        raise ApiError(400, result.code or 20001, result.detail)
    if result.outcome == NO_STREAM and isinstance(command, StreamStop):
        raise ApiError(404, 20404, f"Stream {command.ref} is not running on call {call_sid}")
    raise NodeUnreachable(f"unexpected answer {result.outcome}: {result.detail}")


def read_stream(params: Params, request: web.Request) -> Stream:
    raw_url = params.text("Url")
    if not raw_url:
        raise invalid("Url", "a ws:// or wss:// Url is required")
    try:
        url = stream_url(raw_url)
    except RcmlParseError as exc:
        raise invalid("Url", "expected an absolute ws:// or wss:// URL") from exc
    track = params.text("Track") or "inbound_track"
    if track not in STREAM_TRACKS:
        raise invalid("Track", f"expected one of {', '.join(STREAM_TRACKS)}")
    name = params.text("Name") or None
    if name is not None and len(name) > MAX_NAME:
        raise invalid("Name", f"at most {MAX_NAME} characters")
    callback = params.text("StatusCallback") or None
    if callback is not None:
        callback = check_url("StatusCallback", callback, settings_of(request).public_base_url)
    return Stream(
        url=url,
        name=name,
        track=track,
        status_callback=callback,
        status_callback_method=params.method("StatusCallbackMethod") or "POST",
        parameters=_parameters(params),
    )


def _parameters(params: Params) -> tuple[tuple[str, str], ...]:
    found = []
    for n in range(1, MAX_PARAMETERS + 1):
        name = params.text(f"Parameter{n}.Name")
        if name is None:
            continue
        value = params.raw(f"Parameter{n}.Value") or ""
        if len(name) > MAX_NAME or len(value) > MAX_VALUE:
            raise invalid(f"Parameter{n}", f"name <= {MAX_NAME}, value <= {MAX_VALUE} chars")
        found.append((name, value))
    return tuple(found)


def _created(request: web.Request) -> int:
    return flavour_of(request).create_status


def _fields(request: web.Request, stream: Mapping[str, str]) -> dict[str, Any]:
    uri = (
        f"{api_base(request)}/Accounts/{stream['account_sid']}/Calls/{stream['call_sid']}"
        f"/Streams/{stream['sid']}.json"
    )
    return {**stream, "uri": uri}
