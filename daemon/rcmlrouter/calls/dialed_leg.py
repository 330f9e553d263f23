"""One call placed by ``<Dial>``: where a noun goes and its INVITE.

A ``<Sip>`` noun is dialed as written (its ``username``/``password`` answer a 401/407); a
``<Number>`` goes to the configured trunk (``[dial] default_trunk`` or the first ``[[trunks]]``)
as ``sip:NUMBER@TRUNK`` formatted ``e164`` or ``national``, with the trunk's credentials, and
on to the trunks its ``failover`` chain names when a trunk cannot take the call
(:mod:`rcmlrouter.calls.trunk_chain`: :attr:`DialedLeg.call` is the current try, the record
and the action report the last). The leg is a call record of its own (``Direction``
``outbound-dial``, ``ParentCallSid`` the caller) and reports the events its noun asked for
(``statusCallbackEvent``: initiated, ringing, answered, completed) to its ``statusCallback``
through :class:`~rcmlrouter.calls.call_events.LegEvents`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from rcmlrouter.callbacks import CallbackOutbox
from rcmlrouter.calls.call_events import LegEvents
from rcmlrouter.calls.call_state import CallState
from rcmlrouter.calls.trunk_chain import TrunkChain
from rcmlrouter.config import Config, TrunkConfig
from rcmlrouter.errors import SipError
from rcmlrouter.rcml.model import DialNumber, DialTarget
from rcmlrouter.routing.numbers import format_for_trunk
from rcmlrouter.sip.message import SipResponse
from rcmlrouter.sip.outgoing import OutgoingCall
from rcmlrouter.sip.uri import SipUri, format_host, parse_uri
from rcmlrouter.store.ids import new_sid

BUSY = frozenset({486, 600, 603})
NO_ANSWER = frozenset({408, 480})
ERROR_NOT_DIALED = 13227  # notification: a noun that could not be dialed


class Dialer(Protocol):
    """Places INVITEs (the SIP endpoint's ``start_call``)."""

    def start_call(
        self,
        target_uri: str,
        *,
        from_uri: str,
        sdp: bytes | None = None,
        credentials: tuple[str, str] | None = None,
        ring_timeout: float = ...,
    ) -> OutgoingCall: ...


@dataclass(frozen=True, slots=True)
class DialAddress:
    """Where one noun is sent: the Request-URI, the number or URI recorded as ``To``, and the
    digest credentials for a challenge."""

    uri: str
    to: str
    credentials: tuple[str, str] | None = None


def dial_address(target: DialTarget, config: Config) -> DialAddress:
    """The address of ``target``; raises :class:`SipError` when it cannot be dialed."""
    if isinstance(target, DialNumber):
        trunk = config.trunk()
        if trunk is None:
            raise SipError("no outbound trunk is configured for numbers", sip_status=503)
        return trunk_address(target.number, trunk, config.routing.default_region)
    credentials = None
    if target.username and target.password:
        credentials = (target.username, target.password)
    uri = parse_uri(target.uri)  # SipParseError (400) for a URI that cannot be dialed
    return DialAddress(target.uri, uri.user or target.uri, credentials)


def leg_trunks(target: DialTarget, config: Config) -> tuple[TrunkConfig, ...]:
    """The trunks a noun is tried on in turn: a number's trunk and its failover chain; a URI
    has none (one try, as written)."""
    if not isinstance(target, DialNumber):
        return ()
    trunk = config.trunk()
    if trunk is None:
        raise SipError("no outbound trunk is configured for numbers", sip_status=503)
    return config.trunk_chain(trunk)


def trunk_address(number: str, trunk: TrunkConfig, region: str) -> DialAddress:
    base = parse_uri(trunk.uri)
    user = format_for_trunk(number, trunk.number_format, region)
    params = dict(base.params)
    if trunk.transport == "tcp":
        params["transport"] = "tcp"
    uri = SipUri(base.scheme, user, base.host, base.port, params)
    credentials = (trunk.username, trunk.password) if trunk.username else None
    return DialAddress(str(uri), user, credentials)


def leg_status(call: OutgoingCall | None, cause: str | None) -> str:
    """The CallStatus a finished leg ends with (Twilio's names)."""
    if call is None:
        return "failed"
    if call.answered:
        return "completed"
    if cause == "cancel":
        return "canceled"
    status = call.result.result().status if call.result.done() else 0
    if cause == "timeout" or status in NO_ANSWER:
        return "no-answer"
    return "busy" if status in BUSY else "failed"


class DialedLeg:
    """One noun of a ``<Dial>``: starts its INVITE; its record and callbacks go through
    :attr:`events` at each step (initiated, ringing, answered, completed)."""

    def __init__(
        self, target: DialTarget, parent: CallState, caller_id: str, outbox: CallbackOutbox
    ) -> None:
        self.target = target
        self.parent = parent
        self.sid = new_sid("CA")
        self.from_ = caller_id
        self.to = ""
        self.call: OutgoingCall | None = None  # the current try (trunk failover: the last)
        self.chain: TrunkChain | None = None
        self.start_time = time.time()
        self.answer_time: float | None = None
        self.end_time: float | None = None
        self.status = "queued"
        self.error: SipError | None = None
        self.events = LegEvents(
            outbox, target, account_sid=parent.account_sid, parent_call_sid=parent.call_sid
        )
        self._rang = False

    # -- the call ----------------------------------------------------------------------------

    def start(
        self,
        dialer: Dialer | None,
        config: Config,
        notify: Callable[[int, str], None],
        sdp: bytes | None,
        ring_timeout: float,
        progress: Callable[[SipResponse], None],
    ) -> None:
        """Send the INVITE; a target that cannot be dialed ends the leg ``failed`` at once
        (``notify`` records why, on the dialing call)."""
        try:
            trunks = leg_trunks(self.target, config)
            if dialer is None:
                raise SipError("SIP is not running", sip_status=503)
            chain = TrunkChain(
                trunks,
                lambda trunk, timeout: self._try(dialer, config, sdp, trunk, timeout),
                ring_timeout,
                on_try=self._on_try,
                progress=lambda response: self._on_progress(response, progress),
            )
            chain.start()
            self.chain = chain
        except SipError as exc:
            self.error = exc
            self.to = self.to or _target_text(self.target)
            notify(ERROR_NOT_DIALED, f"<Dial> {_target_text(self.target)}: {exc.reason}")
            return
        self.status = "initiated"
        self.events.commit(self, "initiated")

    def _try(
        self,
        dialer: Dialer,
        config: Config,
        sdp: bytes | None,
        trunk: TrunkConfig | None,
        ring_timeout: float,
    ) -> OutgoingCall:
        """One INVITE: to ``trunk`` for a number, else to the noun's URI."""
        if trunk is not None and isinstance(self.target, DialNumber):
            address = trunk_address(self.target.number, trunk, config.routing.default_region)
        else:
            address = dial_address(self.target, config)
        self.to = self.to or address.to  # the first try's: the record says it from initiated
        return dialer.start_call(
            address.uri,
            from_uri=self._from_uri(config),
            sdp=sdp,
            credentials=address.credentials,
            ring_timeout=ring_timeout,
        )

    def _on_try(self, call: OutgoingCall) -> None:
        self.call = call

    @property
    def settled(self) -> asyncio.Future[OutgoingCall] | asyncio.Future[SipResponse] | None:
        """Resolves once the leg has its final response (after any trunk failover)."""
        if self.chain is not None:
            return self.chain.result
        return self.call.result if self.call is not None else None

    def cancel(self, reason: str | None = None) -> None:
        """Stop ringing: no further trunk, the current try cancelled."""
        if self.chain is not None:
            self.chain.cancel(reason)
        elif self.call is not None:
            self.call.cancel(reason)

    def stop_failover(self) -> None:
        """No further trunk (the current try goes on)."""
        if self.chain is not None:
            self.chain.stop()

    def _from_uri(self, config: Config) -> str:
        # the host the caller's INVITE was sent to; an API call has none: ours
        host = config.sip.advertise or self.parent.facts.request_host or config.sip.own_host()
        return str(SipUri("sip", self.from_ or "anonymous", format_host(host)))

    def _on_progress(self, response: SipResponse, relay: Callable[[SipResponse], None]) -> None:
        if not self._rang and response.status in (180, 183):
            self._rang = True
            self.status = "ringing"
            self.events.commit(self, "ringing")
        relay(response)

    def on_answered(self) -> None:
        self.answer_time = time.time()
        self.status = "in-progress"
        self.events.commit(self, "answered")

    def switch_callbacks(self, url: str, method: str) -> asyncio.Future[None]:
        """The leg's remaining events go to ``url`` (live call control of a transferred call:
        the leg's ``CallbackSwitch``)."""
        if self.end_time is not None:  # its final event is sent already
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        return self.events.switch_callbacks(self, url, method)

    def finish(self) -> asyncio.Future[None] | None:
        """Close the record with the leg's outcome and its ``completed`` callback; the commit's
        future (None when the leg was closed already)."""
        if self.end_time is not None:
            return None
        self.end_time = time.time()
        call = self.call
        cause = call.ended.result() if call is not None and call.ended.done() else None
        self.status = leg_status(call, cause)
        return self.events.commit(self, "completed")

    # -- what the record and the action say ----------------------------------------------------

    @property
    def response(self) -> SipResponse | None:
        """The final response (the 2xx of an answered leg)."""
        call = self.call
        return call.result.result() if call is not None and call.result.done() else None

    @property
    def sip_status(self) -> int | None:
        response = self.response
        if response is not None:
            return response.status
        return self.error.sip_status if self.error is not None else None

    @property
    def sip_call_id(self) -> str | None:
        return self.call.call_id if self.call is not None else None

    @property
    def duration(self) -> int:
        if self.answer_time is None:
            return 0
        return int((self.end_time or time.time()) - self.answer_time)


def _target_text(target: DialTarget) -> str:
    return target.number if isinstance(target, DialNumber) else target.uri
