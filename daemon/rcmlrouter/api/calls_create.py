"""Placing a call through the API: ``POST Accounts/{AC}/Calls[.json]`` on both bases (issue 18).

The request is validated here (Twilio's error codes, below), then the call is written to the
store **queued**, with its request (``CallRecord.originate``) and its ``Idempotency-Key`` record
when one is given, in one transaction; only then is it answered (201 on the Twilio base, 200 on
the Restcomm base, the call resource in each base's shape) and handed to the ``WorkQueue`` the
composition root wired (``calls/originate.py``: paced, dialled, its document run). From the
answer on the call is durable: dialled after a crash (or by another node), never lost.

=====  ======================================================================================
Code   Refused with 400 when
=====  ======================================================================================
21201  ``To`` is missing
21211  ``To`` is neither a phone number nor a ``sip:``/``sips:`` URI
21214  ``To`` is a phone number and no ``[[trunks]]`` is configured
21213  ``From`` is missing
21212  ``From`` is not a valid caller ID (control characters, over 64 characters)
21210  ``From`` is not one of the account's numbers (``[outbound] caller_id = "account"``)
21205  none of ``Url``, ``Twiml``, ``ApplicationSid``; or ``Url`` / ``FallbackUrl`` invalid
32018  ``Twiml`` has over 4,000 characters
12100  ``Twiml`` is not a valid document
21218  ``ApplicationSid`` is not an application of the account with a voice URL
21609  ``StatusCallback`` / ``RecordingStatusCallback`` is not an absolute http(s) URL
21503  a ``*Method`` is not GET or POST
21208  ``Timeout`` is not a positive integer (over 600 is taken as 600, as Twilio does)
21206  ``SendDigits`` has characters other than ``0-9 * # w W``
20001  ``StatusCallbackEvent``, ``TimeLimit``, ``Record``: an invalid value; or a Twilio
       parameter rcmlrouter does not implement (``MachineDetection``, ``AsyncAmd``, ``Byoc``,
       ``CallToken``, …), named in the message
=====  ======================================================================================

429 (20429, ``Retry-After``) while ``[outbound] max_queued`` calls wait in this process.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from rcmlrouter.api import records
from rcmlrouter.api.auth import authorize
from rcmlrouter.api.context import ApiSettings, settings_of, store_of
from rcmlrouter.api.flavour import Flavour, flavour_of
from rcmlrouter.api.form import (
    MAX_TIME_LIMIT,
    MAX_TWIML,
    Params,
    Unsupported,
    check_url,
    invalid,
    refuse_unsupported,
)
from rcmlrouter.api.idempotency import IdempotencyKey, create_queued
from rcmlrouter.api.render import Resource, render
from rcmlrouter.errors import ApiError, NotFoundError, RcmlParseError
from rcmlrouter.media.track_recording import CHANNELS, TRACKS
from rcmlrouter.rcml.parse import parse_rcml
from rcmlrouter.routing.numbers import to_e164
from rcmlrouter.store.base import Store
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import Account, CallRecord, OriginateRequest

OUTBOUND_API = "outbound-api"
MAX_TIMEOUT = 600
DEFAULT_TIME_LIMIT = 14_400
# (account, From as sent) -> (valid until, the number): one store read less per call; a number
# released or moved to another account stays a valid caller ID for at most CALLER_ID_TTL s
CALLER_ID_TTL = 5.0
CALLER_ID_CACHE = 10_000
_CALLER_IDS: dict[tuple[str, str], tuple[float, str]] = {}
EVENTS: Final = ("initiated", "ringing", "answered", "completed")
_SIP_URI = re.compile(r"sips?:(?:[^@\s;]+@)?[A-Za-z0-9.\-\[\]:]+(?:;[^\s]*)?", re.I)
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # dialled as written: the trunk knows its numbers
_SEPARATORS = re.compile(r"[\s().-]")
_DIGITS = re.compile(r"[0-9*#wW]{1,256}")
_NOT_CALLER_ID = re.compile(r"[\s\x00-\x1f\x7f]")

# Twilio's Call parameters that rcmlrouter does not implement: 400 naming the parameter, never
# ignored. A value listed with the parameter means what rcmlrouter does anyway: accepted.
UNSUPPORTED: Final[Unsupported] = {
    "MachineDetection": ("answering machine detection is not supported", "none"),
    "MachineDetectionTimeout": ("answering machine detection is not supported", None),
    "MachineDetectionSpeechThreshold": ("answering machine detection is not supported", None),
    "MachineDetectionSpeechEndThreshold": ("answering machine detection is not supported", None),
    "MachineDetectionSilenceTimeout": ("answering machine detection is not supported", None),
    "AsyncAmd": ("answering machine detection is not supported", "false"),
    "AsyncAmdStatusCallback": ("answering machine detection is not supported", None),
    "AsyncAmdStatusCallbackMethod": ("answering machine detection is not supported", None),
    "Byoc": ("BYOC trunks are not supported; configure [[trunks]]", None),
    "CallToken": ("call tokens are not supported", None),
    "CallReason": ("branded calls are not supported", None),
    "CallerId": ("set From (the caller ID of a call to a sip: URI)", None),
    "Trim": ("recordings are kept as recorded", "do-not-trim"),
    "RecordingStatusCallbackEvent": ("only the completed event is sent", "completed"),
    "Transcribe": ("transcription is not supported", "false"),
    "TranscribeCallback": ("transcription is not supported", None),
    "ApplicationSidAsync": ("not supported", None),
}


async def handle_list_resource(request: web.Request) -> web.Response:
    """``Calls[.json]``: GET lists, POST places a call."""
    if request.method == "POST":
        return await create_call(request)
    return await records.handle_calls(request)


async def create_call(request: web.Request) -> web.Response:
    """POST: validate, store queued (with the Idempotency-Key record), answer, hand over."""
    _, account = await authorize(request)
    return await queue_call(request, account, await Params.from_body(request))


Respond = Callable[[web.Request, CallRecord], web.Response]


def respond_with_call(request: web.Request, record: CallRecord) -> web.Response:
    """The answer to ``POST Calls``: the call resource in the base's shape."""
    fields, collection = records.CALLS.shape(request)
    resource = Resource(collection[1], fields(request, record))
    return render(request, resource, flavour_of(request).create_status)


