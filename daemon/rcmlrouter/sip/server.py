"""The endpoint's server side: an incoming request → refusal, server transaction, dialog or
application hook.

:class:`RequestDispatcher` owns the server-transaction table and the INVITEs still waiting for a
final response (so a CANCEL finds its call); the endpoint hands it every parsed request.
What it needs from the endpoint is :class:`ServerHost` (the endpoint implements it; this module
never imports the endpoint).
"""

from __future__ import annotations

from typing import Protocol

from rcmlrouter.sip.call import CallHost, IncomingCall, IncomingRequest
from rcmlrouter.sip.conformance import request_refusal
from rcmlrouter.sip.dialog import Dialog, DialogKey
from rcmlrouter.sip.endpoint_stats import EndpointStats
from rcmlrouter.sip.message import Header, SipRequest, SipResponse
from rcmlrouter.sip.outgoing import OutgoingCall
from rcmlrouter.sip.response import new_tag, reason_header, reply_destination
from rcmlrouter.sip.stream_calls import StreamCalls
from rcmlrouter.sip.transaction import (
    InviteServerTransaction,
    Link,
    NonInviteServerTransaction,
    ServerKey,
    State,
    Transaction,
    server_key,
)
from rcmlrouter.sip.transport import Source

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, REFER, NOTIFY, INFO"
KNOWN_METHODS = frozenset(ALLOW.replace(",", "").split()) | {"SUBSCRIBE", "UPDATE", "PRACK"}

ServerTxn = InviteServerTransaction | NonInviteServerTransaction


class RequestHandler(Protocol):
    def on_invite(self, call: IncomingCall) -> None: ...

    def on_request(self, request: IncomingRequest) -> None: ...


class ServerHost(CallHost, Protocol):
    """What the dispatcher needs from the endpoint: the application's hooks, the overload
    state, counters and the links of new transactions; and, for the calls and requests it
    creates, what they need (:class:`~rcmlrouter.sip.call.CallHost`: timers, responses)."""

    @property
    def handler(self) -> RequestHandler: ...

    @property
    def stats(self) -> EndpointStats: ...

    @property
    def max_transactions(self) -> int: ...

    @property
    def overloaded(self) -> bool: ...

    @property
    def draining(self) -> bool: ...

    def link_to(self, destination: Source) -> Link: ...


