"""What the API offers, as data: every resource (its path under a base, its tag, its path
parameters) and every operation on it (method, query and form parameters, success status),
exactly as :func:`rcmlrouter.api.app.add_routes` registers them. :mod:`rcmlrouter.api.openapi`
renders it as the OpenAPI document; a test compares the two with the router."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rcmlrouter.api.flavour import RESTCOMM, TWILIO
from rcmlrouter.api.number_params import (
    APPLICATION_PARAMS,
    CAPABILITY_PARAMS,
    METHOD_PARAMS,
    URL_PARAMS,
)

BASES = (*RESTCOMM.bases, *TWILIO.bases)
ACC = "/Accounts/{account_sid}"
PAGING = ("Page", "PageSize")
NUMBER_FIELDS = (
    "FriendlyName", "PhoneNumber", "AreaCode", "isSIP", "VoiceCallerIdLookup", "ApiVersion",
    "AccountSid", *URL_PARAMS, *METHOD_PARAMS, *APPLICATION_PARAMS, *CAPABILITY_PARAMS,
)  # fmt: skip
APPLICATION_FIELDS = (
    "FriendlyName", "VoiceUrl", "VoiceMethod", "SmsUrl", "SmsMethod", "ReferUrl", "ReferMethod",
)  # fmt: skip
MESSAGE_FILTERS = ("To", "From", "DateSent", "DateSent<", "DateSent>", *PAGING)
MESSAGE_FORM = ("To", "From", "Body", "StatusCallback", "StatusCallbackMethod")
CONFERENCE_FILTERS = ("Status", "FriendlyName", "DateCreated", "DateCreated<", "DateCreated>")
PARTICIPANT_FORM = ("Muted", "Hold", "HoldUrl", "HoldMethod")
STREAM_FORM = (
    "Url", "Name", "Track", "StatusCallback", "StatusCallbackMethod", "Parameter1.Name",
    "Parameter1.Value",
)  # fmt: skip
CALL_FILTERS = ("To", "From", "StartTime", "StartTime<", "StartTime>", *PAGING)
AVAILABLE_FILTERS = (
    "AreaCode", "Contains", "InRegion", "InPostalCode", "SmsEnabled", "VoiceEnabled",
    "MmsEnabled", "FaxEnabled", "Beta", "PageSize",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Op:
    """One method on one path: its parameters and its success response."""

    method: str
    summary: str
    query: tuple[str, ...] = ()
    form: tuple[str, ...] = ()
    ok: int = 200
    create: bool = False  # Twilio's base answers 201
    media: tuple[str, ...] = ("application/json", "application/xml")
    idempotent: bool = False  # takes an Idempotency-Key header (api/idempotency.py)


@dataclass(frozen=True, slots=True)
class Resource:
    path: str  # under a base
    tag: str
    ops: tuple[Op, ...]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # path parameters

    @property
    def suffixes(self) -> tuple[str, ...]:
        return ("",) if self.path.endswith("}") else ("", ".json", ".xml")


SID = {"type": "string", "maxLength": 64}
ACCOUNT = {"account_sid": {"type": "string", "pattern": r"^AC[0-9a-f]{32}(\.json|\.xml)?$"}}


def get_op(summary: str, query: tuple[str, ...] = PAGING) -> Op:
    return Op("GET", summary, query=query)


def read_write_ops(noun: str, form: tuple[str, ...]) -> tuple[Op, ...]:
    return (
        Op("GET", f"Read one {noun}"),
        Op("POST", f"Update the {noun}", form=form),
        Op("PUT", f"Update the {noun}", form=form),
        Op("DELETE", f"Delete the {noun}", ok=204, media=()),
    )


def with_sid(extra: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    return {**ACCOUNT, "sid": extra or SID}


def record_resources(
    path: str,
    tag: str,
    noun: str,
    query: tuple[str, ...],
    create: Op | None = None,
    update: Op | None = None,
) -> list[Resource]:
    listing = get_op(f"List the account's {noun}s", query)
    ops = (listing,) if create is None else (listing, create)
    read = get_op(f"Read one {noun}", ())
    instance_ops = (read,) if update is None else (read, update)
    return [
        Resource(f"{ACC}/{path}", tag, ops, ACCOUNT),
        Resource(f"{ACC}/{path}/{{sid}}", tag, instance_ops, with_sid()),
    ]


SEND_MESSAGE = Op(
    "POST",
    "Send a message: queued, then sending, sent or failed (StatusCallback)",
    form=MESSAGE_FORM,
    create=True,
    idempotent=True,
)


CALL_FORM = (
    "To", "From", "Url", "Method", "Twiml", "ApplicationSid", "FallbackUrl", "FallbackMethod",
    "StatusCallback", "StatusCallbackMethod", "StatusCallbackEvent", "Timeout", "TimeLimit",
    "SendDigits", "SipAuthUsername", "SipAuthPassword", "Record", "RecordingTrack",
    "RecordingChannels", "RecordingStatusCallback", "RecordingStatusCallbackMethod",
)  # fmt: skip
PLACE_CALL = Op(
    "POST",
    "Place a call: queued, paced, then initiated, ringing, in-progress, completed (or busy, "
    "no-answer, failed, canceled), StatusCallbackEvent",
    form=CALL_FORM,
    create=True,
    idempotent=True,
)
UPDATE_CALL = Op(
    "POST",
    "Live call control: redirect (Url, Method or Twiml), hang up (Status=completed), cancel an "
    "unanswered call (Status=canceled), move the status callbacks (StatusCallback)",
    form=(
        "Url", "Method", "Twiml", "FallbackUrl", "FallbackMethod", "Status", "StatusCallback",
        "StatusCallbackMethod",
    ),
)  # fmt: skip


ADD_PARTICIPANT = Op(
    "POST",
    "Add a participant by dialling out: an outbound API call that joins the conference when "
    "answered (status queued)",
    form=(
        *CALL_FORM, "Muted", "Beep", "StartConferenceOnEnter", "EndConferenceOnExit", "WaitUrl",
        "WaitMethod", "MaxParticipants", "Label", "Coaching", "CallSidToCoach",
        "ConferenceStatusCallback", "ConferenceStatusCallbackMethod",
        "ConferenceStatusCallbackEvent",
    ),
    create=True,
    idempotent=True,
)  # fmt: skip


CONFERENCE_RESOURCES = (
    Resource(
        f"{ACC}/Conferences",
        "Conferences",
        (get_op("List conferences (newest first)", (*CONFERENCE_FILTERS, *PAGING)),),
        ACCOUNT,
    ),
    Resource(
        f"{ACC}/Conferences/{{sid}}",
        "Conferences",
        (
            get_op("Read one conference", ()),
            Op("POST", "End the conference: Status=completed", form=("Status",)),
        ),
        with_sid(),
    ),
    Resource(
        f"{ACC}/Conferences/{{conference_sid}}/Participants",
        "Conferences",
        (
            get_op("A conference's participants (joining order)", ("Muted", "Hold", *PAGING)),
            ADD_PARTICIPANT,
        ),
        {**ACCOUNT, "conference_sid": SID},
    ),
    Resource(
        f"{ACC}/Conferences/{{conference_sid}}/Recordings",
        "Conferences",
        (get_op("The conference's recording (record-from-start)"),),
        {**ACCOUNT, "conference_sid": SID},
    ),
    Resource(
        f"{ACC}/Conferences/{{conference_sid}}/Participants/{{sid}}",
        "Conferences",
        (
            get_op("Read one participant", ()),
            Op("POST", "Mute, hold (HoldUrl) or resume a participant", form=PARTICIPANT_FORM),
            Op("DELETE", "Take the participant out: its call goes on", ok=204, media=()),
        ),
        {**ACCOUNT, "conference_sid": SID, "sid": SID},
    ),
)
ACCOUNT_FORM = ("FriendlyName", "Status", "AuthToken")
RESOURCES: tuple[Resource, ...] = (
    Resource(
        "/Accounts",
        "Accounts",
        (
            get_op("The caller and its sub-accounts", ("FriendlyName", "Status", *PAGING)),
            Op(
                "POST",
                "Create a sub-account",
                form=("FriendlyName", "EmailAddress", "Password"),
                create=True,
            ),
        ),
    ),
    Resource(
        ACC,
        "Accounts",
        (
            get_op("Read an account", ()),
            Op("POST", "Update: FriendlyName, Status, AuthToken=rotate", form=ACCOUNT_FORM),
            Op("PUT", "Update: FriendlyName, Status, AuthToken=rotate", form=ACCOUNT_FORM),
        ),
        ACCOUNT,
    ),
    Resource(
        f"{ACC}/IncomingPhoneNumbers",
        "IncomingPhoneNumbers",
        (
            get_op("List numbers", ("PhoneNumber", "FriendlyName", "Beta", "PageToken", *PAGING)),
            Op("POST", "Buy a number or provision a SIP number", form=NUMBER_FIELDS, create=True),
        ),
        ACCOUNT,
    ),
    Resource(
        f"{ACC}/IncomingPhoneNumbers/{{sid}}",
        "IncomingPhoneNumbers",
        (
            Op(
                "GET",
                "Read a number (PN…) or list Local / TollFree / Mobile numbers",
                query=("PhoneNumber", "FriendlyName", "Beta", "PageToken", *PAGING),
            ),
            Op(
                "POST",
                "Update a number, or create on Local / TollFree / Mobile",
                form=NUMBER_FIELDS,
            ),
            Op("PUT", "Update a number", form=NUMBER_FIELDS),
            Op("DELETE", "Release a number to the inventory", ok=204, media=()),
        ),
        with_sid(),
    ),
    Resource(
        f"{ACC}/AvailablePhoneNumbers/{{country}}/{{kind}}",
        "AvailablePhoneNumbers",
        (get_op("Search the number inventory", AVAILABLE_FILTERS),),
        {
            **ACCOUNT,
            "country": {"type": "string", "maxLength": 8},
            "kind": {"type": "string", "maxLength": 16},
        },
    ),
    Resource(
        f"{ACC}/Applications",
        "Applications",
        (
            get_op("List applications"),
            Op("POST", "Create an application", form=APPLICATION_FIELDS, create=True),
        ),
        ACCOUNT,
    ),
    Resource(
        f"{ACC}/Applications/{{sid}}",
        "Applications",
        read_write_ops("application", APPLICATION_FIELDS),
        with_sid(),
    ),
    *record_resources("Calls", "Calls", "call", CALL_FILTERS, PLACE_CALL, update=UPDATE_CALL),
    *record_resources("SMS/Messages", "Messages", "message", MESSAGE_FILTERS, SEND_MESSAGE),
    *record_resources("Messages", "Messages", "message", MESSAGE_FILTERS, SEND_MESSAGE),
    Resource(
        f"{ACC}/Recordings",
        "Recordings",
        (get_op("List recordings (newest first)", ("CallSid", *PAGING)),),
        ACCOUNT,
    ),
    Resource(
        f"{ACC}/Recordings/{{sid}}",
        "Recordings",
        (
            Op(
                "GET",
                "A recording's metadata, or its audio with the .wav suffix",
                media=("application/json", "application/xml", "audio/wav"),
            ),
        ),
        with_sid(),
    ),
    Resource(
        f"{ACC}/Calls/{{call_sid}}/Recordings",
        "Recordings",
        (get_op("One call's recordings"),),
        {**ACCOUNT, "call_sid": SID},
    ),
    *record_resources("Notifications", "Notifications", "notification", PAGING),
    *CONFERENCE_RESOURCES,
    Resource(
        f"{ACC}/Calls/{{call_sid}}/Streams",
        "Streams",
        (Op("POST", "Start a media stream on a running call", form=STREAM_FORM, create=True),),
        {**ACCOUNT, "call_sid": SID},
    ),
    Resource(
        f"{ACC}/Calls/{{call_sid}}/Streams/{{sid}}",
        "Streams",
        (Op("POST", "Stop a media stream (Status=stopped); sid or name", form=("Status",)),),
        {**ACCOUNT, "call_sid": SID, "sid": SID},
    ),
)

# Served by the daemon next to the API (app.py), not under a base.
OPERATIONS_PATHS: dict[str, dict[str, Any]] = {
    "/openapi.json": {
        "get": {
            "tags": ["Operations"],
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}
            },
        }
    },
    "/health": {
        "get": {
            "tags": ["Operations"],
            "summary": "200 while serving, 503 while draining",
            "security": [],
            "responses": {
                "200": {"description": "serving", "content": {"application/json": {}}},
                "503": {"description": "draining", "content": {"application/json": {}}},
            },
        }
    },
    "/metrics": {
        "get": {
            "tags": ["Operations"],
            "summary": "Prometheus text exposition",
            "security": [],
            "responses": {"200": {"description": "metrics", "content": {"text/plain": {}}}},
        }
    },
    "/demos/{name}": {
        "get": {
            "tags": ["Operations"],
            "summary": "The shipped demo RCML documents and audio",
            "security": [],
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {"description": "a demo file", "content": {"application/xml": {}}},
                "404": {"description": "no such demo"},
            },
        }
    },
}
