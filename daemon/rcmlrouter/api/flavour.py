"""The two API flavours served by one implementation: Restcomm 2012-04-24 and Twilio 2010-04-01.

Handlers, validation and the store are shared; a :class:`Flavour` decides only what differs on
the wire: the URI prefix, the ApiVersion given to created numbers, the status of a create, the
XML document root, and which renderer shapes resources and lists (``render.py`` for Restcomm,
``render_twilio.py`` for Twilio). The flavour of a request follows from its path.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Flavour:
    name: str
    bases: tuple[str, ...]  # URL prefixes served; the first is the canonical one
    api_version: str  # ApiVersion of numbers created through this flavour
    create_status: int  # HTTP status of a successful POST that creates a resource
    xml_root: str  # the element wrapping every XML document

    @property
    def is_twilio(self) -> bool:
        return self is TWILIO


RESTCOMM = Flavour(
    "restcomm", ("/restcomm/2012-04-24", "/2012-04-24"), "2012-04-24", 200, "RestcommResponse"
)
TWILIO = Flavour("twilio", ("/2010-04-01",), "2010-04-01", 201, "TwilioResponse")
FLAVOURS = (RESTCOMM, TWILIO)


def flavour_of(request: web.BaseRequest) -> Flavour:
    """Twilio for paths under ``/2010-04-01/``, else Restcomm."""
    return TWILIO if request.path.startswith("/2010-04-01/") else RESTCOMM


def api_base(request: web.Request) -> str:
    """The base the request came in on: ``/restcomm/2012-04-24``, ``/2012-04-24`` or
    ``/2010-04-01`` (URIs in responses use it)."""
    flavour = flavour_of(request)
    for base in flavour.bases:
        if request.path.startswith(base + "/"):
            return base
    return flavour.bases[0]
