"""What the transports hand the endpoint: the endpoint's
:class:`~rcmlrouter.sip.transport.MessageReceiver`.

Before parsing, a new INVITE is shed with a cheap 503 while the endpoint is overloaded
(:mod:`rcmlrouter.sip.shed`). A parsed request goes to the
:class:`~rcmlrouter.sip.server.RequestDispatcher`, a response to its client transaction (or, a
2xx retransmitted after the transaction ended, to its outgoing call for a new ACK). What cannot
be parsed is answered statelessly (400 with a Reason, through the transaction when one exists
already), as is a request the source guard refuses from its bytes. Transport failures go to the
client transactions, closed TCP/TLS connections to the calls that came on them.
"""

from __future__ import annotations

from typing import Protocol

from rcmlrouter.errors import SipParseError
from rcmlrouter.sip.call import IncomingCall
from rcmlrouter.sip.client import ClientTransactions
from rcmlrouter.sip.dialog import DialogKey
from rcmlrouter.sip.endpoint_stats import EndpointStats
from rcmlrouter.sip.message import Header, SipRequest, SipResponse
from rcmlrouter.sip.outgoing import OutgoingCall
from rcmlrouter.sip.response import (
    Responder,
    error_destination,
    new_tag,
    reason_header,
    salvage_request,
)
from rcmlrouter.sip.server import RequestDispatcher
from rcmlrouter.sip.shed import is_shed_ack, shed_response
from rcmlrouter.sip.transport import Source, Transports

SHED_RETRY_AFTER = 5


class ReceiverHost(Responder, Protocol):
    """What the receiver needs from the endpoint: its responses
    (:class:`~rcmlrouter.sip.response.Responder`), counters and the overload state."""

    @property
    def stats(self) -> EndpointStats: ...

    @property
    def overloaded(self) -> bool: ...


class Receiver:
    """Every message and transport event of one endpoint's transports (module docstring)."""

    def __init__(
        self,
        host: ReceiverHost,
        transports: Transports,
        clients: ClientTransactions,
        requests: RequestDispatcher,
        dialogs: dict[DialogKey, IncomingCall | OutgoingCall],
        user_agent: str,
    ) -> None:
        self._host = host
        self.stats = host.stats
        self._transports = transports
        self._clients = clients
        self._requests = requests
        self._dialogs = dialogs
        self._stream_calls = requests.stream_calls
        self.user_agent = user_agent
        self._shed_tag = "ovl" + new_tag()[:10]

    def shed(self, data: bytes, source: Source) -> bool:
        """Overloaded: a new INVITE gets 503 from its raw bytes, the ACK of such a 503 is
        dropped, neither parsed (:mod:`rcmlrouter.sip.shed`). Everything else goes on."""
        if not self._host.overloaded:
            return False
        if is_shed_ack(data, self._shed_tag):
            return True
        shed = shed_response(data, source, self._shed_tag, SHED_RETRY_AFTER, self.user_agent)
        if shed is None:
            return False
        self.stats.messages_in += 1
        self.stats.messages_out += 1
        self.stats.rejected_overload += 1
        self._transports.send_bytes(*shed)
        return True

    def on_message(self, message: SipRequest | SipResponse, source: Source) -> None:
        self.stats.messages_in += 1
        self._requests.current = None
        try:
            if isinstance(message, SipResponse):
                self._on_response(message)
            else:
                self._requests.on_request(message, source)
        except SipParseError as exc:
            txn = self._requests.current
            if txn is not None and not txn.settled:  # answer through the transaction
                self.stats.parse_errors += 1
                reason = [reason_header(400, exc.reason)]
                txn.respond(
                    self._host.make_response(
                        txn.request, 400, None, to_tag=new_tag(), headers=reason
                    )
                )
                return
            request = message if isinstance(message, SipRequest) else None
            self.on_bad_message(b"", source, exc, request)

    def on_bad_message(
        self,
        data: bytes,
        source: Source,
        error: SipParseError,
        request: SipRequest | None = None,
    ) -> None:
        self.stats.parse_errors += 1
        request = request or salvage_request(data)
        if request is None or request.method == "ACK":
            self.stats.dropped += 1
            return
        try:
            response = self._host.make_response(
                request,
                error.sip_status,
                None,
                to_tag=new_tag(),
                headers=[reason_header(error.sip_status, error.reason)],
            )
            self._host.resend(response, error_destination(request, source))
        except SipParseError:
            self.stats.dropped += 1

    def on_send_failed(self, destination: Source) -> None:
        self.stats.dropped += 1
        self._clients.on_send_failed(destination)

    def on_connection_closed(self, source: Source) -> None:
        self._stream_calls.closed(source)

    def connection_in_use(self, source: Source) -> bool:
        return self._stream_calls.in_use(source)

    def refuse_raw(
        self, data: bytes, source: Source, status: int, text: str, headers: list[Header]
    ) -> None:
        """A stateless error response to a request known by its bytes only (the guard's)."""
        request = salvage_request(data)
        if request is None or request.method == "ACK":
            return
        extra = [*headers, reason_header(status, text)]
        response = self._host.make_response(request, status, None, to_tag=new_tag(), headers=extra)
        self._host.resend(response, error_destination(request, source))

    def _on_response(self, response: SipResponse) -> None:
        if self._clients.on_response(response):
            return
        if 200 <= response.status < 300 and response.cseq[1] == "INVITE":
            key = (response.call_id, response.from_addr.tag or "", response.to_addr.tag or "")
            call = self._dialogs.get(key)
            if isinstance(call, OutgoingCall):
                call.on_late_2xx(response)  # retransmitted after the transaction ended: re-ACK
                return
        self.stats.dropped += 1


__all__ = ["SHED_RETRY_AFTER", "Receiver", "ReceiverHost"]