async def queue_call(
    request: web.Request,
    account: Account,
    params: Params,
    *,
    instructions: dict[str, Any] | None = None,
    respond: Respond = respond_with_call,
) -> web.Response:
    """Validate, store queued (with the Idempotency-Key record), answer, hand over; the call
    runs ``instructions`` when given (``read_instructions``' keys: a participant's dial-out),
    else the request's ``Url`` / ``Twiml`` / ``ApplicationSid``."""
    key = IdempotencyKey.of(request, account.sid, params)
    store = store_of(request)
    settings = settings_of(request)

    async def build() -> tuple[CallRecord, web.Response]:
        form = await request.post()
        events = [str(v) for v in form.getall("StatusCallbackEvent", []) if isinstance(v, str)]
        flavour = flavour_of(request)
        record = await read_call(params, events, account, store, settings, flavour, instructions)
        return record, respond(request, record)

    return await create_queued(key, store, settings.calls, "calls", build, store.create_call)


async def read_call(
    params: Params,
    events: list[str],
    account: Account,
    store: Store,
    settings: ApiSettings,
    flavour: Flavour,
    instructions: dict[str, Any] | None = None,
) -> CallRecord:
    """The queued call the parameters describe; ApiError 400 with Twilio's code if not."""
    refuse_unsupported(params, UNSUPPORTED, empty_is_absent=True)
    to = read_to(params, settings)
    from_ = await read_from(params, account, store, settings)
    if instructions is None:
        instructions = await read_instructions(params, account, store, settings)
    request = OriginateRequest(
        to=to,
        from_=from_,
        **instructions,
        **read_callbacks(params, events, settings),
        **read_setup(params),
        api_version=flavour.api_version,
    )
    return CallRecord(
        sid=new_sid("CA"),
        account_sid=account.sid,
        number_sid=None,
        from_=from_,
        to=to,
        direction=OUTBOUND_API,
        status="queued",
        match_kind=None,
        start_time=time.time(),
        answer_time=None,
        end_time=None,
        duration=None,
        sip_status=None,
        status_callback=request.status_callback,
        status_callback_method=request.status_callback_method,
        callback_params={"ApiVersion": flavour.api_version},
        originate=request,
    )


