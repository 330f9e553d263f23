"""Twilio 2010-04-01 shapes of the resources (the Restcomm ones live next to their handlers).

Keys are Twilio's; a field rcmlrouter has no data for carries the value that is true here
(``trunk_sid`` null: no Elastic SIP trunks; ``emergency_status`` "Inactive": no emergency
addresses; ``address_requirements`` "none"; ``price`` null: nothing is billed).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rcmlrouter.api.flavour import TWILIO, api_base
from rcmlrouter.api.number_params import national_format
from rcmlrouter.api.render import rfc2822
from rcmlrouter.sms_format import num_segments
from rcmlrouter.store.records import (
    Account,
    Application,
    CallRecord,
    IncomingNumber,
    InventoryEntry,
    MessageRecord,
)

# Where a number came from: the built-in inventory (the provider behind purchases) or a SIP
# number (isSIP=true). Twilio says "twilio" or "hosted"; neither would be true here.
ORIGIN_INVENTORY, ORIGIN_SIP = "rcmlrouter", "sip"
UNSENT = ("queued", "sending")  # a message the API queued, not sent yet: no date_sent
ACCOUNT_SUBRESOURCES = {
    "available_phone_numbers": "AvailablePhoneNumbers",
    "incoming_phone_numbers": "IncomingPhoneNumbers",
    "applications": "Applications",
    "calls": "Calls",
    "messages": "Messages",
    "notifications": "Notifications",
}


def _account_uri(request: web.Request, account_sid: str) -> str:
    return f"{api_base(request)}/Accounts/{account_sid}"


def twilio_number_fields(request: web.Request, n: IncomingNumber) -> dict[str, Any]:
    caps = n.capabilities
    return {
        "account_sid": n.account_sid,
        "address_requirements": "none",
        "address_sid": None,
        "api_version": n.api_version,
        "beta": n.beta,
        "capabilities": {"voice": caps.voice, "sms": caps.sms, "mms": caps.mms, "fax": caps.fax},
        "date_created": rfc2822(n.date_created),
        "date_updated": rfc2822(n.date_updated),
        "emergency_status": "Inactive",
        "emergency_address_sid": None,
        "emergency_address_status": "unregistered",
        "friendly_name": n.friendly_name,
        "identity_sid": None,
        "origin": ORIGIN_SIP if n.is_sip else ORIGIN_INVENTORY,
        "phone_number": n.phone_number,
        "sid": n.sid,
        "sms_application_sid": n.sms_application_sid,
        "sms_fallback_method": n.sms_fallback_method,
        "sms_fallback_url": n.sms_fallback_url,
        "sms_method": n.sms_method,
        "sms_url": n.sms_url,
        "status_callback": n.status_callback,
        "status_callback_method": n.status_callback_method,
        "trunk_sid": None,
        "uri": f"{_account_uri(request, n.account_sid)}/IncomingPhoneNumbers/{n.sid}.json",
        "voice_receive_mode": "voice",
        "voice_application_sid": n.voice_application_sid,
        "voice_caller_id_lookup": n.voice_caller_id_lookup,
        "voice_fallback_method": n.voice_fallback_method,
        "voice_fallback_url": n.voice_fallback_url,
        "voice_method": n.voice_method,
        "voice_url": n.voice_url,
        "bundle_sid": None,
        "status": "in-use",
        "type": n.number_type,
        "subresource_uris": {},  # no AssignedAddOns here
    }


def twilio_account_fields(request: web.Request, a: Account) -> dict[str, Any]:
    base = _account_uri(request, a.sid)
    return {
        "auth_token": a.auth_token,
        "date_created": rfc2822(a.date_created),
        "date_updated": rfc2822(a.date_updated),
        "friendly_name": a.friendly_name,
        "owner_account_sid": a.parent_sid or a.sid,
        "sid": a.sid,
        "status": a.status,
        "subresource_uris": {
            key: f"{base}/{segment}.json" for key, segment in ACCOUNT_SUBRESOURCES.items()
        },
        "type": "Full",
        "uri": f"{base}.json",
    }


def twilio_application_fields(request: web.Request, a: Application) -> dict[str, Any]:
    """Twilio's Application; the fields rcmlrouter applications lack are their defaults."""
    return {
        "account_sid": a.account_sid,
        "api_version": TWILIO.api_version,
        "date_created": rfc2822(a.date_created),
        "date_updated": rfc2822(a.date_updated),
        "friendly_name": a.friendly_name,
        "message_status_callback": None,
        "sid": a.sid,
        "sms_fallback_method": "POST",
        "sms_fallback_url": None,
        "sms_method": a.sms_method,
        "sms_status_callback": None,
        "sms_url": a.sms_url,
        "status_callback": None,
        "status_callback_method": "POST",
        "uri": f"{_account_uri(request, a.account_sid)}/Applications/{a.sid}.json",
        "voice_caller_id_lookup": False,
        "voice_fallback_method": "POST",
        "voice_fallback_url": None,
        "voice_method": a.voice_method,
        "voice_url": a.voice_url,
        "public_application_connect_enabled": False,
    }


