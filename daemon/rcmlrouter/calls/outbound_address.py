"""Where an API call (``POST Calls``) goes: a ``sip:``/``sips:`` URI as given, or a number
through its trunk and the trunks that trunk's ``failover`` chain names (the same addressing as
``<Dial><Number>``, ``calls/dialed_leg.py``); and the From it is sent with."""

from __future__ import annotations

from rcmlrouter.calls.dialed_leg import DialAddress, trunk_address
from rcmlrouter.config import Config, TrunkConfig
from rcmlrouter.errors import SipError
from rcmlrouter.sip.uri import SipUri, format_host, parse_uri
from rcmlrouter.store.records import OriginateRequest


def is_uri(request: OriginateRequest) -> bool:
    return request.to.lower().startswith(("sip:", "sips:"))


def call_address(
    request: OriginateRequest, config: Config, trunk: TrunkConfig | None = None
) -> DialAddress:
    """Where the INVITE goes: a URI as given (``SipAuth*`` answer a challenge), or the number
    through ``trunk`` (by default its first trunk). SipError when it cannot be dialled."""
    if is_uri(request):
        uri = parse_uri(request.to)
        credentials = None
        if request.sip_auth_username:
            credentials = (request.sip_auth_username, request.sip_auth_password)
        return DialAddress(request.to, uri.user or request.to, credentials)
    trunk = trunk or config.trunk(request.trunk)
    if trunk is None:
        raise SipError("no outbound trunk is configured for numbers", sip_status=503)
    return trunk_address(request.to, trunk, config.routing.default_region)


def trunk_of(request: OriginateRequest, config: Config) -> TrunkConfig | None:
    """The trunk a number goes through first (None for a SIP URI, or when none is
    configured)."""
    return None if is_uri(request) else config.trunk(request.trunk)


def call_trunks(request: OriginateRequest, config: Config) -> tuple[TrunkConfig, ...]:
    """The trunks a number is tried on in turn (its trunk's failover chain); none for a URI."""
    first = trunk_of(request, config)
    return config.trunk_chain(first) if first is not None else ()


def from_uri(request: OriginateRequest, config: Config) -> str:
    host = config.sip.own_host()
    return str(SipUri("sip", request.from_ or "anonymous", format_host(host)))
