"""The SIP user-agent core: transport ↔ transactions ↔ dialogs ↔ application.

One :class:`SipEndpoint` per daemon. No task per call or transaction: every timer lives in one
:class:`TimerHeap`; the application awaits futures.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from rcmlrouter.errors import SipError, SipParseError
from rcmlrouter.sip.call import IncomingCall, IncomingRequest
from rcmlrouter.sip.client import CLIENT_TRANSACTIONS, ClientTransactions
from rcmlrouter.sip.dialer import Dialer
from rcmlrouter.sip.dialog import Dialog, DialogKey
from rcmlrouter.sip.message import (
    Header,
    SipRequest,
    SipResponse,
)
from rcmlrouter.sip.outgoing import RING_TIMEOUT, OutgoingCall
from rcmlrouter.sip.response import (
    build_response,
    new_tag,
    reason_header,
    reason_phrase,
    reply_destination,
    salvage_request,
)
from rcmlrouter.sip.timers import TimerConfig, TimerHeap
from rcmlrouter.sip.transaction import (
    InviteServerTransaction,
    Link,
    NonInviteServerTransaction,
    ServerKey,
    State,
    Transaction,
    server_key,
)
from rcmlrouter.sip.transport import Source, Transports
from rcmlrouter.sip.uri import SipUri, bare_host, format_host

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, REFER, NOTIFY, INFO"
KNOWN_METHODS = frozenset(ALLOW.replace(",", "").split()) | {"SUBSCRIBE", "UPDATE", "PRACK"}
MAX_CACHED_LINKS = 4096


class RequestHandler(Protocol):
    def on_invite(self, call: IncomingCall) -> None: ...

    def on_request(self, request: IncomingRequest) -> None: ...


@dataclass(slots=True)
class EndpointStats:
    messages_in: int = 0
    messages_out: int = 0
    parse_errors: int = 0
    dropped: int = 0
    rejected_overload: int = 0
    transactions: int = 0
    in_flight: int = 0
    dialogs: int = 0


class SipEndpoint:
    """See the module docstring and the README's SIP section for the behaviour contract."""

    def __init__(
        self,
        handler: RequestHandler,
        *,
        user_agent: str = "rcmlrouter",
        max_transactions: int = 20000,
        timers: TimerConfig | None = None,
        advertise: str | None = None,
    ) -> None:
        """``advertise``: the host put in Via and Contact (required behind NAT or when
        listening on a wildcard address); by default the bound address."""
        self.handler = handler
        self.user_agent = user_agent
        self.max_transactions = max_transactions
        self.config = timers or TimerConfig()
        self.stats = EndpointStats()
        self.timers: TimerHeap = None  # type: ignore[assignment]  # set in start()
        self._transports = Transports(self, advertise)
        self._clients = ClientTransactions(self._transports, self._link)
        self._server: dict[ServerKey, Transaction] = {}
        self._pending: dict[ServerKey, IncomingCall] = {}
        self._dialogs: dict[DialogKey, IncomingCall | OutgoingCall] = {}
        self._dialer = Dialer(
            self._transports,
            self._clients,
            self._dialogs,
            self._send,
            self.config,
            user_agent=user_agent,
            allow=ALLOW,
        )
        self._draining = False
        self._in_flight = 0  # server transactions without a final response yet
        self._current: InviteServerTransaction | NonInviteServerTransaction | None = None
        self._links: dict[Source, Link] = {}

    async def start(self, listen: list[str]) -> None:
        self.timers = TimerHeap(asyncio.get_running_loop())
        self._dialer.timers = self.timers
        self._links.clear()
        await self._transports.start(listen)

    async def stop(self) -> None:
        await self._dialer.stop()
        await self._transports.stop()
        if self.timers is not None:
            self.timers.close()

    @property
    def addresses(self) -> list[tuple[str, str, int]]:
        return list(self._transports.addresses)

    def set_draining(self, draining: bool) -> None:
        self._draining = draining

    @property
    def transaction_count(self) -> int:
        return len(self._server) + len(self._clients)

    @property
    def in_flight(self) -> int:
        """Transactions still waiting for a final response: the overload measure."""
        return self._in_flight + self._clients.in_flight

    @property
    def dialog_count(self) -> int:
        return len(self._dialogs)

    def snapshot_stats(self) -> EndpointStats:
        self.stats.transactions = self.transaction_count
        self.stats.in_flight = self.in_flight
        self.stats.dialogs = self.dialog_count
        return self.stats

    # --- MessageReceiver -------------------------------------------------------------------

    def on_message(self, message: SipRequest | SipResponse, source: Source) -> None:
        self.stats.messages_in += 1
        self._current = None
        try:
            if isinstance(message, SipResponse):
                self._on_response(message)
            else:
                self._on_request(message, source)
        except SipParseError as exc:
            txn = self._current
            if txn is not None and not txn.settled:  # answer through the transaction
                self.stats.parse_errors += 1
                reason = [reason_header(400, exc.reason)]
                txn.respond(
                    self.make_response(txn.request, 400, None, to_tag=new_tag(), headers=reason)
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
            response = self.make_response(
                request,
                error.sip_status,
                error.default_reason,
                to_tag=new_tag(),
                headers=[reason_header(error.sip_status, error.reason)],
            )
            self._send(response, reply_destination(request, source))
        except SipParseError:
            self.stats.dropped += 1

    def on_send_failed(self, destination: Source) -> None:
        self.stats.dropped += 1
        self._clients.on_send_failed(destination)

    # --- sending ---------------------------------------------------------------------------

    def _send(self, message: SipRequest | SipResponse, destination: Source) -> None:
        self.stats.messages_out += 1
        self._transports.send(message, destination)

    def resend(self, response: SipResponse, destination: Source) -> None:
        self._send(response, destination)

    def make_response(
        self,
        request: SipRequest,
        status: int,
        reason: str | None,
        *,
        to_tag: str | None,
        headers: list[Header] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SipResponse:
        extra: list[Header] = [("Server", self.user_agent)]
        if request.method in ("INVITE", "OPTIONS") and 100 < status < 300:
            extra.append(("Contact", self._contact(request)))
        if headers:
            extra.extend(headers)
        if content_type:
            extra.append(("Content-Type", content_type))
        return build_response(
            request,
            status,
            reason or reason_phrase(status),
            to_tag=to_tag,
            headers=extra,
            body=body,
        )

    def _contact(self, request: SipRequest) -> str:
        via = request.top_via
        transport = "udp" if via.transport == "UDP" else "tcp"
        host = via.params.get("received") or bare_host(via.host)
        local_host, port = self._transports.local_address(transport, host)
        suffix = ";transport=tcp" if transport == "tcp" else ""
        return f"<sip:{format_host(local_host)}:{port}{suffix}>"

    def _link(self, destination: Source) -> Link:
        """The (immutable) link of transactions towards ``destination``, shared by all of them:
        no closure, bound methods and Link per transaction."""
        link = self._links.get(destination)
        if link is not None:
            return link

        def send(message: object) -> None:
            assert isinstance(message, SipRequest | SipResponse)
            self._send(message, destination)

        reliable = destination[0] != "udp"
        link = Link(send, self.timers, self.config, reliable, self._txn_done, self._txn_settled)
        if len(self._links) >= MAX_CACHED_LINKS:
            self._links.clear()
        self._links[destination] = link
        return link

    def _txn_settled(self, txn: Transaction) -> None:
        if isinstance(txn, CLIENT_TRANSACTIONS):
            self._clients.settled()
        else:
            self._in_flight -= 1

    def _txn_done(self, txn: Transaction) -> None:
        if isinstance(txn, CLIENT_TRANSACTIONS):
            self._clients.forget(txn.key)
            return
        self._server.pop(txn.key, None)
        self._pending.pop(txn.key, None)

    # --- requests --------------------------------------------------------------------------

    def _on_request(self, request: SipRequest, source: Source) -> None:
        request.from_addr  # noqa: B018 - malformed From/To → 400 before any state exists
        request.to_addr  # noqa: B018
        key = server_key(request, request.top_via)
        txn = self._server.get(key)
        if request.method == "ACK":
            self._on_ack(request, txn)
            return
        if txn is not None:
            txn.on_retransmit()
            return
        reply_to = reply_destination(request, source)
        refusal = self._refusal(request)
        if refusal is not None:
            self._refuse(request, key, reply_to, *refusal)
        elif request.method == "CANCEL":
            self._on_cancel(request, key, reply_to)
        elif request.to_addr.tag is not None:
            self._on_in_dialog(request, key, source, reply_to)
        elif request.method == "INVITE":
            self._on_invite(request, key, source, reply_to)
        else:
            self._on_out_of_dialog(request, key, source, reply_to)

    def _refusal(self, request: SipRequest) -> tuple[int, list[Header]] | None:
        max_forwards = request.get("Max-Forwards")
        if max_forwards is not None and max_forwards.strip() == "0":
            return 483, []
        required = [v for v in request.get_all("Require") if v]
        if required and request.method != "CANCEL":
            return 420, [("Unsupported", ", ".join(required))]
        if request.method not in KNOWN_METHODS:
            return 501, [("Allow", ALLOW)]
        is_new_invite = request.method == "INVITE" and request.to_addr.tag is None
        if is_new_invite and (self._draining or self.in_flight >= self.max_transactions):
            self.stats.rejected_overload += 1
            return 503, [("Retry-After", "5")]
        return None

    def _refuse(
        self,
        request: SipRequest,
        key: ServerKey,
        reply_to: Source,
        status: int,
        headers: list[Header],
    ) -> None:
        response = self.make_response(request, status, None, to_tag=new_tag(), headers=headers)
        if status == 503 or len(self._server) >= 2 * self.max_transactions:
            self._send(response, reply_to)  # stateless under overload
            return
        self._new_server_txn(request, key, reply_to).respond(response)

    def _new_server_txn(
        self, request: SipRequest, key: ServerKey, reply_to: Source
    ) -> InviteServerTransaction | NonInviteServerTransaction:
        txn: InviteServerTransaction | NonInviteServerTransaction
        if request.method == "INVITE":
            txn = InviteServerTransaction(key, self._link(reply_to), request)
        else:
            txn = NonInviteServerTransaction(key, self._link(reply_to), request)
        self._server[key] = txn
        self._in_flight += 1
        self._current = txn
        return txn

    def _on_ack(self, request: SipRequest, txn: Transaction | None) -> None:
        if isinstance(txn, InviteServerTransaction) and txn.on_ack():
            return
        tag = request.to_addr.tag
        call = self._dialogs.get((request.call_id, tag or "", request.from_addr.tag or ""))
        if isinstance(call, IncomingCall):
            call.on_ack(request.body)
        elif call is not None:
            call.on_ack()
        else:
            self.stats.dropped += 1

    def _on_invite(
        self, request: SipRequest, key: ServerKey, source: Source, reply_to: Source
    ) -> None:
        dialog = Dialog.from_invite(request, new_tag())  # may raise: before any state exists
        txn = self._new_server_txn(request, key, reply_to)
        assert isinstance(txn, InviteServerTransaction)
        txn.respond(self.make_response(request, 100, "Trying", to_tag=None))
        call = IncomingCall(self, txn, source, reply_to, dialog)
        self._pending[key] = call
        self._dialogs[call.dialog.key] = call
        self.handler.on_invite(call)

    def _on_cancel(self, request: SipRequest, key: ServerKey, reply_to: Source) -> None:
        invite_key = (*key[:-1], "INVITE")
        call = self._pending.get(invite_key)
        txn = self._new_server_txn(request, key, reply_to)
        if call is None:
            txn.respond(self.make_response(request, 481, None, to_tag=new_tag()))
            return
        txn.respond(self.make_response(request, 200, "OK", to_tag=call.local_tag))
        call.cancel()

    def _on_in_dialog(
        self, request: SipRequest, key: ServerKey, source: Source, reply_to: Source
    ) -> None:
        dialog_key = (request.call_id, request.to_addr.tag or "", request.from_addr.tag or "")
        call = self._dialogs.get(dialog_key)
        txn = self._new_server_txn(request, key, reply_to)
        if call is None:
            txn.respond(self.make_response(request, 481, None, to_tag=None))
            return
        if not call.dialog.accept_remote_cseq(request):
            txn.respond(self.make_response(request, 500, "CSeq Out Of Order", to_tag=None))
            return
        if isinstance(txn, InviteServerTransaction):
            self._on_reinvite(call, txn, source)
            return
        incoming = IncomingRequest(self, txn, source, None)
        self._dispatch_in_dialog(call, incoming)

    def _on_reinvite(
        self, call: IncomingCall | OutgoingCall, txn: InviteServerTransaction, source: Source
    ) -> None:
        if not call.answered or call.ended.done():
            txn.respond(self.make_response(txn.request, 491, "Request Pending", to_tag=None))
            return
        call.dialog.update_target(txn.request)
        if call.dispatch_reinvite(IncomingRequest(self, txn, source, None)):
            txn.respond(self.make_response(txn.request, 100, "Trying", to_tag=None))
            self.timers.schedule(self.config.timeout, lambda: self._reinvite_unanswered(txn))
            return
        if call.local_sdp is None:
            txn.respond(self.make_response(txn.request, 491, "Request Pending", to_tag=None))
            return
        txn.respond(
            self.make_response(
                txn.request,
                200,
                "OK",
                to_tag=None,
                body=call.local_sdp,
                content_type="application/sdp",
            )
        )

    def _reinvite_unanswered(self, txn: InviteServerTransaction) -> None:
        """The application never answered a re-INVITE it took: 500, so nothing lingers."""
        if txn.state is State.PROCEEDING:
            txn.respond(self.make_response(txn.request, 500, None, to_tag=None))

    def _dispatch_in_dialog(
        self, call: IncomingCall | OutgoingCall, incoming: IncomingRequest
    ) -> None:
        method = incoming.request.method
        if method == "BYE":
            incoming.respond(200)
            call.finish("remote-bye")
        elif method == "OPTIONS":
            incoming.respond(200, headers=[("Allow", ALLOW)])
        elif call.dispatch_in_dialog(incoming):
            return
        elif method == "INFO":
            incoming.respond(200)
        else:
            incoming.respond(405, headers=[("Allow", ALLOW)])

    def _on_out_of_dialog(
        self, request: SipRequest, key: ServerKey, source: Source, reply_to: Source
    ) -> None:
        txn = self._new_server_txn(request, key, reply_to)
        assert isinstance(txn, NonInviteServerTransaction)
        if request.method == "OPTIONS":
            headers = [("Allow", ALLOW), ("Accept", "application/sdp, text/plain")]
            txn.respond(self.make_response(request, 200, "OK", to_tag=new_tag(), headers=headers))
        elif request.method in ("BYE", "NOTIFY", "INFO", "PRACK", "UPDATE"):
            txn.respond(self.make_response(request, 481, None, to_tag=new_tag()))
        else:
            self.handler.on_request(IncomingRequest(self, txn, source, new_tag()))

    def call_ended(self, call: IncomingCall) -> None:
        self._dialogs.pop(call.dialog.key, None)

    # --- client side -----------------------------------------------------------------------

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

    def start_call(
        self,
        target_uri: str,
        *,
        from_uri: str,
        from_display: str | None = None,
        to_uri: str | None = None,
        headers: list[Header] | None = None,
        sdp: bytes | None = None,
        credentials: tuple[str, str] | None = None,
        destination: Source | None = None,
        ring_timeout: float = RING_TIMEOUT,
    ) -> OutgoingCall:
        """Send an INVITE to ``target_uri`` (its Request-URI and To, unless ``to_uri``).

        ``destination`` (transport, host, port) overrides where it is sent (a trunk or outbound
        proxy); otherwise the URI decides (``;transport=``, port 5060, A/AAAA for a name).
        ``credentials`` (user, password) answer one 401/407. ``ring_timeout``: CANCEL after
        that long without a final response (``ended`` = "timeout"). Raises :class:`SipError`
        for an unusable URI; everything later is reported through the call's futures.
        """
        return self._dialer.start_call(
            target_uri,
            from_uri=from_uri,
            from_display=from_display,
            to_uri=to_uri,
            headers=headers,
            sdp=sdp,
            credentials=credentials,
            destination=destination,
            ring_timeout=ring_timeout,
        )

    @property
    def outgoing_calls(self) -> int:
        """Outgoing calls not ended yet."""
        return self._dialer.calls

    async def send_request(self, request: SipRequest, destination: Source) -> SipResponse:
        """Out-of-dialog non-INVITE request (e.g. MESSAGE). Returns the final response (any
        status); raises :class:`SipError` 408 on timeout or transport failure."""
        response = await self._clients.start(request, destination)
        if response is None:
            raise SipError("no response (timeout or transport failure)", sip_status=408)
        return response

    def send_in_dialog(
        self, call: IncomingCall, method: str, headers: list[Header], body: bytes
    ) -> asyncio.Future[SipResponse | None]:
        destination = self._dialog_destination(call, call.dialog.next_hop())
        request = call.dialog.build_request(method, "", headers, body)
        request.headers.pop(0)  # the Via is stamped by the client transaction
        request.headers.insert(1, ("Contact", self._contact(call.request)))
        if method == "INVITE":  # a re-INVITE: INVITE transaction, its 2xx ACKed
            return self._dialer.reinvite(call.dialog, request, destination)
        return self._clients.start(request, destination)

    def _dialog_destination(self, call: IncomingCall, hop: SipUri) -> Source:
        transport = hop.params.get("transport", call.source[0]) or call.source[0]
        transport = transport.lower()
        if transport != "udp" and call.source in self._transports.connections:
            return call.source  # reuse the caller's connection
        return (transport, bare_host(hop.host), hop.port or 5060)


__all__ = ["EndpointStats", "IncomingCall", "IncomingRequest", "RequestHandler", "SipEndpoint"]
