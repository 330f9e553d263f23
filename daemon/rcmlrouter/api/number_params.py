"""IncomingPhoneNumber parameters -> field changes, and the resource's wire form (SPEC §1.2-1.4)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import phonenumbers
from aiohttp import web

from rcmlrouter.api.form import Params, invalid
from rcmlrouter.api.render import Collection, Resource, api_base, rfc2822
from rcmlrouter.errors import NotFoundError
from rcmlrouter.store.base import Store
from rcmlrouter.store.records import Capabilities, IncomingNumber

URL_PARAMS = {
    "VoiceUrl": "voice_url",
    "VoiceFallbackUrl": "voice_fallback_url",
    "StatusCallback": "status_callback",
    "SmsUrl": "sms_url",
    "SmsFallbackUrl": "sms_fallback_url",
    "ReferUrl": "refer_url",
}
METHOD_PARAMS = {
    "VoiceMethod": "voice_method",
    "VoiceFallbackMethod": "voice_fallback_method",
    "StatusCallbackMethod": "status_callback_method",
    "SmsMethod": "sms_method",
    "SmsFallbackMethod": "sms_fallback_method",
    "ReferMethod": "refer_method",
}
APPLICATION_PARAMS = {
    "VoiceApplicationSid": "voice_application_sid",
    "SmsApplicationSid": "sms_application_sid",
    "ReferApplicationSid": "refer_application_sid",
}
CAPABILITY_PARAMS = {"VoiceCapable": "voice", "SmsCapable": "sms", "MmsCapable": "mms"}
CAPABILITY_PARAMS["FaxCapable"] = "fax"


def number_changes(params: Params, base_url: str | None) -> dict[str, Any]:
    """Validated field changes for every parameter present ("" clears / resets to default).

    ``friendly_name`` maps to None when cleared: the caller substitutes the default.
    """
    changes: dict[str, Any] = {}
    if params.has("FriendlyName"):
        changes["friendly_name"] = params.friendly_name() or None
    for name, field in URL_PARAMS.items():
        url = params.url(name, base_url)
        if url is not None:
            changes[field] = url or None
    for name, field in METHOD_PARAMS.items():
        method = params.method(name)
        if method is not None:
            changes[field] = method or "POST"
    for name, field in APPLICATION_PARAMS.items():
        sid = params.text(name)
        if sid is not None:
            changes[field] = sid or None
    lookup = params.boolean("VoiceCallerIdLookup")
    if lookup is not None:
        changes["voice_caller_id_lookup"] = lookup
    api_version = params.text("ApiVersion")
    if api_version:
        changes["api_version"] = api_version
    flags = {field: params.boolean(name) for name, field in CAPABILITY_PARAMS.items()}
    if any(flag is not None for flag in flags.values()):
        changes["capabilities"] = {k: v for k, v in flags.items() if v is not None}
    return changes


def apply_changes(number: IncomingNumber, changes: dict[str, Any], now: float) -> IncomingNumber:
    """``number`` with ``changes`` applied and ``date_updated`` set to ``now``."""
    updates = dict(changes)
    caps = updates.pop("capabilities", None)
    if caps:
        updates["capabilities"] = replace(number.capabilities, **caps)
    if "friendly_name" in updates and not updates["friendly_name"]:
        updates["friendly_name"] = default_friendly_name(number.phone_number, number.is_sip)
    return replace(number, **updates, date_updated=now)


def default_friendly_name(phone_number: str, is_sip: bool) -> str:
    return phone_number if is_sip else national_format(phone_number)


def parse_provider_number(raw: str) -> str:
    """The E.164 form of a provider number (US national forms accepted); else 21421."""
    try:
        parsed = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException as exc:
        raise invalid("PhoneNumber", f"{raw!r} is not a phone number", 21421) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise invalid("PhoneNumber", f"{raw!r} is not a valid phone number", 21421)
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


@functools.lru_cache(maxsize=65_536)
def national_format(e164: str) -> str:
    """``(510) 555-5555`` for ``+15105555555``; the input when it does not parse (cached: every
    Twilio-shaped call and number renders two of them, and phonenumbers takes ~50 µs each)."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL))


async def check_applications(store: Store, account_sid: str, number: IncomingNumber) -> None:
    """Every ``*ApplicationSid`` must name an application of the number's account (20001)."""
    for name, field in APPLICATION_PARAMS.items():
        sid = getattr(number, field)
        if sid is None:
            continue
        try:
            app = await store.get_application(sid)
        except NotFoundError as exc:
            raise invalid(name, f"no application {sid}") from exc
        if app.account_sid != account_sid:
            raise invalid(name, f"application {sid} belongs to another account")


def _capabilities(caps: Capabilities) -> dict[str, bool]:
    return {
        "voice_capable": caps.voice,
        "sms_capable": caps.sms,
        "mms_capable": caps.mms,
        "fax_capable": caps.fax,
    }


def number_uri(request: web.Request, number: IncomingNumber) -> str:
    return (
        f"{api_base(request)}/Accounts/{number.account_sid}/IncomingPhoneNumbers/{number.sid}.json"
    )


def number_fields(request: web.Request, n: IncomingNumber) -> dict[str, Any]:
    """The resource's keys, in SPEC §1.2 order."""
    return {
        "sid": n.sid,
        "account_sid": n.account_sid,
        "friendly_name": n.friendly_name,
        "phone_number": n.phone_number,
        "voice_url": n.voice_url,
        "voice_method": n.voice_method,
        "voice_fallback_url": n.voice_fallback_url,
        "voice_fallback_method": n.voice_fallback_method,
        "status_callback": n.status_callback,
        "status_callback_method": n.status_callback_method,
        "voice_caller_id_lookup": n.voice_caller_id_lookup,
        "voice_application_sid": n.voice_application_sid,
        "voice_application_name": n.voice_application_name,
        "date_created": rfc2822(n.date_created),
        "date_updated": rfc2822(n.date_updated),
        "sms_url": n.sms_url,
        "sms_method": n.sms_method,
        "sms_fallback_url": n.sms_fallback_url,
        "sms_fallback_method": n.sms_fallback_method,
        "sms_application_sid": n.sms_application_sid,
        "sms_application_name": n.sms_application_name,
        "refer_url": n.refer_url,
        "refer_method": n.refer_method,
        "refer_application_sid": n.refer_application_sid,
        "refer_application_name": n.refer_application_name,
        "capabilities": _capabilities(n.capabilities),
        "api_version": n.api_version,
        "uri": number_uri(request, n),
    }


NumberFields = Callable[[web.Request, IncomingNumber], dict[str, Any]]


def number_resource(
    request: web.Request, number: IncomingNumber, fields: NumberFields = number_fields
) -> Resource:
    return Resource("IncomingPhoneNumber", fields(request, number))


def number_collection(
    request: web.Request,
    meta: dict[str, Any],
    numbers: list[IncomingNumber],
    fields: NumberFields = number_fields,
    json_key: str = "incomingPhoneNumbers",
) -> Collection:
    items = [fields(request, n) for n in numbers]
    return Collection("IncomingPhoneNumbers", "IncomingPhoneNumber", json_key, meta, items)
