"""The OpenAPI 3.1 document of the whole API, built from this Python description at start-up
and served at ``GET /openapi.json`` (no credentials needed).

Every resource is listed under each base (``/restcomm/2012-04-24``, ``/2012-04-24``,
``/2010-04-01``) and, where the route has them, with its ``.json`` / ``.xml`` suffixes, exactly as
:func:`rcmlrouter.api.app.add_routes` registers them; path parameter names are the router's. A
test compares the document with the router. Bodies are form-encoded; responses are JSON (``.json``
or ``Accept: application/json``) or XML, errors an :data:`ERROR` body.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from rcmlrouter import __version__
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
BOOL = {"type": "string", "enum": ["true", "false"]}
METHOD = {"type": "string", "enum": ["GET", "POST", "get", "post"]}
URL = {"type": "string", "format": "uri", "maxLength": 2048}
NUMBER_FIELDS = (
    "FriendlyName", "PhoneNumber", "AreaCode", "isSIP", "VoiceCallerIdLookup", "ApiVersion",
    "AccountSid", *URL_PARAMS, *METHOD_PARAMS, *APPLICATION_PARAMS, *CAPABILITY_PARAMS,
)  # fmt: skip
APPLICATION_FIELDS = (
    "FriendlyName", "VoiceUrl", "VoiceMethod", "SmsUrl", "SmsMethod", "ReferUrl", "ReferMethod",
)  # fmt: skip
MESSAGE_FILTERS = ("To", "From", "DateSent", "DateSent<", "DateSent>", *PAGING)
MESSAGE_FORM = ("To", "From", "Body", "StatusCallback", "StatusCallbackMethod")
IDEMPOTENCY_KEY = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"}
CALL_FILTERS = ("To", "From", "StartTime", "StartTime<", "StartTime>", *PAGING)
AVAILABLE_FILTERS = (
    "AreaCode", "Contains", "InRegion", "InPostalCode", "SmsEnabled", "VoiceEnabled",
    "MmsEnabled", "FaxEnabled", "Beta", "PageSize",
)  # fmt: skip

ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message", "more_info", "status"],
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "more_info": {"type": "string"},
        "status": {"type": "integer"},
    },
}


def _schema_of(name: str) -> dict[str, Any]:
    """The schema of a query or form parameter, by its name."""
    if name in ("Page", "PageSize"):
        return {"type": "integer", "minimum": 0 if name == "Page" else 1}
    if name in ("isSIP", "Beta", "VoiceCallerIdLookup") or name.endswith(("Enabled", "Capable")):
        return BOOL
    if name.endswith("Method"):
        return METHOD
    if name.endswith("Url") or name == "StatusCallback":
        return URL
    if name == "Body":
        return {"type": "string", "minLength": 1, "maxLength": 1600}
    if name.startswith(("DateSent", "StartTime")):
        return {"type": "string", "format": "date"}
    if name == "Status":
        return {"type": "string", "enum": ["active", "suspended", "closed"]}
    if name == "AuthToken":
        return {"type": "string", "enum": ["rotate"]}
    return {"type": "string", "maxLength": 300}


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


def _get(summary: str, query: tuple[str, ...] = PAGING) -> Op:
    return Op("GET", summary, query=query)


def _rw(noun: str, form: tuple[str, ...]) -> tuple[Op, ...]:
    return (
        Op("GET", f"Read one {noun}"),
        Op("POST", f"Update the {noun}", form=form),
        Op("PUT", f"Update the {noun}", form=form),
        Op("DELETE", f"Delete the {noun}", ok=204, media=()),
    )


def _with_sid(extra: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    return {**ACCOUNT, "sid": extra or SID}


def _records(
    path: str, tag: str, noun: str, query: tuple[str, ...], create: Op | None = None
) -> list[Resource]:
    listing = _get(f"List the account's {noun}s", query)
    ops = (listing,) if create is None else (listing, create)
    return [
        Resource(f"{ACC}/{path}", tag, ops, ACCOUNT),
        Resource(f"{ACC}/{path}/{{sid}}", tag, (_get(f"Read one {noun}", ()),), _with_sid()),
    ]


SEND_MESSAGE = Op(
    "POST",
    "Send a message: queued, then sending, sent or failed (StatusCallback)",
    form=MESSAGE_FORM,
    create=True,
    idempotent=True,
)


ACCOUNT_FORM = ("FriendlyName", "Status", "AuthToken")
RESOURCES: tuple[Resource, ...] = (
    Resource(
        "/Accounts",
        "Accounts",
        (
            _get("The caller and its sub-accounts", ("FriendlyName", "Status", *PAGING)),
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
            _get("Read an account", ()),
            Op("POST", "Update: FriendlyName, Status, AuthToken=rotate", form=ACCOUNT_FORM),
            Op("PUT", "Update: FriendlyName, Status, AuthToken=rotate", form=ACCOUNT_FORM),
        ),
        ACCOUNT,
    ),
    Resource(
        f"{ACC}/IncomingPhoneNumbers",
        "IncomingPhoneNumbers",
        (
            _get("List numbers", ("PhoneNumber", "FriendlyName", "Beta", "PageToken", *PAGING)),
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
        _with_sid(),
    ),
    Resource(
        f"{ACC}/AvailablePhoneNumbers/{{country}}/{{kind}}",
        "AvailablePhoneNumbers",
        (_get("Search the number inventory", AVAILABLE_FILTERS),),
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
            _get("List applications"),
            Op("POST", "Create an application", form=APPLICATION_FIELDS, create=True),
        ),
        ACCOUNT,
    ),
    Resource(
        f"{ACC}/Applications/{{sid}}",
        "Applications",
        _rw("application", APPLICATION_FIELDS),
        _with_sid(),
    ),
    *_records("Calls", "Calls", "call", CALL_FILTERS),
    *_records("SMS/Messages", "Messages", "message", MESSAGE_FILTERS, SEND_MESSAGE),
    *_records("Messages", "Messages", "message", MESSAGE_FILTERS, SEND_MESSAGE),
    Resource(
        f"{ACC}/Recordings",
        "Recordings",
        (_get("List recordings (newest first)", ("CallSid", *PAGING)),),
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
        _with_sid(),
    ),
    Resource(
        f"{ACC}/Calls/{{call_sid}}/Recordings",
        "Recordings",
        (_get("One call's recordings"),),
        {**ACCOUNT, "call_sid": SID},
    ),
    *_records("Notifications", "Notifications", "notification", PAGING),
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


def _responses(op: Op, twilio: bool) -> dict[str, Any]:
    status = 201 if op.create and twilio else op.ok
    ok: dict[str, Any] = {"description": op.summary}
    if op.media:
        ok["content"] = {media: {} for media in op.media}
    error = {"$ref": "#/components/responses/Error"}
    out: dict[str, Any] = {str(status): ok}
    for code in ("400", "401", "403", "404", "405", "429", "503"):
        out[code] = error
    if op.idempotent:  # the key was used with a different request
        out["422"] = error
    return out


def _operation(resource: Resource, op: Op, base: str) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": schema}
        for name, schema in resource.params.items()
    ]
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": _schema_of(name)}
        for name in op.query
    ]
    if op.idempotent:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": IDEMPOTENCY_KEY,
            }
        )
    operation: dict[str, Any] = {
        "tags": [resource.tag],
        "summary": op.summary,
        "parameters": parameters,
        "responses": _responses(op, base == TWILIO.bases[0]),
    }
    if op.form:
        properties = {name: _schema_of(name) for name in op.form}
        operation["requestBody"] = {
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": properties}
                }
            },
        }
    return operation


@functools.cache
def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for base in BASES:
        for resource in RESOURCES:
            for suffix in resource.suffixes:
                paths[f"{base}{resource.path}{suffix}"] = {
                    op.method.lower(): _operation(resource, op, base) for op in resource.ops
                }
    paths.update(OPERATIONS_PATHS)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rcmlrouter provisioning API",
            "version": __version__,
            "description": (
                "Restcomm-compatible (/restcomm/2012-04-24, /2012-04-24) and Twilio-compatible "
                "(/2010-04-01) provisioning API. A .json suffix or Accept: application/json "
                "selects JSON, else XML. Bodies are application/x-www-form-urlencoded."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"basic": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "AccountSid (or email) and AuthToken",
                }
            },
            "schemas": {"Error": ERROR},
            "responses": {
                "Error": {
                    "description": "An error body: JSON {code, message, more_info, status} or "
                    "XML <RestException>; 429 carries Retry-After",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
                        "application/xml": {},
                    },
                }
            },
        },
    }


@functools.cache
def _document_bytes() -> bytes:
    return json.dumps(openapi_document(), indent=1).encode()


async def handle_openapi(_request: web.Request) -> web.Response:
    """``GET /openapi.json``."""
    return web.Response(body=_document_bytes(), content_type="application/json")