def read_to(params: Params, settings: ApiSettings) -> str:
    to = params.address("To")
    if not to:
        raise invalid("To", "a 'To' phone number or SIP URI is required", 21201)
    if to.lower().startswith(("sip:", "sips:")):
        if len(to) > 512 or not _SIP_URI.fullmatch(to):
            raise invalid("To", f"{to[:80]!r} is not a valid SIP URI", 21211)
        return to
    number = None
    if len(to) <= 32:
        plain = _SEPARATORS.sub("", to)
        number = plain if _E164.fullmatch(plain) else to_e164(to, settings.default_region)
    if number is None:
        raise invalid("To", f"{to[:80]!r} is neither a phone number nor a sip: URI", 21211)
    if settings.can_dial_numbers is False:
        raise invalid("To", f"{number} cannot be reached: no [[trunks]] is configured", 21214)
    return number


async def read_from(params: Params, account: Account, store: Store, settings: ApiSettings) -> str:
    """``From``: one of the account's numbers, or any caller ID when the operator allows."""
    value = params.address("From")
    if not value:
        raise invalid("From", "a 'From' phone number is required", 21213)
    if len(value) > 64 or _NOT_CALLER_ID.search(value):
        raise invalid("From", f"{value[:80]!r} is not a valid caller ID", 21212)
    if settings.caller_id == "any":
        return value
    known = _CALLER_IDS.get((account.sid, value))
    if known is not None and known[0] > time.monotonic():
        return known[1]
    number = await store.account_number(account.sid, value)
    if number is None and not value.startswith("+") and value.isdigit():
        number = await store.account_number(account.sid, "+" + value)
    if number is None:
        raise invalid("From", f"{value} is not a number of account {account.sid}", 21210)
    if len(_CALLER_IDS) >= CALLER_ID_CACHE:
        _CALLER_IDS.clear()
    _CALLER_IDS[(account.sid, value)] = (time.monotonic() + CALLER_ID_TTL, number.phone_number)
    return number.phone_number


async def read_instructions(
    params: Params, account: Account, store: Store, settings: ApiSettings
) -> dict[str, Any]:
    """``Url`` + ``Method``, ``Twiml`` or ``ApplicationSid`` (in that order of precedence, as
    Twilio); ``FallbackUrl`` + ``FallbackMethod``."""
    base = settings.public_base_url
    url = _url(params, "Url", base, 21205)
    twiml = params.raw("Twiml") or None
    app_sid = params.text("ApplicationSid") or None
    if twiml is not None and url is None:
        if len(twiml) > MAX_TWIML:
            raise invalid("Twiml", f"{len(twiml)} characters; at most {MAX_TWIML}", 32018)
        try:
            _check_twiml(twiml)
        except RcmlParseError as exc:
            raise invalid("Twiml", f"not a valid document: {exc}", 12100) from exc
    if app_sid is not None and url is None and twiml is None:
        await _check_application(store, account, app_sid)
    if url is None and twiml is None and app_sid is None:
        raise invalid("Url", "one of Url, Twiml or ApplicationSid is required", 21205)
    return {
        "url": url,
        "method": params.method("Method") or "POST",
        "twiml": twiml if url is None else None,
        "application_sid": app_sid if url is None and twiml is None else None,
        "fallback_url": _url(params, "FallbackUrl", base, 21205),
        "fallback_method": params.method("FallbackMethod") or "POST",
    }


