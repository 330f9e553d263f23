"""The OpenAPI 3.1 document of the whole API, rendered at start-up from the API's catalog
(:mod:`rcmlrouter.api.catalog`) and served at ``GET /openapi.json`` (no credentials needed).

Every resource is listed under each base (``/restcomm/2012-04-24``, ``/2012-04-24``,
``/2010-04-01``) and, where the route has them, with its ``.json`` / ``.xml`` suffixes; path
parameter names are the router's. Bodies are form-encoded; responses are JSON (``.json`` or
``Accept: application/json``) or XML, errors an :data:`ERROR` body.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from aiohttp import web

from rcmlrouter import __version__
from rcmlrouter.api.catalog import BASES, OPERATIONS_PATHS, RESOURCES, Op, Resource
from rcmlrouter.api.flavour import TWILIO

BOOL = {"type": "string", "enum": ["true", "false"]}
METHOD = {"type": "string", "enum": ["GET", "POST", "get", "post"]}
URL = {"type": "string", "format": "uri", "maxLength": 2048}
IDEMPOTENCY_KEY = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"}

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
