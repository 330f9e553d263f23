"""One call placed by ``<Dial>``: where a noun goes, its INVITE, its record and its callbacks.

A ``<Sip>`` noun is dialed as written (its ``username``/``password`` answer a 401/407); a
``<Number>`` goes to the configured trunk (``[dial] default_trunk`` or the first ``[[trunks]]``)
as ``sip:NUMBER@TRUNK`` formatted ``e164`` or ``national``, with the trunk's credentials. The
leg is a call record of its own (``Direction`` ``outbound-dial``, ``ParentCallSid`` the caller)
and reports the events its noun asked for (``statusCallbackEvent``: initiated, ringing,
answered, completed) to its ``statusCallback`` through the durable outbox, numbered by
``SequenceNumber`` (0, 1, 2… per leg).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers

from rcmlrouter.calls.context import CallContext
from rcmlrouter.config import Config, TrunkConfig
from rcmlrouter.dates import rfc2822
from rcmlrouter.errors import SipError
from rcmlrouter.rcml.model import DialNumber, DialTarget
from rcmlrouter.sip.message import SipResponse
from rcmlrouter.sip.outgoing import OutgoingCall
from rcmlrouter.sip.uri import SipUri, format_host, parse_uri
from rcmlrouter.store.base import API_VERSION, CallRecord, OutboxEvent, new_sid

BUSY = frozenset({486, 600, 603})
NO_ANSWER = frozenset({408, 480})
# Twilio's CallStatus for each statusCallbackEvent (the final one is the leg's outcome).
EVENT_STATUS = {"initiated": "initiated", "ringing": "ringing", "answered": "in-progress"}


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
        return _trunk_address(target.number, trunk, config.routing.default_region)
    credentials = None
    if target.username and target.password:
        credentials = (target.username, target.password)
    uri = parse_uri(target.uri)  # SipParseError (400) for a URI that cannot be dialed
    return DialAddress(target.uri, uri.user or target.uri, credentials)


def _trunk_address(number: str, trunk: TrunkConfig, region: str) -> DialAddress:
    base = parse_uri(trunk.uri)
    user = format_number(number, trunk.number_format, region)
    params = dict(base.params)
    if trunk.transport == "tcp":
        params["transport"] = "tcp"
    uri = SipUri(base.scheme, user, base.host, base.port, params)
    credentials = (trunk.username, trunk.password) if trunk.username else None
    return DialAddress(str(uri), user, credentials)


def format_number(number: str, number_format: str, region: str) -> str:
    """``number`` as the trunk wants it (``e164``: +14155550100, ``national``: 4155550100);
    short codes and extensions that are no phone number go as written."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return number
    if not phonenumbers.is_possible_number(parsed):
        return number
    if number_format == "national":
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        return "".join(ch for ch in national if ch.isdigit())
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


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