def _formatted(number: str) -> str:
    return national_format(number) if number.startswith("+") else number


def twilio_call_fields(request: web.Request, c: CallRecord) -> dict[str, Any]:
    uri = f"{_account_uri(request, c.account_sid)}/Calls/{c.sid}"
    params = c.callback_params
    return {
        "sid": c.sid,
        "date_created": rfc2822(c.start_time),
        "date_updated": rfc2822(c.end_time or c.answer_time or c.start_time),
        "parent_call_sid": c.parent_call_sid,
        "account_sid": c.account_sid,
        "to": c.to,
        "to_formatted": _formatted(c.to),
        "from": c.from_,
        "from_formatted": _formatted(c.from_),
        "phone_number_sid": c.number_sid,
        "status": c.status,
        "start_time": rfc2822(c.answer_time or c.start_time),
        "end_time": rfc2822(c.end_time),
        "duration": None if c.duration is None else str(round(c.duration)),
        "price": None,
        "price_unit": "USD",
        "direction": c.direction,
        "answered_by": None,
        "api_version": params.get("ApiVersion", TWILIO.api_version),
        "forwarded_from": params.get("ForwardedFrom"),
        "group_sid": None,
        "caller_name": params.get("CallerName"),
        "queue_time": "0",
        "trunk_sid": None,
        "uri": f"{uri}.json",
        "subresource_uris": {"notifications": f"{uri}/Notifications.json"},
    }


def twilio_message_fields(request: web.Request, m: MessageRecord) -> dict[str, Any]:
    return {
        "account_sid": m.account_sid,
        "api_version": TWILIO.api_version,
        "body": m.body,
        "date_created": rfc2822(m.date_created),
        "date_sent": None if m.status in UNSENT else rfc2822(m.date_created),
        "date_updated": rfc2822(m.date_created),
        "direction": m.direction,
        "error_code": m.error_code,
        "error_message": None,
        "from": m.from_,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": str(num_segments(m.body)),
        "price": None,
        "price_unit": "USD",
        "sid": m.sid,
        "status": m.status,
        "subresource_uris": {},
        "to": m.to,
        "uri": f"{_account_uri(request, m.account_sid)}/Messages/{m.sid}.json",
    }


def twilio_available_fields(entry: InventoryEntry) -> dict[str, Any]:
    """An AvailablePhoneNumber; its capabilities say ``SMS``/``MMS`` in capitals, as Twilio's
    do (IncomingPhoneNumber capabilities are lower case)."""
    caps = entry.capabilities
    return {
        "friendly_name": national_format(entry.phone_number),
        "phone_number": entry.phone_number,
        "lata": entry.lata,
        "locality": None,
        "rate_center": entry.rate_center,
        "latitude": None,
        "longitude": None,
        "region": entry.region,
        "postal_code": entry.postal_code,
        "iso_country": entry.iso_country,
        "address_requirements": "none",
        "beta": entry.beta,
        "capabilities": {"voice": caps.voice, "SMS": caps.sms, "MMS": caps.mms, "fax": caps.fax},
    }
