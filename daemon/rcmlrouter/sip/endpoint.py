"""The SIP user-agent core: transport ↔ transactions ↔ dialogs ↔ application.

One :class:`SipEndpoint` per daemon. No task per call or transaction: every timer lives in one
:class:`TimerHeap`; the application awaits futures. The endpoint builds its parts and is what
the daemon holds: start and stop, security settings, the overload state and the counters, and
the application's requests (outgoing calls, out-of-dialog requests, in-dialog requests of an
incoming call). It is also the host its parts share: it builds our responses (Server, Contact),
counts what is sent, and keeps the links of transactions (one per destination).

The parts: what the transports hand over goes to the :class:`~rcmlrouter.sip.receiver.Receiver`;
requests to the :class:`~rcmlrouter.sip.server.RequestDispatcher` (refusals, server
transactions, dialogs, the application's hooks); outgoing calls to the
:class:`~rcmlrouter.sip.dialer.Dialer`; client transactions to
:class:`~rcmlrouter.sip.client.ClientTransactions`. None of them imports this module: each
names what it needs from the endpoint as a protocol (``ServerHost``, ``ReceiverHost``,
``CallHost``).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import asdict

from rcmlrouter.errors import SipError
from rcmlrouter.sip.call import IncomingCall, IncomingRequest
from rcmlrouter.sip.client import CLIENT_TRANSACTIONS, ClientTransactions
from rcmlrouter.sip.dialer import Dialer
from rcmlrouter.sip.dialog import DialogKey
from rcmlrouter.sip.endpoint_stats import EndpointStats
from rcmlrouter.sip.guard import GuardScreen, GuardStats, SourceGuard
from rcmlrouter.sip.message import Header, SentResponse, SipRequest, SipResponse
from rcmlrouter.sip.outgoing import RING_TIMEOUT, OutgoingCall
from rcmlrouter.sip.overload import LoopLag
from rcmlrouter.sip.receiver import Receiver
from rcmlrouter.sip.response import build_response, reason_phrase
from rcmlrouter.sip.server import ALLOW, RequestDispatcher, RequestHandler
from rcmlrouter.sip.timers import TimerConfig, TimerHeap
from rcmlrouter.sip.transaction import Link, ServerKey, Transaction
from rcmlrouter.sip.transport import Source, StreamLimits, Transports
from rcmlrouter.sip.uri import SipUri, bare_host, format_host

MAX_CACHED_LINKS = 4096
OVERLOAD_LAG = 0.025  # seconds of event-loop lateness before new INVITEs are shed


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
        overload_lag: float = OVERLOAD_LAG,
    ) -> None:
        """``advertise``: the host put in Via and Contact (required behind NAT or when
        listening on a wildcard address); by default the bound address. ``overload_lag``:
        new INVITEs get a cheap 503 while the event loop runs this late (0: never)."""
        self.handler = handler
        self.user_agent = user_agent
        self.max_transactions = max_transactions
        self.config = timers or TimerConfig()
        self.stats = EndpointStats()
        self.timers: TimerHeap = None  # type: ignore[assignment]  # set in start()
        self._transports = Transports(advertise)
        self._clients = ClientTransactions(self._transports, self.link_to)
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
        self._requests = RequestDispatcher(self, self._server, self._pending, self._dialogs)
        self._receiver = Receiver(
            self, self._transports, self._clients, self._requests, self._dialogs, user_agent
        )
        self._transports.receiver = self._receiver
        self._draining = False
        self._links: dict[Source, Link] = {}
        self.guard: SourceGuard | None = None
        self._stream_calls = self._requests.stream_calls
        self.lag = LoopLag(overload_lag, backlog=self._transports.udp_backlog)

    async def start(self, listen: list[str]) -> None:
        self.timers = TimerHeap(asyncio.get_running_loop())
        self.lag.start(asyncio.get_running_loop())
        self._dialer.timers = self.timers
        self._links.clear()
        await self._transports.start(listen)

    async def stop(self) -> None:
        self.lag.stop()
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
    def draining(self) -> bool:
        """Stopping: new INVITEs and out-of-dialog OPTIONS (a proxy's probe) get 503."""
        return self._draining

    def secure(
        self,
        guard: SourceGuard | None = None,
        limits: StreamLimits | None = None,
        tls_server: ssl.SSLContext | None = None,
        tls_client: ssl.SSLContext | None = None,
    ) -> None:
        """Before start(): trusted sources and the flood guard, TCP/TLS connection limits,
        TLS contexts (``tls:`` listeners; connections we open to ``;transport=tls``)."""
        self.guard = guard
        screen = GuardScreen(guard, self._receiver) if guard and guard.active else None
        self._transports.screen = screen
        self._transports.limiter.limits = limits or StreamLimits()
        self._transports.tls_server = tls_server
        self._transports.connector.tls_client = tls_client

    def security_stats(self) -> dict[str, float]:
        """Counters for /metrics: guard verdicts, TCP/TLS limits, malformed input."""
        guard = self.guard.stats if self.guard is not None else GuardStats()
        counters: dict[str, float] = {**asdict(guard), **asdict(self._transports.stream_stats)}
        counters["calls_ended_by_connection"] = self._stream_calls.ended
        counters["parse_errors"] = self.stats.parse_errors
        counters["rejected_overload"] = self.stats.rejected_overload
        counters["guard_sources"] = self.guard.tracked_sources if self.guard else 0
        return counters

    @property
    def transaction_count(self) -> int:
        return len(self._server) + len(self._clients)

    @property
    def in_flight(self) -> int:
        """Transactions still waiting for a final response: the overload measure."""
        return self._requests.in_flight + self._clients.in_flight

    @property
    def overloaded(self) -> bool:
        """Draining, at ``max_transactions`` in flight, or the event loop running late: new
        INVITEs get 503."""
        return self.lag.overloaded or self._draining or self.in_flight >= self.max_transactions

    @property
    def dialog_count(self) -> int:
        return len(self._dialogs)

    def snapshot_stats(self) -> EndpointStats:
        self.stats.transactions = self.transaction_count
        self.stats.in_flight = self.in_flight
        self.stats.dialogs = self.dialog_count
        return self.stats

    # --- sending ---------------------------------------------------------------------------

    def _send(self, message: SipRequest | SipResponse | SentResponse, destination: Source) -> None:
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
        transport = via.transport.lower() if via.transport in ("UDP", "TLS") else "tcp"
        host = via.params.get("received") or bare_host(via.host)
        try:
            local_host, port = self._transports.local_address(transport, host)
        except SipError:  # the Via names a transport we do not listen on: our first listener
            transport, local_host, port = self._transports.addresses[0]
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"<sip:{format_host(local_host)}:{port}{suffix}>"

    def link_to(self, destination: Source) -> Link:
        """The (immutable) link of transactions towards ``destination``, shared by all of them:
        no closure, bound methods and Link per transaction."""
        link = self._links.get(destination)
        if link is not None:
            return link

        def send(message: object) -> None:
            assert isinstance(message, SipRequest | SipResponse | SentResponse)
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
            self._requests.settled()

    def _txn_done(self, txn: Transaction) -> None:
        if isinstance(txn, CLIENT_TRANSACTIONS):
            self._clients.forget(txn.key)
            return
        self._requests.forget(txn.key)

    def call_ended(self, call: IncomingCall) -> None:
        # let the call go now, not when its INVITE transaction ends (Timer I/H/L: 5-32 s later),
        # so a call's objects die young instead of crowding every young-generation collection
        if self._pending.get(call.txn.key) is call:
            del self._pending[call.txn.key]
        self._dialogs.pop(call.dialog.key, None)
        self._stream_calls.discard(call)

    # --- client side -----------------------------------------------------------------------

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

    async def send_request(
        self, request: SipRequest, destination: Source, *, branch: str | None = None
    ) -> SipResponse:
        """Out-of-dialog non-INVITE request (e.g. MESSAGE). Returns the final response (any
        status); raises :class:`SipError` 408 on timeout or transport failure. ``branch``: the
        Via branch to use (a request sent again as a retransmission), else a new one."""
        response = await self._clients.start(request, destination, branch=branch)
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


__all__ = [
    "ALLOW",
    "EndpointStats",
    "IncomingCall",
    "IncomingRequest",
    "RequestHandler",
    "SipEndpoint",
]
