"""REFER: a bridged party transfers the other one (SPEC §5, issue 7).

A REFER is taken only inside an answered call with a ``<Dial>`` bridge; outside a dialog,
before the answer, or without another party it gets ``403`` with a Reason. A missing or
malformed ``Refer-To`` gets ``400``. The number (or its ReferApplicationSid) must have a refer
URL, else ``403`` and a notification.

The REFER's sender is the transferor, the other party the transferee, the ``Refer-To`` user the
target. rcmlrouter answers ``202``, NOTIFYs the transferor (``Event: refer``,
``message/sipfrag``: ``SIP/2.0 100 Trying``, then the final status with ``Subscription-State:
terminated``), fetches the refer URL with the voice parameters plus ``ReferTarget``,
``Transferor`` and ``Transferee`` (the users of Refer-To, of the REFER's Contact and of its To),
and hands the document to the bridge: it replaces the running RCML on the transferee's leg, and
the bridge's end hangs the transferor up. Status callbacks carry the three parameters from then
on. When the dialed party transfers, the transferee is the caller, whose call runs the new
document. When the caller transfers, the transferee is the dialed party (``Transferee`` is the
user its leg was dialed as): its leg leaves the bridge and runs the document as a call of its own
(:mod:`rcmlrouter.calls.outbound_call_leg`), and the caller's RCML ends, which hangs it up.
"""

from __future__ import annotations

import structlog

from rcmlrouter.calls.bridge import Bridge, PeerCall
from rcmlrouter.calls.context import CallContext
from rcmlrouter.errors import RcmlError, SipParseError, StoreError
from rcmlrouter.rcml.model import Document
from rcmlrouter.sip.call import IncomingRequest
from rcmlrouter.sip.endpoint import ALLOW
from rcmlrouter.sip.message import SipRequest
from rcmlrouter.sip.response import reason_header
from rcmlrouter.sip.uri import parse_name_addr

log = structlog.get_logger(__name__)

ERROR_NO_REFER_URL = 13230  # notification: a REFER for a number without a refer URL
ERROR_REFER_FETCH = 13231  # notification: the refer URL could not be fetched
SIPFRAG = "message/sipfrag;version=2.0"


def refuse_out_of_dialog(request: IncomingRequest) -> None:
    """A REFER without a dialog (no To tag)."""
    _refuse(request, 403, "REFER is accepted only inside an answered call with a <Dial> bridge")


def route_in_dialog(
    request: IncomingRequest, ctx: CallContext, bridge: Bridge | None, *, from_callee: bool
) -> None:
    """An in-dialog request (not BYE, OPTIONS or re-INVITE) from either party of a call."""
    method = request.request.method
    if method == "REFER":
        on_refer(request, ctx, bridge, from_callee=from_callee)
    elif method == "INFO" and bridge is not None:
        bridge.relay_info(request, from_callee)
    elif method == "INFO":
        request.respond(200)
    else:
        request.respond(405, headers=[("Allow", ALLOW)])


def on_refer(
    request: IncomingRequest, ctx: CallContext, bridge: Bridge | None, *, from_callee: bool
) -> None:
    if bridge is None or not bridge.active or bridge.winner is None:
        answered = ctx.answer_time is not None
        why = "the call has no other party (no <Dial> bridge)" if answered else "not answered"
        _refuse(request, 403, f"REFER refused: {why}")
        return
    target = refer_target(request.request)
    if target is None:
        _refuse(request, 400, "missing or malformed Refer-To")
        return
    number = ctx.number
    if number is None or not (number.refer_url or number.refer_application_sid):
        phone = number.phone_number if number else ctx.dialed
        ctx.notify(ERROR_NO_REFER_URL, f"REFER refused: number {phone} has no ReferUrl")
        _refuse(request, 403, "REFER refused: the number has no ReferUrl")
        return
    winner = bridge.winner
    assert winner.call is not None
    params = {
        "ReferTarget": target,
        "Transferor": _user(request.request.get("Contact")),
        "Transferee": _user(request.request.get("To")) if from_callee else winner.to,
    }
    request.respond(202, "Accepted")
    transferor = winner.call if from_callee else bridge.caller.call
    bridge.spawn(_transfer(bridge, ctx, transferor, params, from_callee=from_callee))


def refer_target(request: SipRequest) -> str | None:
    """The user part of ``Refer-To`` (a sip, sips or tel URI with a user); None if unusable."""
    value = request.get("Refer-To")
    if not value:
        return None
    try:
        uri = parse_name_addr(value).uri
    except SipParseError:
        return None
    return uri.user or None


async def _transfer(
    bridge: Bridge,
    ctx: CallContext,
    transferor: PeerCall,
    params: dict[str, str],
    *,
    from_callee: bool,
) -> None:
    """NOTIFY 100, fetch the refer document, NOTIFY the outcome; hand the document over."""
    await _notify(transferor, "SIP/2.0 100 Trying", "active;expires=60")
    try:
        url, method = await _refer_url(ctx)
        document = await ctx.fetch(url, method, params)
    except (RcmlError, StoreError) as exc:
        log.warning("call.transfer_failed", error=str(exc))
        ctx.notify(ERROR_REFER_FETCH, f"REFER: the refer URL failed: {exc}")
        await _notify(transferor, "SIP/2.0 503 Service Unavailable", "terminated;reason=noresource")
        return
    ctx.transfer_params = params
    await _notify(transferor, "SIP/2.0 200 OK", "terminated;reason=noresource")
    log.info("call.transferred", target=params["ReferTarget"])
    if bridge.transfer is not None and not bridge.transfer.done():
        if not from_callee:
            document = _hand_over(bridge, ctx, document, params)
        bridge.transfer.set_result(document)


def _hand_over(
    bridge: Bridge, ctx: CallContext, document: Document, params: dict[str, str]
) -> Document:
    """The caller transferred: the dialed party's leg leaves the bridge and runs ``document``
    (:mod:`rcmlrouter.calls.outbound_call_leg`); the caller's RCML ends, which hangs it up."""
    from rcmlrouter.calls.outbound_call_leg import hand_over  # it builds on the bridge

    winner = bridge.winner
    assert winner is not None
    bridge.legs.remove(winner)
    hand_over(winner, ctx, document, params)
    return Document()


async def _refer_url(ctx: CallContext) -> tuple[str, str]:
    number = ctx.number
    assert number is not None
    url, method = number.refer_url, number.refer_method
    if number.refer_application_sid:
        app = await ctx.services.directory.application(number.refer_application_sid)
        url, method = app.refer_url, app.refer_method
    if not url:
        raise RcmlError("the refer application has no ReferUrl", ERROR_NO_REFER_URL)
    return url, method


async def _notify(call: PeerCall, fragment: str, state: str) -> None:
    headers = [("Event", "refer"), ("Subscription-State", state), ("Content-Type", SIPFRAG)]
    await call.send_in_dialog("NOTIFY", headers, fragment.encode() + b"\r\n")


def _refuse(request: IncomingRequest, status: int, reason: str) -> None:
    request.respond(status, headers=[reason_header(status, reason)])


def _user(value: str | None) -> str:
    if not value:
        return ""
    try:
        return parse_name_addr(value).uri.user or ""
    except SipParseError:
        return ""