class RequestDispatcher:
    """Every request the endpoint receives, from refusal checks to the application's hooks."""

    def __init__(
        self,
        endpoint: ServerHost,
        server: dict[ServerKey, Transaction],
        pending: dict[ServerKey, IncomingCall],
        dialogs: dict[DialogKey, IncomingCall | OutgoingCall],
    ) -> None:
        self._ep = endpoint
        self._server = server
        self._pending = pending
        self._dialogs = dialogs
        # re-INVITEs whose 2xx waits for its ACK, by (Call-ID, CSeq number)
        self._reinvites: dict[tuple[str, int], InviteServerTransaction] = {}
        self.stream_calls = StreamCalls()  # calls by the TCP/TLS connection they came on
        self.in_flight = 0  # server transactions without a final response yet
        self.current: ServerTxn | None = None  # the transaction of the request being handled

    def settled(self) -> None:
        self.in_flight -= 1

    def forget(self, key: ServerKey) -> None:
        self._server.pop(key, None)
        self._pending.pop(key, None)
        if self._reinvites:  # rare: only re-INVITEs answered and not ACKed yet
            for ack_key in [k for k, txn in self._reinvites.items() if txn.key == key]:
                del self._reinvites[ack_key]

    def on_request(self, request: SipRequest, source: Source) -> None:
        request.from_addr  # noqa: B018 - malformed From/To → 400 before any state exists
        request.to_addr  # noqa: B018
        key = server_key(request, request.top_via)
        txn = self._server.get(key)
        if request.method == "ACK":
            self._on_ack(request, txn)
            return
        if isinstance(txn, InviteServerTransaction) and txn.last_response is None:
            self._trying(txn)  # retransmitted before we said anything: Trying now
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
        refusal = request_refusal(request)
        if refusal is not None:
            status, text, headers = refusal
            return status, [*headers, reason_header(status, text)]
        max_forwards = request.get("Max-Forwards")
        if max_forwards is not None and int(max_forwards) == 0 and request.method != "OPTIONS":
            return 483, []  # an OPTIONS is for us, not forwarded: answered (RFC 4475 §3.3.11)
        required = [v for v in request.get_all("Require") if v]
        if required and request.method != "CANCEL":
            return 420, [("Unsupported", ", ".join(required))]
        if request.method not in KNOWN_METHODS:
            return 501, [("Allow", ALLOW)]
        out_of_dialog = request.to_addr.tag is None
        if request.method == "INVITE" and out_of_dialog and self._ep.overloaded:
            self._ep.stats.rejected_overload += 1
            return 503, [("Retry-After", "5")]
        if request.method == "OPTIONS" and out_of_dialog and self._ep.draining:
            # a proxy's probe: a draining node leaves its dispatcher set (an overloaded one
            # stays: it sheds single INVITEs, which the proxy fails over)
            return 503, [("Retry-After", "5"), reason_header(503, "draining")]
        return None

    def _refuse(
        self,
        request: SipRequest,
        key: ServerKey,
        reply_to: Source,
        status: int,
        headers: list[Header],
    ) -> None:
        response = self._ep.make_response(request, status, None, to_tag=new_tag(), headers=headers)
        if status == 503 or len(self._server) >= 2 * self._ep.max_transactions:
            self._ep.resend(response, reply_to)  # stateless under overload
            return
        self._new_txn(request, key, reply_to).respond(response)

    def _new_txn(self, request: SipRequest, key: ServerKey, reply_to: Source) -> ServerTxn:
        txn: ServerTxn
        if request.method == "INVITE":
            txn = InviteServerTransaction(key, self._ep.link_to(reply_to), request)
        else:
            txn = NonInviteServerTransaction(key, self._ep.link_to(reply_to), request)
        self._server[key] = txn
        self.in_flight += 1
        self.current = txn
        return txn

    def _on_ack(self, request: SipRequest, txn: Transaction | None) -> None:
        if isinstance(txn, InviteServerTransaction) and txn.on_ack():
            return
        reinvite = self._reinvites.pop((request.call_id, request.cseq[0]), None)
        if reinvite is not None:
            reinvite.ack_2xx()
        tag = request.to_addr.tag
        call = self._dialogs.get((request.call_id, tag or "", request.from_addr.tag or ""))
        if isinstance(call, IncomingCall):
            call.on_ack(request.body)
        elif call is not None:
            call.on_ack()
        else:
            self._ep.stats.dropped += 1

    def _on_invite(
        self, request: SipRequest, key: ServerKey, source: Source, reply_to: Source
    ) -> None:
        dialog = Dialog.from_invite(request, new_tag())  # may raise: before any state exists
        txn = self._new_txn(request, key, reply_to)
        assert isinstance(txn, InviteServerTransaction)
        txn.trying_after(self._ep.config.trying, lambda: self._trying_response(request))
        call = IncomingCall(self._ep, txn, source, reply_to, dialog)
        self._pending[key] = call
        self._dialogs[call.dialog.key] = call
        self.stream_calls.add(call)
        self._ep.handler.on_invite(call)

    def _trying_response(self, request: SipRequest) -> SipResponse:
        """RFC 3261 §17.2.1: 100 Trying only when the INVITE is not answered (rung, rejected,
        answered) within ``TimerConfig.trying``: a quick call costs one datagram less."""
        return self._ep.make_response(request, 100, "Trying", to_tag=None)

    def _trying(self, txn: InviteServerTransaction) -> None:
        if txn.state is State.PROCEEDING and txn.last_response is None:
            txn.respond(self._trying_response(txn.request))

    def _on_cancel(self, request: SipRequest, key: ServerKey, reply_to: Source) -> None:
        invite_key = (*key[:-1], "INVITE")
        call = self._pending.get(invite_key)
        txn = self._new_txn(request, key, reply_to)
        if call is None:
            invite = self._server.get(invite_key)
            if isinstance(invite, InviteServerTransaction) and invite.last_response is not None:
                # §9.2: the INVITE was answered and its transaction lingers: 200, no effect
                to_tag = invite.last_response.to_tag or new_tag()
                txn.respond(self._ep.make_response(request, 200, "OK", to_tag=to_tag))
                return
            txn.respond(self._ep.make_response(request, 481, None, to_tag=new_tag()))
            return
        txn.respond(self._ep.make_response(request, 200, "OK", to_tag=call.local_tag))
        call.cancel()

    def _on_in_dialog(
        self, request: SipRequest, key: ServerKey, source: Source, reply_to: Source
    ) -> None:
        dialog_key = (request.call_id, request.to_addr.tag or "", request.from_addr.tag or "")
        call = self._dialogs.get(dialog_key)
        txn = self._new_txn(request, key, reply_to)
        if call is None:
            txn.respond(self._ep.make_response(request, 481, None, to_tag=None))
            return
        if not call.dialog.accept_remote_cseq(request):
            txn.respond(self._ep.make_response(request, 500, "CSeq Out Of Order", to_tag=None))
            return
        if isinstance(txn, InviteServerTransaction):
            self._on_reinvite(call, txn, source)
            return
        incoming = IncomingRequest(self._ep, txn, source, None)
        self._dispatch_in_dialog(call, incoming)

    def _on_reinvite(
        self, call: IncomingCall | OutgoingCall, txn: InviteServerTransaction, source: Source
    ) -> None:
        respond = self._ep.make_response
        if not call.answered or call.ended.done():
            txn.respond(respond(txn.request, 491, "Request Pending", to_tag=None))
            return
        call.dialog.update_target(txn.request)
        txn.repeat_2xx = True
        self._reinvites[(txn.request.call_id, txn.request.cseq[0])] = txn
        if call.dispatch_reinvite(IncomingRequest(self._ep, txn, source, None)):
            txn.respond(respond(txn.request, 100, "Trying", to_tag=None))
            self._ep.timers.schedule(
                self._ep.config.timeout, lambda: self._reinvite_unanswered(txn)
            )
            return
        if call.local_sdp is None:
            txn.respond(respond(txn.request, 491, "Request Pending", to_tag=None))
            return
        txn.respond(
            respond(
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
            txn.respond(self._ep.make_response(txn.request, 500, None, to_tag=None))

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
        txn = self._new_txn(request, key, reply_to)
        assert isinstance(txn, NonInviteServerTransaction)
        respond = self._ep.make_response
        if request.method == "OPTIONS":
            headers = [("Allow", ALLOW), ("Accept", "application/sdp, text/plain")]
            txn.respond(respond(request, 200, "OK", to_tag=new_tag(), headers=headers))
        elif request.method in ("BYE", "NOTIFY", "INFO", "PRACK", "UPDATE"):
            txn.respond(respond(request, 481, None, to_tag=new_tag()))
        else:
            self._ep.handler.on_request(IncomingRequest(self._ep, txn, source, new_tag()))


__all__ = ["ALLOW", "KNOWN_METHODS", "RequestDispatcher", "RequestHandler", "ServerHost"]