@functools.lru_cache(maxsize=256)
def _check_twiml(twiml: str) -> None:
    """Raise RcmlParseError for a document that does not parse (a valid one is remembered:
    campaigns send one document many times)."""
    parse_rcml(twiml.encode())


async def _check_application(store: Store, account: Account, sid: str) -> None:
    try:
        app = await store.get_application(sid)
    except NotFoundError:
        app = None
    if app is None or app.account_sid != account.sid or not app.voice_url:
        raise invalid("ApplicationSid", f"{sid} is not an application with a voice URL", 21218)


def _url(params: Params, name: str, base: str | None, code: int) -> str | None:
    value = params.text(name)
    if not value:
        return None
    try:
        return check_url(name, value, base)
    except ApiError as exc:
        raise invalid(name, exc.message.split(": ", 1)[-1], code) from exc


def read_callbacks(params: Params, events: list[str], settings: ApiSettings) -> dict[str, Any]:
    """``StatusCallback*`` (events: repeated, or one space-separated value) and
    ``RecordingStatusCallback*``."""
    base = settings.public_base_url
    wanted: list[str] = []
    for value in events:
        for event in value.replace(",", " ").split():
            if event.lower() not in EVENTS:
                raise invalid("StatusCallbackEvent", f"{event!r} is not one of {', '.join(EVENTS)}")
            if event.lower() not in wanted:
                wanted.append(event.lower())
    return {
        "status_callback": _url(params, "StatusCallback", base, 21609),
        "status_callback_method": params.method("StatusCallbackMethod") or "POST",
        "status_callback_events": tuple(wanted) or ("completed",),
        "recording_status_callback": _url(params, "RecordingStatusCallback", base, 21609),
        "recording_status_callback_method": params.method("RecordingStatusCallbackMethod")
        or "POST",
    }


def _choice(params: Params, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.text(name) or default
    if value not in allowed:
        raise invalid(name, f"{value[:40]!r} is not one of {', '.join(allowed)}")
    return value


def read_setup(params: Params) -> dict[str, Any]:
    """``Timeout``, ``TimeLimit``, ``SendDigits``, ``SipAuthUsername`` / ``SipAuthPassword``,
    ``Record`` with ``RecordingTrack`` and ``RecordingChannels``."""
    timeout_text = params.text("Timeout")
    timeout = 60
    if timeout_text:
        if not (timeout_text.isascii() and timeout_text.isdigit()) or int(timeout_text) < 1:
            raise invalid("Timeout", f"{timeout_text[:40]!r} is not a positive integer", 21208)
        timeout = min(int(timeout_text[:8]), MAX_TIMEOUT)
    digits = params.text("SendDigits") or ""
    if digits and not _DIGITS.fullmatch(digits):
        raise invalid("SendDigits", f"{digits[:40]!r}: only 0-9, *, #, w and W", 21206)
    username = params.text("SipAuthUsername") or ""
    password = params.raw("SipAuthPassword") or ""
    if bool(username) != bool(password):
        raise invalid("SipAuthPassword", "give both SipAuthUsername and SipAuthPassword")
    return {
        "timeout": timeout,
        "time_limit": params.integer("TimeLimit", DEFAULT_TIME_LIMIT, 1, MAX_TIME_LIMIT),
        "record": params.boolean("Record") or False,
        "recording_track": _choice(params, "RecordingTrack", TRACKS, "both"),
        "recording_channels": _choice(params, "RecordingChannels", CHANNELS, "mono"),
        "send_digits": digits,
        "sip_auth_username": username,
        "sip_auth_password": password,
    }
