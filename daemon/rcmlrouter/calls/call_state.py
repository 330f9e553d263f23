"""One call: the facts read once from its INVITE, and what is learnt about it as it goes.

:func:`read_facts` is the only place of the call wing that reads the SIP request: who calls
(From user and display name), what was dialed (``routing.dialed_from``: the To or the
Request-URI user, normalised), which hosts name the destination and the caller organization,
who forwarded the call (``Diversion`` / ``History-Info``) and the ``X-`` headers that become
``SipHeader_X-…`` webhook parameters. Everything after (routing, webhooks, records, ``<Dial>``
legs) works from :class:`CallFacts`.

:class:`CallState` is the rest of what is known about one call: the number it reached, when it
was answered, how it ended, the URLs its documents came from. It holds values only; the modules
that act on a call read and write it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rcmlrouter.dates import rfc2822
from rcmlrouter.errors import SipParseError
from rcmlrouter.rcml.fallback import FetchLog
from rcmlrouter.routing.numbers import normalize_dialed
from rcmlrouter.routing.table import RouteMatch
from rcmlrouter.sip.message import SipRequest
from rcmlrouter.sip.uri import parse_name_addr, parse_uri
from rcmlrouter.store.records import API_VERSION, IncomingNumber

Params = Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What an INVITE says about its call, read once (:func:`read_facts`)."""

    from_user: str
    caller_display: str
    """The From display name (``CallerName`` when the number asks for caller-id lookup)."""
    dialed: str
    """The normalised dialed string (SPEC §2.1)."""
    destination_hosts: tuple[str | None, ...]
    """The Request-URI host, then the To host: the first known organization domain wins."""
    caller_host: str | None
    request_host: str
    """The Request-URI host: the From host of ``<Dial>`` legs when ``sip.advertise`` is unset."""
    forwarded_from: str
    sip_headers: Params
    """The ``X-`` headers as webhook parameters: ``("SipHeader_X-Name", value)``."""
    unreadable: str | None = None
    """Why the Request-URI does not parse, if it does not: routing refuses the call (400)."""


def read_facts(request: SipRequest, dialed_from: str) -> CallFacts:
    """The facts of the call ``request`` (an INVITE) starts; ``dialed_from`` is ``"to"`` or
    ``"request-uri"`` (config ``routing.dialed_from``)."""
    from_addr, to_uri = request.from_addr, request.to_addr.uri
    try:
        ruri = parse_uri(request.uri)
    except SipParseError as exc:
        return CallFacts(
            from_addr.uri.user or "", from_addr.display or "", "", (None, to_uri.host),
            from_addr.uri.host, "", "", (), unreadable=exc.reason,
        )  # fmt: skip
    source = ruri if dialed_from == "request-uri" else to_uri
    return CallFacts(
        from_user=from_addr.uri.user or "",
        caller_display=from_addr.display or "",
        dialed=normalize_dialed(source.user or ""),
        destination_hosts=(ruri.host, to_uri.host),
        caller_host=from_addr.uri.host,
        request_host=ruri.host,
        forwarded_from=forwarded_from(request),
        sip_headers=sip_header_params(request),
    )


def sip_header_params(request: SipRequest) -> Params:
    """``SipHeader_X-Name`` for every ``X-`` header, in the request's order."""
    return tuple(
        (f"SipHeader_{name}", value) for name, value in request.headers if name[:2] in ("X-", "x-")
    )


def forwarded_from(request: SipRequest) -> str:
    """Who forwarded the call: the user of the first ``Diversion`` entry, else of the
    ``History-Info`` entry before the last one (the target that was retargeted)."""
    diversion = request.get("Diversion")
    if diversion:
        return _entry_user(diversion.split(",")[0])
    entries = [e for v in request.get_all("History-Info") for e in v.split(",") if e.strip()]
    return _entry_user(entries[-2]) if len(entries) >= 2 else ""


def _entry_user(value: str) -> str:
    try:
        return parse_name_addr(value).uri.user or ""
    except SipParseError:
        return ""


@dataclass(slots=True)
class CallState:
    """Everything known about one call, built up as it progresses (values only)."""

    call_sid: str
    start_time: float
    facts: CallFacts
    account_sid: str
    """The admin account until routing finds the number (then the number's account)."""
    match: RouteMatch | None = None
    number: IncomingNumber | None = None
    auth_token: str = ""
    caller_name: str = ""
    answer_time: float | None = None
    outcome: str | None = None
    end_cause: str | None = None
    sip_status: int | None = None
    error_code: int | None = None
    fetches: FetchLog = field(default_factory=FetchLog)
    outbound_call_sid: str = ""  # the <Dial> leg, once one exists (OutboundCallSid)
    transfer_params: dict[str, str] = field(default_factory=dict)  # ReferTarget, Transferor…
    _base_params: dict[str, str] | None = field(default=None, init=False, repr=False)

    @property
    def answered(self) -> bool:
        return self.answer_time is not None

    def voice_params(self, status: str) -> dict[str, str]:
        """SPEC §3.1 voice parameters with ``CallStatus`` = ``status`` (after routing)."""
        params = dict(self.base_params())
        params["CallStatus"] = status
        if self.outbound_call_sid:
            params["OutboundCallSid"] = self.outbound_call_sid
        params.update(self.transfer_params)
        return params

    def base_params(self) -> dict[str, str]:
        """The parameters that do not change during the call (built once, after routing)."""
        if self._base_params is None:
            facts = self.facts
            params = {
                "CallSid": self.call_sid,
                "AccountSid": self.account_sid,
                "From": facts.from_user,
                "To": facts.dialed,
                "ApiVersion": self.number.api_version if self.number else API_VERSION,
                "Direction": "inbound",
                "CallTimestamp": rfc2822(self.start_time),
            }
            if self.caller_name:
                params["CallerName"] = self.caller_name
            if facts.forwarded_from:
                params["ForwardedFrom"] = facts.forwarded_from
            params.update(facts.sip_headers)
            self._base_params = params
        return self._base_params

    def transferred(self, params: Mapping[str, str]) -> CallState:
        """The state of the call a transfer leaves running on this call's dialed leg: this
        call's facts, number, account and token (so its ``<Dial>`` legs stay children of this
        call), its own progress from here (the OutboundCallSid of its own ``<Dial>``, its
        transfer parameters, its fetches): what it does never changes this call's record or
        callbacks."""
        return dataclasses.replace(
            self, outbound_call_sid="", transfer_params=dict(params), fetches=FetchLog()
        )

    def current_status(self) -> str:
        return "in-progress" if self.answer_time is not None else "ringing"

    def final_call_status(self) -> str:
        """The CallStatus the call ends with (SPEC §4)."""
        if self.answer_time is not None:
            return "completed"
        if self.end_cause in ("cancel", "canceled", "api-hangup"):
            return "canceled"  # the caller's CANCEL, or the API's Status=canceled / completed
        if self.sip_status == 486:
            return "busy"
        if self.sip_status == 603:
            return "no-answer"
        return "failed"
