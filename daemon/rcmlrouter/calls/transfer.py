"""REFER and its NOTIFYs: a bridged party transfers the other one (SPEC §5, issue 7).

A REFER reaches here from the bridge it was sent in (``calls/in_dialog.py`` routes it); it is
taken only once both parties are connected; outside a dialog, before the answer, or without
another party it gets ``403`` with a Reason. A missing or malformed ``Refer-To`` gets ``400``.
The number (or its ReferApplicationSid) must have a refer URL, else ``403`` and a notification.

The REFER's sender is the transferor, the other party the transferee, the ``Refer-To`` user the
target. rcmlrouter answers ``202``, NOTIFYs the transferor (``Event: refer``,
``message/sipfrag``: ``SIP/2.0 100 Trying``, then the final status with ``Subscription-State:
terminated``), fetches the refer URL with the voice parameters plus ``ReferTarget``,
``Transferor`` and ``Transferee`` (the users of Refer-To, of the REFER's Contact and of its To),
and hands the document to the bridge: it replaces the running RCML on the transferee's leg, and
the bridge's end hangs the transferor up. Status callbacks carry the three parameters from then
on. When the dialed party transfers, the transferee is the caller, whose call runs the new
document. When the caller transfers, the transferee is the dialed party (``Transferee`` is the
user its leg was dialed as): its leg leaves the bridge, with its in-dialog owner, and the
supervisor runs the document on it as a call of its own (``calls/transferred_call.py``); the
caller's RCML ends, which hangs it up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol

import structlog

from rcmlrouter.calls.call_state import CallState
from rcmlrouter.calls.dialed_leg import DialedLeg
from rcmlrouter.calls.documents import CallDocuments, refer_url
from rcmlrouter.calls.in_dialog import InDialog, PeerCall, refer_refusal, refuse
from rcmlrouter.calls.wiring import CallWiring, Handover
from rcmlrouter.errors import RcmlError, SipParseError, StoreError
from rcmlrouter.rcml.model import Document
from rcmlrouter.sip.call import IncomingRequest
from rcmlrouter.sip.message import SipRequest
from rcmlrouter.sip.uri import parse_name_addr

log = structlog.get_logger(__name__)

ERROR_NO_REFER_URL = 13230  # notification: a REFER for a number without a refer URL
ERROR_REFER_FETCH = 13231  # notification: the refer URL could not be fetched
SIPFRAG = "message/sipfrag;version=2.0"


class TransferBridge(Protocol):
    """A ``<Dial>`` bridge as a transfer uses it (``calls/bridge.py``)."""

    state: CallState
    wiring: CallWiring
    winner: DialedLeg | None
    legs: list[DialedLeg]
    transfer: asyncio.Future[Document] | None
    callee_dialog: InDialog | None

    @property
    def active(self) -> bool: ...

    @property
    def caller_call(self) -> PeerCall: ...

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None: ...


def refuse_out_of_dialog(request: IncomingRequest) -> None:
    """A REFER without a dialog (no To tag)."""
    refuse(request, 403, "REFER is accepted only inside an answered call with a <Dial> bridge")


def on_refer(request: IncomingRequest, bridge: TransferBridge, *, from_callee: bool) -> None:
    """A REFER from either party of ``bridge``: 202 and a transfer task, or a refusal."""
    state = bridge.state
    winner = bridge.winner
    if not bridge.active or winner is None:
        refuse(request, 403, refer_refusal(state.answered))
        return
    target = refer_target(request.request)
    if target is None:
        refuse(request, 400, "missing or malformed Refer-To")
        return
    number = state.number
    if number is None or not (number.refer_url or number.refer_application_sid):
        phone = number.phone_number if number else state.facts.dialed
        bridge.wiring.notify(
            state, ERROR_NO_REFER_URL, f"REFER refused: number {phone} has no ReferUrl"
        )
        refuse(request, 403, "REFER refused: the number has no ReferUrl")
        return
    assert winner.call is not None
    params = {
        "ReferTarget": target,
        "Transferor": _user(request.request.get("Contact")),
        "Transferee": _user(request.request.get("To")) if from_callee else winner.to,
    }
    request.respond(202, "Accepted")
    transferor = winner.call if from_callee else bridge.caller_call
    bridge.spawn(_transfer(bridge, transferor, params, from_callee=from_callee))


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
    bridge: TransferBridge, transferor: PeerCall, params: dict[str, str], *, from_callee: bool
) -> None:
    """NOTIFY 100, fetch the refer document, NOTIFY the outcome; hand the document over."""
    state, wiring = bridge.state, bridge.wiring
    await _notify(transferor, "SIP/2.0 100 Trying", "active;expires=60")
    try:
        document = await _refer_document(state, wiring, params)
    except (RcmlError, StoreError) as exc:
        log.warning("call.transfer_failed", error=str(exc))
        wiring.notify(state, ERROR_REFER_FETCH, f"REFER: the refer URL failed: {exc}")
        await _notify(transferor, "SIP/2.0 503 Service Unavailable", "terminated;reason=noresource")
        return
    state.transfer_params = params
    await _notify(transferor, "SIP/2.0 200 OK", "terminated;reason=noresource")
    log.info("call.transferred", target=params["ReferTarget"])
    if bridge.transfer is not None and not bridge.transfer.done():
        if not from_callee:
            document = _hand_over(bridge, document, params)
        bridge.transfer.set_result(document)


async def _refer_document(state: CallState, wiring: CallWiring, params: dict[str, str]) -> Document:
    number = state.number
    assert number is not None
    target = await refer_url(wiring.services.directory, number)
    if target is None:
        raise RcmlError("the refer application has no ReferUrl", ERROR_NO_REFER_URL)
    return await CallDocuments(state, wiring).fetch(target.url, target.method, params)


def _hand_over(bridge: TransferBridge, document: Document, params: dict[str, str]) -> Document:
    """The caller transferred: the dialed party's leg leaves the bridge and the supervisor
    runs ``document`` on it; the caller's RCML ends (an empty document), which hangs it up."""
    winner, in_dialog = bridge.winner, bridge.callee_dialog
    assert winner is not None and in_dialog is not None
    bridge.legs.remove(winner)
    bridge.wiring.transferred.run_transferred(
        Handover(winner, in_dialog, bridge.state, document, params)
    )
    return Document()


async def _notify(call: PeerCall, fragment: str, state: str) -> None:
    headers = [("Event", "refer"), ("Subscription-State", state), ("Content-Type", SIPFRAG)]
    await call.send_in_dialog("NOTIFY", headers, fragment.encode() + b"\r\n")


def _user(value: str | None) -> str:
    if not value:
        return ""
    try:
        return parse_name_addr(value).uri.user or ""
    except SipParseError:
        return ""
