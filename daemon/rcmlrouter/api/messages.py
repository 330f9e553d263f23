"""Sending a message through the API: ``POST Accounts/{AC}/Messages`` (Twilio) and
``POST Accounts/{AC}/SMS/Messages`` (Restcomm), on both bases (issue 18).

The request is validated here (Twilio's error codes, below), then the message is written to the
store **queued**, with its ``Idempotency-Key`` record when one is given, in one transaction; only
then is it answered (201 on the Twilio base, 200 on the Restcomm base, each in its own shape) and
handed to the sender through the ``WorkQueue`` the composition root wired
(``messaging/queued.py``: queued → sending → sent / failed, status callbacks through the outbox).
From the answer on the message is durable: sent after a crash, or failed with its callback.

=====  ======================================================================================
Code   Refused with 400 when
=====  ======================================================================================
21604  ``To`` is missing
21211  ``To`` is neither a phone number nor a ``sip:`` URI
21612  ``To`` is a phone number and no ``[sms] gateway`` is configured
21603  ``From`` is missing
21212  ``From`` cannot be a number (spaces, control characters, over 64 characters)
21606  ``From`` is not one of the account's numbers
21661  ``From`` is the account's number but not SMS-capable
21266  ``To`` and ``From`` are the same
21602  ``Body`` is missing or empty
21617  ``Body`` has over 1,600 characters
21609  ``StatusCallback`` is not an absolute http(s) URL
21503  ``StatusCallbackMethod`` is not GET or POST
20001  a Twilio parameter rcmlrouter does not implement (``MediaUrl``, …), named
=====  ======================================================================================

429 (20429, ``Retry-After``) while the sender's queue is full.
"""

from __future__ import annotations

import re
import time
from typing import Final

from aiohttp import web

from rcmlrouter.api import records
from rcmlrouter.api.auth import authorize
from rcmlrouter.api.context import ApiSettings, settings_of, store_of
from rcmlrouter.api.flavour import Flavour, flavour_of
from rcmlrouter.api.form import Params, Unsupported, check_url, invalid, refuse_unsupported
from rcmlrouter.api.idempotency import IdempotencyKey, create_queued
from rcmlrouter.api.render import Resource, render
from rcmlrouter.errors import ApiError
from rcmlrouter.sms_format import MAX_BODY_CHARACTERS, is_phone_number
from rcmlrouter.store.base import Store
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import Account, IncomingNumber, MessageRecord

OUTBOUND_API = "outbound-api"
QUEUED = "queued"
MAX_ADDRESS = 256
# sip:[user@]host[:port][;params]: the forms the sender can reach (it parses the URI again)
_SIP_URI = re.compile(r"sip:(?:[^@\s;]+@)?[A-Za-z0-9.\-]+(?::[0-9]{1,5})?(?:;[^\s]*)?", re.I)
_NOT_A_NUMBER = re.compile(r"[\s\x00-\x1f\x7f]")

# Twilio's Message parameters that rcmlrouter does not implement: 400 naming the parameter,
# never ignored. A value listed with the parameter means what rcmlrouter does anyway: accepted.
UNSUPPORTED: Final[Unsupported] = {
    "MediaUrl": ("MMS is not supported", None),
    "SendAsMms": ("MMS is not supported", "false"),
    "MessagingServiceSid": ("Messaging Services are not supported", None),
    "ContentSid": ("Content templates are not supported", None),
    "ContentVariables": ("Content templates are not supported", None),
    "ApplicationSid": ("send StatusCallback instead of an application", None),
    "SendAt": ("scheduled messages are not supported", None),
    "ScheduleType": ("scheduled messages are not supported", None),
    "ValidityPeriod": ("messages are sent at once; a queued one expires after 10 h", None),
    "MaxPrice": ("nothing is priced", None),
    "Attempt": ("not supported", None),
    "ProvideFeedback": ("message feedback is not supported", "false"),
    "ForceDelivery": ("not supported", "false"),
    "SmartEncoded": ("bodies are sent as written", "false"),
    "ShortenUrls": ("links are sent as written", "false"),
    "PersistentAction": ("not supported", None),
    "TrafficType": ("not supported", None),
    "MessageIntent": ("not supported", None),
    "FallbackFrom": ("not supported", None),
    "RiskCheck": ("there is no risk check here", "disable"),
    "ContentRetention": ("bodies are kept", "retain"),
    "AddressRetention": ("addresses are kept", "retain"),
}


