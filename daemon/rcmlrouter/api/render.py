"""JSON / XML rendering of API resources, collections and errors (SPEC §1.1, §1.2, §1.4).

A resource is an ordered ``dict`` of snake_case keys; JSON keeps the order, XML turns each key into
its CamelCase element (``account_sid`` -> ``AccountSid``). Nested dicts become nested elements,
lists become repeated singular elements, ``None`` is JSON ``null`` / an empty element.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from rcmlrouter import dates
from rcmlrouter.api.flavour import api_base as api_base  # re-exported for the handlers
from rcmlrouter.api.flavour import flavour_of
from rcmlrouter.errors import ApiError

JSON_TYPE = "application/json"
XML_TYPE = "application/xml"
FORMAT_SUFFIXES = (".json", ".xml")
MORE_INFO = "https://www.twilio.com/docs/errors/{code}"


def rfc2822(timestamp: float | None) -> str | None:
    """``Mon, 04 Nov 2013 12:14:11 +0000`` (RFC 2822, GMT) for POSIX seconds; None stays None."""
    return None if timestamp is None else dates.rfc2822(timestamp)


def strip_format(segment: str) -> str:
    """A path segment without its ``.json`` / ``.xml`` suffix."""
    for suffix in FORMAT_SUFFIXES:
        if segment.endswith(suffix):
            return segment[: -len(suffix)]
    return segment


def wants_json(request: web.BaseRequest) -> bool:
    """``.json`` on the last segment, else an Accept header mentioning json."""
    last = request.path.rstrip("/").rsplit("/", 1)[-1]
    if last.endswith(".json"):
        return True
    if last.endswith(".xml"):
        return False
    return "json" in request.headers.get("Accept", "").lower()


def camel(key: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in key.split("_"))


def _xml_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _xml_fill(parent: ET.Element, fields: Mapping[str, Any]) -> None:
    for key, value in fields.items():
        child = ET.SubElement(parent, camel(key))
        if isinstance(value, Mapping):
            _xml_fill(child, value)
        elif isinstance(value, list):
            item_tag = camel(key).removesuffix("s")
            for item in value:
                ET.SubElement(child, item_tag).text = _xml_text(item)
        else:
            child.text = _xml_text(value)


# Characters XML 1.0 does not allow even escaped (control characters, lone surrogates, U+FFFE/F):
# a value holding one (a FriendlyName, a sid in a path) is shown with U+FFFD instead, so the
# document stays parseable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_document(request: web.BaseRequest, element: ET.Element) -> str:
    root = ET.Element(flavour_of(request).xml_root)
    root.append(element)
    text = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + _NOT_XML.sub("\ufffd", text)


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource: ``tag`` is its XML element name."""

    tag: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Collection:
    """A list: JSON ``meta`` + ``{json_key: items}``; XML ``<tag meta-attrs><item_tag/>…``."""

    tag: str
    item_tag: str
    json_key: str
    meta: dict[str, Any]
    items: list[dict[str, Any]]


def render(request: web.Request, body: Resource | Collection, status: int = 200) -> web.Response:
    if wants_json(request):
        if isinstance(body, Resource):
            payload: dict[str, Any] = body.fields
        else:
            payload = {**body.meta, body.json_key: body.items}
        return web.Response(status=status, text=json.dumps(payload), content_type=JSON_TYPE)
    if isinstance(body, Resource):
        element = ET.Element(body.tag)
        _xml_fill(element, body.fields)
    else:
        attrs = {key.replace("_", ""): _xml_text(value) for key, value in body.meta.items()}
        element = ET.Element(body.tag, attrs)
        for item in body.items:
            _xml_fill(ET.SubElement(element, body.item_tag), item)
    return web.Response(status=status, text=_xml_document(request, element), content_type=XML_TYPE)


def render_error(request: web.BaseRequest, error: ApiError) -> web.Response:
    fields = {
        "code": error.code,
        "message": error.message,
        "more_info": MORE_INFO.format(code=error.code),
        "status": error.http_status,
    }
    headers = {}
    if error.http_status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="rcmlrouter"'
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if wants_json(request):
        return web.Response(
            status=error.http_status,
            text=json.dumps(fields),
            content_type=JSON_TYPE,
            headers=headers,
        )
    element = ET.Element("RestException")
    _xml_fill(element, fields)
    return web.Response(
        status=error.http_status,
        text=_xml_document(request, element),
        content_type=XML_TYPE,
        headers=headers,
    )


@dataclass(frozen=True, slots=True)
class Paging:
    page: int
    page_size: int


def page_meta(
    request: web.Request, paging: Paging, total: int, count: int, filters: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """The list envelope of SPEC §1.4.

    ``num_pages`` is ``ceil(total / page_size)`` (0 for an empty list; ``last_page_uri`` then
    points at page 0). ``end`` is the index of the page's last item; an empty page has
    ``end == start``.
    """
    num_pages = math.ceil(total / paging.page_size)
    last_page = max(num_pages - 1, 0)
    start = paging.page * paging.page_size
    end = start + count - 1 if count else start

    def uri(page: int) -> str:
        query = [*filters, ("Page", str(page)), ("PageSize", str(paging.page_size))]
        return f"{request.path}?{urlencode(query)}"

    return {
        "page": paging.page,
        "num_pages": num_pages,
        "page_size": paging.page_size,
        "total": total,
        "start": start,
        "end": end,
        "uri": uri(paging.page),
        "first_page_uri": uri(0),
        "previous_page_uri": uri(paging.page - 1) if paging.page > 0 else None,
        "next_page_uri": uri(paging.page + 1) if paging.page < num_pages - 1 else None,
        "last_page_uri": uri(last_page),
    }
