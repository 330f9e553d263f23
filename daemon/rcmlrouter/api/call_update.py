"""Live call control: ``POST Accounts/{AC}/Calls/{CA}[.json]`` on both bases (issue 18).

Twilio's update of a Call resource: ``Url`` (+ ``Method``) or ``Twiml`` redirects the call (the
running verb stops, the new document runs); ``Status=completed`` hangs up any call;
``Status=canceled`` ends a call that is not answered yet and leaves an answered one alone;
``StatusCallback`` (+ ``StatusCallbackMethod``) sends the call's remaining status callbacks to a
new URL. The request is validated here, then applied by the node that runs the call, whichever
node it reached (the :class:`~rcmlrouter.call_updates.CallControl` the composition root wires:
in-process, or a PostgreSQL notification with a reply, ``cluster/call_commands.py``). The answer
is the call as it then is (200 on both bases, each in its own shape); a hang-up is answered once
the call has ended and its final record is durable, so it shows the ended call.

=====  ======================================================================================
Code   Refused when
=====  ======================================================================================
20404  the call is unknown (404); 20403 it belongs to an account out of reach (403)
21220  the call is not running any more: "Call is not in-progress. Cannot redirect." (400)
21205  ``Url`` or ``FallbackUrl`` is not an absolute http(s) URL
21609  ``StatusCallback`` is not an absolute http(s) URL (empty: no more callbacks)
21503  ``Method``, ``FallbackMethod`` or ``StatusCallbackMethod`` is not GET or POST
20001  ``Status`` is not ``completed`` or ``canceled``; ``Twiml`` over 4,000 characters; a
       Twilio or Restcomm parameter rcmlrouter does not implement (``TimeLimit``,
       ``MoveConnectedCallLeg``…, ``Mute``), named; a call whose
       status callbacks cannot be moved
12100  ``Twiml`` is not a valid document
20503  the node that runs the call did not answer within 5 s (503, ``Retry-After``)
=====  ======================================================================================

:func:`send_command` is the API's one way to a live call, for updates and for the other
commands (``api/streams.py``): the node that runs it applies it, wherever that is.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from rcmlrouter.api import records
from rcmlrouter.api.auth import authorize, controls
from rcmlrouter.api.context import STORE_KEY, call_control_of, settings_of
from rcmlrouter.api.form import MAX_TIME_LIMIT, MAX_TWIML, Params, check_url, invalid
from rcmlrouter.api.render import Resource, render, strip_format
from rcmlrouter.call_updates import (
    CANCELED,
    COMPLETED,
    ENDED,
    INVALID,
    REFUSED,
    UNKNOWN,
    UNREACHABLE,
    UNSUPPORTED,
    CallCommand,
    CallUpdate,
    UpdateResult,
)
from rcmlrouter.errors import ApiError, NotFoundError, RcmlError
from rcmlrouter.rcml.parse import parse_rcml
from rcmlrouter.store.base import Store
from rcmlrouter.store.records import Account, CallRecord, LiveCall

NOT_IN_PROGRESS = 21220
UNSUPPORTED_PARAMS: Final[dict[str, str]] = {
    # Restcomm's own call modification parameters
    "MoveConnectedCallLeg": "moving a connected leg is not supported",
    "MoveConnectedCallLegUrl": "moving a connected leg is not supported",
    "MoveConnectedCallLegMethod": "moving a connected leg is not supported",
    "Mute": "muting a call is not supported",
}


async def handle_instance(request: web.Request) -> web.Response:
    """``Calls/{CA}[.json]``: GET reads the call, POST updates it."""
    if request.method == "POST":
        return await update_call(request)
    return await records.handle_call(request)


async def update_call(request: web.Request) -> web.Response:
    caller, _ = await authorize(request)
    params = await Params.from_body(request)
    sid = strip_format(request.match_info["sid"])
    account_sid = strip_format(request.match_info["account_sid"])
    update = read_update(params, settings_of(request).public_base_url)
    record = await apply_update(request.app, caller, account_sid, sid, update)
    fields, collection = records.CALLS.shape(request)
    return render(request, Resource(collection[1], fields(request, record)))


def read_update(params: Params, base_url: str | None) -> CallUpdate:
    """The update the parameters ask for; ApiError 400 with Twilio's code if they cannot."""
    for name, why in UNSUPPORTED_PARAMS.items():
        if params.text(name):
            raise invalid(name, f"not supported by rcmlrouter ({why})")
    status = (params.text("Status") or "").lower() or None
    if status is not None and status not in (COMPLETED, CANCELED):
        raise invalid("Status", f"{status[:40]!r} is not completed or canceled")
    twiml = params.raw("Twiml")
    if twiml is not None and not twiml.strip():
        twiml = None
    if twiml is not None:
        _check_twiml(twiml, base_url)
    callback = params.text("StatusCallback")
    if callback:
        callback = _url(params, "StatusCallback", base_url, 21609)
    return CallUpdate(
        status=status,
        url=_url(params, "Url", base_url, 21205),
        method=params.method("Method") or "POST",
        twiml=twiml,
        fallback_url=_url(params, "FallbackUrl", base_url, 21205),
        fallback_method=params.method("FallbackMethod") or "POST",
        status_callback=callback,
        status_callback_method=params.method("StatusCallbackMethod") or "POST",
        base_url=base_url,
        time_limit=_time_limit(params),
    )