async def handle_list_resource(request: web.Request) -> web.Response:
    """``Messages[.json]`` and ``SMS/Messages[.json]``: GET lists, POST sends."""
    if request.method == "POST":
        return await create_message(request)
    return await records.handle_messages(request)


async def create_message(request: web.Request) -> web.Response:
    """POST: validate, store queued (with the Idempotency-Key record), answer, hand over."""
    _, account = await authorize(request)
    params = await Params.from_body(request)
    key = IdempotencyKey.of(request, account.sid, params)
    store = store_of(request)
    settings = settings_of(request)

    async def build() -> tuple[MessageRecord, web.Response]:
        flavour = flavour_of(request)
        record = await read_message(params, account, store, settings, flavour)
        fields, collection = records.MESSAGES.shape(request)
        resource = Resource(collection[1], fields(request, record))
        return record, render(request, resource, flavour.create_status)

    return await create_queued(
        key, store, settings.messages, "messages", build, store.create_message
    )


async def read_message(
    params: Params, account: Account, store: Store, settings: ApiSettings, flavour: Flavour
) -> MessageRecord:
    """The queued message the parameters describe; ApiError 400 with Twilio's code if not."""
    refuse_unsupported(params, UNSUPPORTED)
    to = read_to(params, settings.sms_gateway)
    number = await read_from(params, account, store)
    if number.phone_number == to:
        raise invalid("To", "'To' and 'From' numbers cannot be the same", 21266)
    body = read_body(params)
    callback = params.text("StatusCallback") or None
    if callback is not None:
        try:
            callback = check_url("StatusCallback", callback, settings.public_base_url)
        except ApiError as exc:
            raise invalid("StatusCallback", exc.message.split(": ", 1)[-1], 21609) from exc
    return MessageRecord(
        sid=new_sid("SM"),
        account_sid=account.sid,
        number_sid=number.sid,
        from_=number.phone_number,
        to=to,
        body=body,
        direction=OUTBOUND_API,
        status=QUEUED,
        date_created=time.time(),
        status_callback=callback,
        status_callback_method=params.method("StatusCallbackMethod") or "POST",
        api_version=flavour.api_version,
    )


def read_to(params: Params, gateway: str | None) -> str:
    to = params.address("To")
    if not to:
        raise invalid("To", "a 'To' phone number is required", 21604)
    if len(to) > MAX_ADDRESS:
        raise invalid("To", "is not a valid phone number or SIP URI", 21211)
    if is_phone_number(to):
        if gateway == "":
            raise invalid("To", f"{to} is not reachable: no [sms] gateway is configured", 21612)
        return to
    if _SIP_URI.fullmatch(to):
        return to
    raise invalid("To", f"{to!r} is neither a phone number nor a sip: URI", 21211)


async def read_from(params: Params, account: Account, store: Store) -> IncomingNumber:
    """``From``: one of the account's numbers, SMS-capable."""
    value = params.address("From")
    if not value:
        raise invalid("From", "a 'From' phone number is required", 21603)
    value = value.replace(" ", "+")  # mms:+1234 sent unencoded; a number never has a space
    if len(value) > 64 or _NOT_A_NUMBER.search(value):
        raise invalid("From", f"{value!r} is not a valid number", 21212)
    number = await store.account_number(account.sid, value)
    if number is None and is_phone_number(value) and not value.startswith("+"):
        number = await store.account_number(account.sid, "+" + value)
    if number is None:
        raise invalid(
            "From", f"{value} is not a message-capable number of account {account.sid}", 21606
        )
    if not number.capabilities.sms:
        raise invalid("From", f"{value} is not SMS-capable", 21661)
    return number


def read_body(params: Params) -> str:
    body = params.raw("Body")
    if not body:
        raise invalid("Body", "a message body is required", 21602)
    if len(body) > MAX_BODY_CHARACTERS:
        raise invalid(
            "Body",
            f"the body has {len(body)} characters; at most {MAX_BODY_CHARACTERS} are sent",
            21617,
        )
    return body
