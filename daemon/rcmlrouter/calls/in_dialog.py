"""Who answers a call's in-dialog requests, at any moment (BYE and OPTIONS stay in the SIP core).

Each SIP call of the wing (the caller's ``IncomingCall``, a bridged ``<Dial>`` leg, the leg a
transferred call runs on) has one :class:`InDialog`, and only it puts callbacks on the SIP call.
Who owns the call's requests is its state, changed by name:

- re-INVITEs: the SIP core answers them with our last SDP until someone takes them
  (:meth:`InDialog.own_reinvites`): the call's media (a new address or codec, hold), a bridge
  that relays them to the other party, or a transferred call's static answer.
- the bridge the call is in (:meth:`InDialog.join` / :meth:`InDialog.leave`), as the caller or as
  the callee;
- key presses sent as INFO: the call's media, if it has any (:meth:`InDialog.own_digits`).

Then each request goes where :func:`route` says: an INFO carrying a key press to the call's media
(``<Gather>``, ``<Record>``) while no bridge is up; any INFO inside a bridge to the other party;
other INFOs get 200. A REFER goes to the bridge (which hands it to ``calls/transfer.py``); without
one it is refused 403 with the reason. Anything else gets 405 with ``Allow``.

:class:`DialingCall` is the SIP call of an API call (``POST Calls``) before and after its INVITE
exists: the call's media and its ``InDialog`` are built on it first (our SDP offer goes in the
INVITE), and it forwards everything to the ``OutgoingCall`` once attached.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from typing import Final, Protocol

from rcmlrouter.calls.call_state import CallState
from rcmlrouter.sip.call import IncomingCall, IncomingRequest
from rcmlrouter.sip.endpoint import ALLOW
from rcmlrouter.sip.message import Header, SipResponse
from rcmlrouter.sip.outgoing import OutgoingCall
from rcmlrouter.sip.response import reason_header

PeerCall = IncomingCall | OutgoingCall
ReinviteOwner = Callable[[IncomingRequest], None]
DTMF_INFO_TYPES: Final = ("application/dtmf-relay", "application/dtmf")


class Route(enum.Enum):
    """Where one in-dialog request goes."""

    DIGIT = "digit"  # an INFO key press, to the call's media
    RELAY_INFO = "relay-info"  # an INFO inside a bridge, to the other party
    ACCEPT_INFO = "accept-info"  # an INFO nobody needs: 200
    REFER = "refer"  # to the bridge's transfer, or refused without a bridge
    NOT_ALLOWED = "not-allowed"  # 405 with Allow


def route(method: str, content_type: str, *, bridged: bool, has_media: bool) -> Route:
    """Where a request of ``method`` (``content_type``: its media type, lower case) goes."""
    if method == "INFO":
        if bridged:
            return Route.RELAY_INFO
        if has_media and content_type in DTMF_INFO_TYPES:
            return Route.DIGIT
        return Route.ACCEPT_INFO
    if method == "REFER":
        return Route.REFER
    return Route.NOT_ALLOWED


def refer_refusal(answered: bool) -> str:
    """Why a REFER outside an answered bridge is refused (403)."""
    why = "the call has no other party (no <Dial> bridge)" if answered else "not answered"
    return f"REFER refused: {why}"


def refuse(request: IncomingRequest, status: int, reason: str) -> None:
    request.respond(status, headers=[reason_header(status, reason)])


class DialogCall(Protocol):
    """The SIP call under an :class:`InDialog` (``IncomingCall``, ``OutgoingCall``, or an API
    call's ``DialingCall`` that forwards to the ``OutgoingCall`` once it exists)."""

    local_sdp: bytes | None

    def on_in_dialog_request(self, callback: Callable[[IncomingRequest], None]) -> None: ...

    def on_reinvite(self, callback: Callable[[IncomingRequest], None]) -> None: ...


class InDialogBridge(Protocol):
    """A ``<Dial>`` bridge as the in-dialog router uses it."""

    def relay_info(self, request: IncomingRequest, from_callee: bool) -> None: ...

    def refer(self, request: IncomingRequest, from_callee: bool) -> None: ...


class DigitTaker(Protocol):
    """The call's media as the router uses it (``CallMedia``)."""

    def take_digit(self, request: IncomingRequest, content_type: str) -> None: ...


class InDialog:
    """The one handler of a SIP call's in-dialog requests, and who owns them right now.

    ``state`` is the call the requests belong to (a dialed leg's requests belong to the call
    that dialed it: its number decides a REFER)."""

    __slots__ = ("_bridge", "_call", "_from_callee", "_media", "_registered", "_reinvites", "state")

    def __init__(self, call: DialogCall, state: CallState) -> None:
        self._call = call
        self.state = state
        self._media: DigitTaker | None = None
        self._bridge: InDialogBridge | None = None
        self._from_callee = False
        self._reinvites: ReinviteOwner | None = None
        self._registered = False  # our re-INVITE callback is on the SIP call
        call.on_in_dialog_request(self._on_request)

    def own_reinvites(self, owner: ReinviteOwner) -> None:
        """``owner`` answers the call's re-INVITEs from now on (it must respond once)."""
        if not self._registered:
            self._registered = True
            self._call.on_reinvite(self._on_reinvite)
        self._reinvites = owner

    def own_digits(self, media: DigitTaker) -> None:
        """Key presses sent as SIP INFO go to ``media`` while the call is in no bridge."""
        self._media = media

    def join(self, bridge: InDialogBridge, *, from_callee: bool) -> None:
        """The call is in ``bridge`` now (as its callee when ``from_callee``)."""
        self._bridge = bridge
        self._from_callee = from_callee

    def leave(self) -> None:
        """The call is in no bridge (a transferred call starts so; a Dial ended)."""
        self._bridge = None
        self._from_callee = False

    def hand_to(self, state: CallState) -> None:
        """The call's requests belong to the call ``state`` describes from now on, in no bridge
        (a transferred call takes over the leg that was a bridge's callee)."""
        self.state = state
        self.leave()

    def close(self) -> None:
        """The call's run is over: let go of the owners (they hold parts of the call that hold
        this object: a cycle only the cycle collector would free, as ``IncomingCall.finish``
        explains). A late request gets the answers of a call nobody owns."""
        self._media = self._bridge = self._reinvites = None
        self._from_callee = False

    def _on_reinvite(self, request: IncomingRequest) -> None:
        owner = self._reinvites
        if owner is not None:
            owner(request)
        else:  # after close: the SDP we have stays the answer
            sdp = self._call.local_sdp or b""
            request.respond(200, body=sdp, content_type="application/sdp")

    def _on_request(self, request: IncomingRequest) -> None:
        method = request.request.method
        content_type = ""
        if method == "INFO":
            content_type = _media_type(request)
        bridge, media = self._bridge, self._media
        where = route(method, content_type, bridged=bridge is not None, has_media=media is not None)
        if where is Route.DIGIT:
            assert media is not None
            media.take_digit(request, content_type)
        elif where is Route.RELAY_INFO:
            assert bridge is not None
            bridge.relay_info(request, self._from_callee)
        elif where is Route.ACCEPT_INFO:
            request.respond(200)
        elif where is Route.REFER and bridge is not None:
            bridge.refer(request, self._from_callee)
        elif where is Route.REFER:
            refuse(request, 403, refer_refusal(self.state.answered))
        else:
            request.respond(405, headers=[("Allow", ALLOW)])


class DialingCall:
    """An API call's SIP call: its own SDP and callbacks until the ``OutgoingCall`` exists
    (:meth:`attach`), then that call's. ``ended`` resolves when the attached call ends, or
    when the run gives up before dialling (:meth:`end`)."""

    def __init__(self) -> None:
        self.call: OutgoingCall | None = None
        self._local_sdp: bytes | None = None
        self._remote_sdp: bytes | None = None
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._in_dialog: ReinviteOwner | None = None
        self._reinvite: ReinviteOwner | None = None

    def attach(self, call: OutgoingCall) -> None:
        """The INVITE (each try of a trunk failover in turn, ``calls/trunk_chain.py``)."""
        self.call = call
        call.local_sdp = call.local_sdp or self._local_sdp
        if self._in_dialog is not None:
            call.on_in_dialog_request(self._in_dialog)
        if self._reinvite is not None:
            call.on_reinvite(self._reinvite)
        call.ended.add_done_callback(lambda ended: self._call_ended(call, ended.result()))

    def _call_ended(self, call: OutgoingCall, cause: str) -> None:
        # only an answered call ends it: an unanswered try may be followed by the next trunk's
        # on the same media; the run ends it when it gives up (end("released"))
        if call.answered:
            self.end(cause)

    def end(self, cause: str) -> None:
        if not self.ended.done():
            self.ended.set_result(cause)

    @property
    def local_sdp(self) -> bytes | None:
        return self.call.local_sdp if self.call is not None else self._local_sdp

    @local_sdp.setter
    def local_sdp(self, sdp: bytes | None) -> None:
        if self.call is not None:
            self.call.local_sdp = sdp
        self._local_sdp = sdp

    @property
    def remote_sdp(self) -> bytes | None:
        return self.call.remote_sdp if self.call is not None else self._remote_sdp

    @remote_sdp.setter
    def remote_sdp(self, sdp: bytes | None) -> None:
        if self.call is not None:
            self.call.remote_sdp = sdp
        self._remote_sdp = sdp

    @property
    def answered(self) -> bool:
        return self.call is not None and self.call.answered

    def on_in_dialog_request(self, callback: ReinviteOwner) -> None:
        self._in_dialog = callback
        if self.call is not None:
            self.call.on_in_dialog_request(callback)

    def on_reinvite(self, callback: ReinviteOwner) -> None:
        self._reinvite = callback
        if self.call is not None:
            self.call.on_reinvite(callback)

    def send_in_dialog(
        self, method: str, headers: list[Header], body: bytes = b""
    ) -> asyncio.Future[SipResponse | None]:
        if self.call is None:
            raise RuntimeError("the API call has no INVITE yet")
        return self.call.send_in_dialog(method, headers, body)


def _media_type(request: IncomingRequest) -> str:
    return (request.request.get("Content-Type") or "").split(";")[0].strip().lower()