class OutboundLeg:
    """One noun of a ``<Dial>``: starts its INVITE and keeps its record and callbacks."""

    def __init__(self, target: DialTarget, parent: CallContext, caller_id: str) -> None:
        self.target = target
        self.parent = parent
        self.sid = new_sid("CA")
        self.from_ = caller_id
        self.to = ""
        self.call: OutgoingCall | None = None
        self.start_time = time.time()
        self.answer_time: float | None = None
        self.end_time: float | None = None
        self.status = "queued"
        self.error: SipError | None = None
        self._sequence = 0
        self._rang = False

    # -- the call ----------------------------------------------------------------------------

    def start(
        self, sdp: bytes | None, ring_timeout: float, progress: Callable[[SipResponse], None]
    ) -> None:
        """Send the INVITE; a target that cannot be dialed ends the leg ``failed`` at once."""
        services = self.parent.services
        try:
            address = dial_address(self.target, services.config)
            self.to = address.to
            endpoint = services.endpoint
            if endpoint is None:
                raise SipError("SIP is not running", sip_status=503)
            self.call = endpoint.start_call(
                address.uri,
                from_uri=self._from_uri(),
                sdp=sdp,
                credentials=address.credentials,
                ring_timeout=ring_timeout,
            )
        except SipError as exc:
            self.error = exc
            self.to = self.to or _target_text(self.target)
            self.parent.notify(13227, f"<Dial> {_target_text(self.target)}: {exc.reason}")
            return
        self.call.on_progress(lambda response: self._on_progress(response, progress))
        self.status = "initiated"
        self._commit("initiated")

    def _from_uri(self) -> str:
        config = self.parent.services.config
        host = config.sip.advertise or parse_uri(self.parent.call.request.uri).host
        return str(SipUri("sip", self.from_ or "anonymous", format_host(host)))

    def _on_progress(self, response: SipResponse, relay: Callable[[SipResponse], None]) -> None:
        if not self._rang and response.status in (180, 183):
            self._rang = True
            self.status = "ringing"
            self._commit("ringing")
        relay(response)

    def on_answered(self) -> None:
        self.answer_time = time.time()
        self.status = "in-progress"
        self._commit("answered")

    def finish(self) -> None:
        """Close the record with the leg's outcome and its ``completed`` callback."""
        if self.end_time is not None:
            return
        self.end_time = time.time()
        call = self.call
        cause = call.ended.result() if call is not None and call.ended.done() else None
        self.status = leg_status(call, cause)
        self._commit("completed")

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
    def duration(self) -> int:
        if self.answer_time is None:
            return 0
        return int((self.end_time or time.time()) - self.answer_time)

    # -- record and callbacks ----------------------------------------------------------------

    def _commit(self, event: str) -> None:
        events = self._events(event)
        self.parent.services.outbox.commit(call=self._record(), events=events)

    def _events(self, event: str) -> list[OutboxEvent]:
        target = self.target
        if not target.status_callback or event not in target.status_callback_event:
            return []
        params = self.callback_params()
        params["CallStatus"] = EVENT_STATUS.get(event, self.status)
        params["Timestamp"] = rfc2822(time.time())
        params["SequenceNumber"] = str(self._sequence)
        params["CallbackSource"] = "call-progress-events"
        if event == "completed":
            params["CallDuration"] = str(self.duration)
            if self.sip_status is not None:
                params["SipResponseCode"] = str(self.sip_status)
        if self.call is not None:
            params["SipCallId"] = self.call.call_id
        outbox = self.parent.services.outbox
        account = self.parent.account_sid
        method = target.status_callback_method
        item = outbox.event(
            self.sid, account, self._sequence, target.status_callback, method, params
        )
        self._sequence += 1
        return [item]

    def callback_params(self) -> dict[str, str]:
        return {
            "CallSid": self.sid,
            "ParentCallSid": self.parent.call_sid,
            "AccountSid": self.parent.account_sid,
            "From": self.from_,
            "To": self.to,
            "Direction": "outbound-dial",
            "ApiVersion": API_VERSION,
            "CallTimestamp": rfc2822(self.start_time),
        }

    def _record(self) -> CallRecord:
        target = self.target
        wants_final = bool(target.status_callback) and "completed" in target.status_callback_event
        ended = self.end_time is not None
        return CallRecord(
            sid=self.sid,
            account_sid=self.parent.account_sid,
            number_sid=None,
            from_=self.from_,
            to=self.to,
            direction="outbound-dial",
            status=self.status,
            match_kind=None,
            start_time=self.start_time,
            answer_time=self.answer_time,
            end_time=self.end_time,
            duration=float(self.duration) if ended else None,
            sip_status=self.sip_status,
            next_sequence=self._sequence,
            status_callback=target.status_callback if wants_final else None,
            status_callback_method=target.status_callback_method,
            callback_params=self.callback_params() if wants_final else {},
            parent_call_sid=self.parent.call_sid,
        )


def _target_text(target: DialTarget) -> str:
    return target.number if isinstance(target, DialNumber) else target.uri
