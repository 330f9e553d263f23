"""The SIP endpoint's configuration (security, listeners) and its request handler."""

from __future__ import annotations

import ssl

from rcmlrouter.calls.supervisor import CallSupervisor
from rcmlrouter.calls.transfer import refuse_out_of_dialog
from rcmlrouter.config import Config, SipConfig
from rcmlrouter.errors import ConfigError, SipError
from rcmlrouter.messaging.inbound import MessageHandler
from rcmlrouter.sip import tls
from rcmlrouter.sip.call import IncomingCall, IncomingRequest
from rcmlrouter.sip.endpoint import SipEndpoint
from rcmlrouter.sip.guard import SourceGuard
from rcmlrouter.sip.transport import StreamLimits

NOT_SUPPORTED = ("Reason", 'SIP;cause=501;text="method not supported yet"')


class SipRequestRouter:
    """The SIP endpoint's handler: INVITEs to the call supervisor, MESSAGEs to the message
    handler, a REFER outside a call refused, the rest 501."""

    def __init__(self, supervisor: CallSupervisor, messages: MessageHandler) -> None:
        self.supervisor = supervisor
        self.messages = messages

    def on_invite(self, call: IncomingCall) -> None:
        self.supervisor.on_invite(call)

    def on_request(self, request: IncomingRequest) -> None:
        if request.request.method == "MESSAGE":
            self.messages.on_message(request)
            return
        if request.request.method == "REFER":
            refuse_out_of_dialog(request)
            return
        request.respond(501, headers=[NOT_SUPPORTED])


def build_endpoint(config: Config, handler: SipRequestRouter) -> SipEndpoint:
    """The endpoint with its limits and security (not listening yet); a TLS file that cannot
    be used is a ConfigError."""
    sip = config.sip
    endpoint = SipEndpoint(
        handler,
        user_agent=sip.user_agent,
        max_transactions=sip.max_transactions,
        advertise=sip.advertise or None,
        overload_lag=sip.overload_lag,
    )
    try:
        endpoint.secure(*sip_security(sip))
    except SipError as exc:
        raise ConfigError([f"sip.tls_cert / tls_key / tls_ca: {exc.reason}"]) from exc
    return endpoint


async def listen(endpoint: SipEndpoint, config: Config) -> None:
    """Open ``sip.listen``; a listener that cannot be opened is a ConfigError."""
    try:
        await endpoint.start(list(config.sip.listen))
    except SipError as exc:
        raise ConfigError([f"sip.listen: {exc.reason}"]) from exc


def sip_security(
    sip: SipConfig,
) -> tuple[SourceGuard, StreamLimits, ssl.SSLContext | None, ssl.SSLContext | None]:
    """[sip] trusted/flood/tls/tcp keys → the arguments of ``SipEndpoint.secure``; raises
    SipError when a TLS file cannot be used."""
    guard = SourceGuard(
        sip.trusted,
        untrusted=sip.untrusted,
        flood_limit=sip.flood_limit,
        flood_window=sip.flood_window,
    )
    limits = StreamLimits(
        sip.tcp_idle_timeout,
        sip.tcp_header_timeout,
        sip.tcp_max_connections,
        sip.tcp_max_per_source,
    )
    server = None
    if sip.tls_cert:
        server = tls.server_context(
            sip.tls_cert, sip.tls_key, ca=sip.tls_ca, verify_client=sip.tls_verify_client
        )
    return guard, limits, server, tls.client_context(sip.tls_ca) if sip.tls_ca else None
