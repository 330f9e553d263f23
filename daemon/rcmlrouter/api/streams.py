"""A live call's media streams over REST (Twilio's Stream resource), on both bases.

- ``POST Accounts/{AC}/Calls/{CA}/Streams``: ``Url`` (``wss://``, or ``ws://`` where
  ``[streams] allow_insecure``), ``Name``, ``Track`` (``inbound_track`` | ``outbound_track`` |
  ``both_tracks``), ``StatusCallback``, ``StatusCallbackMethod``, ``ParameterN.Name`` /
  ``ParameterN.Value`` (N from 1 to 99) start a one-way stream on the running call, as
  ``<Start><Stream>`` does (201 on the Twilio base, 200 on the Restcomm base).
- ``POST Accounts/{AC}/Calls/{CA}/Streams/{MZ… or name}`` with ``Status=stopped`` stops it.

The call must be running in this process (``supervisor.live_call``; reached through the
:class:`CallStreamsControl` the composition root puts on the application): a call on another
node of a cluster, or one that has ended, is 404 (20404). Refusals: 400 with 21220 (the call
has no media of ours: not answered, or bridged), 31940 (too many streams on the call), 31941
(the name is in use), 20001 (a missing or malformed parameter, named).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from aiohttp import web

from rcmlrouter.api.auth import authorize
from rcmlrouter.api.context import settings_of
from rcmlrouter.api.flavour import api_base, flavour_of
from rcmlrouter.api.form import Params, check_url, invalid
from rcmlrouter.api.render import Resource, render, strip_format
from rcmlrouter.errors import ApiError, RcmlParseError, StreamRefusedError
from rcmlrouter.rcml.model import STREAM_TRACKS, Stream
from rcmlrouter.rcml.parse_streams import MAX_NAME, MAX_VALUE, stream_url

MAX_PARAMETERS: Final = 99


class CallStreamsControl(Protocol):
    """The running calls' streams (the call supervisor); None from either: no such live call
    of that account here."""

    def start_stream(
        self, account_sid: str, call_sid: str, stream: Stream
    ) -> Mapping[str, str] | None: ...

    def stop_stream(self, account_sid: str, call_sid: str, ref: str) -> Mapping[str, str] | None:
        """The stopped stream's description; raises LookupError when the call runs here but
        has no such stream."""
        ...


STREAMS_KEY: Final = web.AppKey("streams", CallStreamsControl)


def _control(request: web.Request) -> CallStreamsControl | None:
    return request.app.get(STREAMS_KEY)


def _not_live(call_sid: str) -> ApiError:
    return ApiError(404, 20404, f"Call {call_sid} is not in progress on this node")


async def handle_create(request: web.Request) -> web.Response:
    _, account = await authorize(request)
    call_sid = request.match_info["call_sid"]
    params = await Params.from_body(request)
    stream = read_stream(params, request)
    control = _control(request)
    try:
        started = control.start_stream(account.sid, call_sid, stream) if control else None
    except StreamRefusedError as exc:
        raise ApiError(400, exc.error_code, str(exc)) from exc
    if started is None:
        raise _not_live(call_sid)
    return render(request, Resource("Stream", _fields(request, started)), _created(request))


async def handle_update(request: web.Request) -> web.Response:
    _, account = await authorize(request)
    call_sid, ref = request.match_info["call_sid"], strip_format(request.match_info["sid"])
    params = await Params.from_body(request)
    if (params.text("Status") or "").lower() != "stopped":
        raise invalid("Status", "the only update is Status=stopped")
    control = _control(request)
    try:
        stopped = control.stop_stream(account.sid, call_sid, ref) if control else None
    except LookupError as exc:
        raise ApiError(404, 20404, f"Stream {ref} is not running on call {call_sid}") from exc
    if stopped is None:
        raise _not_live(call_sid)
    return render(request, Resource("Stream", _fields(request, stopped)))


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
