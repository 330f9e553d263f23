"""The endpoint's side of outgoing calls: build the INVITE, resolve where it goes, carry the
messages of every :class:`~rcmlrouter.sip.outgoing.OutgoingCall` (its ``OutgoingHost``), keep
their dialogs findable, and run in-dialog re-INVITEs (an INVITE client transaction + the ACK of
its 2xx) for incoming and outgoing calls alike.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

from rcmlrouter.errors import SipError
from rcmlrouter.sip.auth import DigestCredentials
from rcmlrouter.sip.call import IncomingCall
from rcmlrouter.sip.client import ClientTransactions, new_branch
from rcmlrouter.sip.dialog import Dialog, DialogKey
from rcmlrouter.sip.invite_client import InviteClientTransaction, build_cancel
from rcmlrouter.sip.message import Header, SipRequest, SipResponse
from rcmlrouter.sip.outgoing import RING_TIMEOUT, OutgoingCall
from rcmlrouter.sip.resolver import Resolver, uri_destination
from rcmlrouter.sip.response import new_tag
from rcmlrouter.sip.timers import TimerConfig, Timers
from rcmlrouter.sip.transport import TRANSPORTS, Source, Transports
from rcmlrouter.sip.uri import NameAddr, format_host, parse_uri
from rcmlrouter.sip.via import via_value

Send = Callable[[SipRequest | SipResponse, Source], None]


class Dialer:
    """Starts outgoing calls; the ``OutgoingHost`` of each of them."""

    def __init__(
        self,
        transports: Transports,
        clients: ClientTransactions,
        dialogs: dict[DialogKey, IncomingCall | OutgoingCall],
        send: Send,
        config: TimerConfig,
        *,
        user_agent: str,
        allow: str,
    ) -> None:
        self._transports = transports
        self._clients = clients
        self._dialogs = dialogs
        self._send = send
        self.config = config
        self.user_agent = user_agent
        self.allow = allow
        self.timers: Timers = None  # type: ignore[assignment]  # set by the endpoint's start()
        self.resolver = Resolver()
        self.calls = 0  # outgoing calls not ended yet
        self._tasks: set[asyncio.Task[None]] = set()

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
        """See ``SipEndpoint.start_call``."""
        uri = parse_uri(target_uri)
        transport, host, port = destination or uri_destination(uri)
        request = build_invite(target_uri, from_uri, from_display, to_uri, headers or [], sdp)
        request.headers += [("User-Agent", self.user_agent), ("Allow", self.allow)]
        secret = DigestCredentials(*credentials) if credentials else None
        call = OutgoingCall(self, request, credentials=secret, ring_timeout=ring_timeout)
        self.calls += 1
        addresses = self.resolver.cached(host)
        if addresses is not None:
            self._start(call, transport, addresses, port)
            return call
        task = asyncio.get_running_loop().create_task(self._resolve(call, transport, host, port))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call

    async def _resolve(self, call: OutgoingCall, transport: str, host: str, port: int) -> None:
        try:
            addresses = await self.resolver.resolve(host)
        except SipError as exc:
            call.fail(exc.sip_status, "DNS Failure", "transport-error")
            return
        self._start(call, transport, addresses, port)

    def _start(self, call: OutgoingCall, transport: str, addresses: list[str], port: int) -> None:
        families = {":" in h for kind, h, _ in self._transports.addresses if kind == transport}
        usable = [a for a in addresses if (":" in a) in families]
        if not usable:
            call.fail(503, "Service Unavailable", "transport-error")  # no listener to send from
            return
        call.start((transport, usable[0], port))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    # --- OutgoingHost ----------------------------------------------------------------------

    def send_invite(
        self, call: OutgoingCall, request: SipRequest, destination: Source
    ) -> InviteClientTransaction:
        if request.get("Contact") is None:
            request.headers.append(("Contact", self.contact(destination)))
        return self._clients.start_invite(request, destination, call.on_result, call.on_provisional)

    def send_cancel(self, invite: SipRequest, destination: Source, reason: str | None) -> None:
        self._clients.start(build_cancel(invite, reason), destination, via=invite.get("Via"))

    def send_ack(self, ack: SipRequest, destination: Source) -> None:
        """Send the ACK of a 2xx (its own transaction: a new branch, stamped once)."""
        if ack.get("Via") is None:
            transport, host, _ = destination
            local_host, local_port = self._transports.local_address(transport, host)
            ack.headers.insert(
                0, ("Via", via_value(transport, local_host, local_port, new_branch()))
            )
        self._send(ack, destination)

    def hop(self, dialog: Dialog, via: Source) -> Source:
        """Where an in-dialog request goes: the first route or the remote target, over the
        call's TCP connection when it is the same peer; a host name not resolved yet (or an
        unusable one) falls back to where the INVITE went."""
        hop = dialog.next_hop()
        transport = (hop.params.get("transport") or via[0]).lower()
        if transport != "udp" and via[0] == transport and via in self._transports.connections:
            return via  # reuse the call's connection
        addresses = self.resolver.cached(hop.host)
        if not addresses or transport not in TRANSPORTS:
            return via
        return transport, addresses[0], hop.port or 5060

    def request_in_dialog(
        self, dialog: Dialog, via: Source, method: str, headers: list[Header], body: bytes
    ) -> asyncio.Future[SipResponse | None]:
        destination = self.hop(dialog, via)
        request = dialog.build_request(method, "", headers, body)
        request.headers.pop(0)  # the Via is stamped by the client transaction
        request.headers.insert(1, ("Contact", self.contact(destination)))
        if method == "INVITE":
            return self.reinvite(dialog, request, destination)
        return self._clients.start(request, destination)

    def bind_dialog(self, call: OutgoingCall, old: DialogKey | None) -> None:
        if old is not None and self._dialogs.get(old) is call:
            del self._dialogs[old]
        key = call.dialog_key
        if key is not None and not call.ended.done():
            self._dialogs[key] = call

    def outgoing_ended(self, call: OutgoingCall) -> None:
        self.calls -= 1
        key = call.dialog_key
        if key is not None and self._dialogs.get(key) is call:
            del self._dialogs[key]

    # --- shared ----------------------------------------------------------------------------

    def contact(self, destination: Source) -> str:
        transport, host, _ = destination
        local_host, port = self._transports.local_address(transport, host)
        suffix = ";transport=tcp" if transport == "tcp" else ""
        return f"<sip:{format_host(local_host)}:{port}{suffix}>"

    def reinvite(
        self, dialog: Dialog, request: SipRequest, destination: Source
    ) -> asyncio.Future[SipResponse | None]:
        """A re-INVITE in ``dialog``: INVITE client transaction; its 2xx (and each
        retransmission of it) is ACKed. The future gets the final response, None on timeout."""
        future: asyncio.Future[SipResponse | None] = asyncio.get_running_loop().create_future()
        if request.body and request.get("Content-Type") is None:
            request.headers.append(("Content-Type", "application/sdp"))
        acks: list[SipRequest] = []

        def on_result(response: SipResponse | None) -> None:
            if response is not None and response.status < 300:
                if not acks:
                    dialog.update_target(response)
                    ack = dialog.build_request("ACK", "", cseq=request.cseq[0])
                    ack.headers.pop(0)
                    acks.append(ack)
                self.send_ack(acks[0], destination)
            if not future.done():
                future.set_result(response)

        self._clients.start_invite(request, destination, on_result, lambda _: None)
        return future


def build_invite(
    target_uri: str,
    from_uri: str,
    from_display: str | None,
    to_uri: str | None,
    headers: list[Header],
    sdp: bytes | None,
) -> SipRequest:
    """A new dialog-creating INVITE (no Via or Contact yet: both depend on the transport)."""
    from_value = NameAddr(parse_uri(from_uri), from_display, {"tag": new_tag()})
    to_value = NameAddr(parse_uri(to_uri or target_uri))
    request = SipRequest(
        "INVITE",
        target_uri,
        [
            ("Max-Forwards", "70"),
            ("From", str(from_value)),
            ("To", str(to_value)),
            ("Call-ID", f"{secrets.token_hex(16)}@rcmlrouter"),
            ("CSeq", "1 INVITE"),
        ],
        sdp or b"",
    )
    request.headers.extend(headers)
    if sdp and request.get("Content-Type") is None:
        request.headers.append(("Content-Type", "application/sdp"))
    return request


__all__ = ["Dialer", "build_invite"]