def _time_limit(params: Params) -> int | None:
    """``TimeLimit``: the most seconds the call may last (from its answer), 1 to 4 hours."""
    if not params.text("TimeLimit"):
        return None
    return params.integer("TimeLimit", MAX_TIME_LIMIT, 1, MAX_TIME_LIMIT)


def _url(params: Params, name: str, base_url: str | None, code: int) -> str | None:
    value = params.text(name)
    if not value:
        return None
    try:
        return check_url(name, value, base_url)
    except ApiError as exc:
        raise invalid(name, exc.message.split(": ", 1)[-1], code) from exc


def _check_twiml(twiml: str, base_url: str | None) -> None:
    if len(twiml) > MAX_TWIML:
        raise invalid("Twiml", f"{len(twiml)} characters; at most {MAX_TWIML} are accepted")
    try:
        parse_rcml(twiml.encode(), base_url)
    except RcmlError as exc:
        raise invalid("Twiml", f"not a valid document: {exc}", 12100) from exc


async def apply_update(
    app: web.Application, caller: Account, account_sid: str, sid: str, update: CallUpdate
) -> CallRecord:
    """Apply ``update`` to the call ``sid`` of ``account_sid`` for ``caller`` (the API and the
    console's controls both come here); the call as it then is, or ApiError."""
    store: Store = app[STORE_KEY]
    live = await _find(store, caller, account_sid, sid)
    if update.empty:
        return live.record
    if live.record.end_time is not None:
        raise not_in_progress(sid)
    result = await send_command(app, sid, live.node, update)
    if result.outcome == ENDED:
        raise not_in_progress(sid)
    if result.outcome == REFUSED:
        raise ApiError(400, result.code or 20001, result.detail)
    if result.outcome == INVALID:
        raise invalid("Twiml", result.detail, 12100)
    if result.outcome == UNSUPPORTED:
        raise invalid("StatusCallback", result.detail)
    return await store.get_call(sid)


async def send_command(
    app: web.Application, sid: str, owner: str | None, command: CallCommand
) -> UpdateResult:
    """``command`` applied to the live call ``sid`` by the node that runs it (``owner``: the
    node its record names; None: this process); how it came out. 503 (``Retry-After``) when
    that node cannot be reached or does not know the command, or no control is wired."""
    control = call_control_of(app)
    if control is None:
        raise ApiError(503, 20503, "live call control is not available in this process")
    if isinstance(command, CallUpdate):
        result = await control.update(sid, owner, command)
    else:
        result = await control.command(sid, owner, command)
    if result.outcome in (UNREACHABLE, UNKNOWN):
        raise NodeUnreachable(result.detail)
    return result


def not_in_progress(sid: str) -> ApiError:
    return ApiError(400, NOT_IN_PROGRESS, f"Call {sid} is not in-progress. Cannot redirect.")


class NodeUnreachable(ApiError):
    """503: the node that runs the call did not answer."""

    retry_after = 1

    def __init__(self, detail: str) -> None:
        super().__init__(503, 20503, f"the node that runs the call did not answer: {detail}")


async def _find(store: Store, caller: Account, account_sid: str, sid: str) -> LiveCall:
    """The call and its owner; 404 unknown, 403 another account's (as GET answers)."""
    try:
        live = await store.live_call(sid)
    except NotFoundError as exc:
        raise ApiError(404, 20404, f"call {sid} not found") from exc
    account = live.record.account_sid
    if account != account_sid or not await controls(store, caller, account):
        raise ApiError(403, 20403, f"call {sid} belongs to another account")
    return live
