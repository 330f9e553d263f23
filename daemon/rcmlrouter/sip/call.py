"""The application-facing objects of a server transaction: IncomingRequest and IncomingCall."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from rcmlrouter.sip.dialog import Dialog
from rcmlrouter.sip.message import Header, SipResponse
from rcmlrouter.sip.response import Responder, reason_phrase
from rcmlrouter.sip.response import reason_header as build_reason
from rcmlrouter.sip.timers import Timer, TimerConfig, Timers
from rcmlrouter.sip.transaction import InviteServerTransaction, NonInviteServerTransaction
from rcmlrouter.sip.transport import Source

END_CAUSES = ("remote-bye", "cancel", "local-bye", "ack-timeout", "rejected", "transport-error")


class CallHost(Responder, Protocol):
    """What calls need from the endpoint: its responses
    (:class:`~rcmlrouter.sip.response.Responder`), timers, in-dialog requests, and word when a
    call ends."""

    @property
    def timers(self) -> Timers: ...

    @property
    def config(self) -> TimerConfig: ...

    def send_in_dialog(
        self, call: IncomingCall, method: str, headers: list[Header], body: bytes
    ) -> asyncio.Future[SipResponse | None]: ...

    def call_ended(self, call: IncomingCall) -> None: ...


class IncomingRequest:
    """A server transaction handed to the application (a non-INVITE request, or a re-INVITE
    given to an ``on_reinvite`` callback); respond exactly once."""

    __slots__ = ("_host", "_to_tag", "_txn", "request", "source")

    def __init__(
        self,
        host: CallHost,
        txn: NonInviteServerTransaction | InviteServerTransaction,
        source: Source,
        to_tag: str | None,
    ) -> None:
        self._host = host
        self._txn = txn
        self._to_tag = to_tag
        self.request = txn.request
        self.source = source

    def respond(
        self,
        status: int,
        reason: str | None = None,
        *,
        headers: list[Header] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> None:
        response = self._host.make_response(
            self.request,
            status,
            reason,
            to_tag=self._to_tag,
            headers=headers,
            body=body,
            content_type=content_type,
        )
        self._txn.respond(response)


class IncomingCall:
    """An INVITE server transaction and the dialog it creates."""

    __slots__ = (
        "_ack_waiter",
        "_bye",
        "_host",
        "_in_dialog",
        "_reinvite",
        "_retransmit",
        "answered",
        "call_id",
        "dialog",
        "ended",
        "local_sdp",
        "remote_sdp",
        "reply_to",
        "request",
        "source",
        "txn",
    )

    def __init__(
        self,
        host: CallHost,
        txn: InviteServerTransaction,
        source: Source,
        reply_to: Source,
        dialog: Dialog,
    ) -> None:
        self._host = host
        self.reply_to = reply_to
        self.txn = txn
        self.request = txn.request
        self.source = source
        self.call_id = self.request.call_id
        self.dialog = dialog
        self.remote_sdp: bytes | None = self.request.body or None
        self.local_sdp: bytes | None = None
        self.answered = False
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._ack_waiter: asyncio.Future[bool] | None = None
        self._retransmit: Timer | None = None
        self._bye: asyncio.Future[None] | None = None
        self._in_dialog: Callable[[IncomingRequest], None] | None = None
        self._reinvite: Callable[[IncomingRequest], None] | None = None

    @property
    def local_tag(self) -> str:
        return self.dialog.local_tag

    def finish(self, cause: str) -> None:
        """Resolve ``ended`` once and release the dialog.

        The application's callbacks are dropped: they are usually bound methods of an object
        that holds this call, a reference cycle only the cycle collector would free (and it
        runs rarely on a big heap). Without them the call is freed as soon as it is let go.
        """
        if self.ended.done():
            return
        if self._retransmit is not None:
            self._retransmit.cancel()
        if self._ack_waiter is not None and not self._ack_waiter.done():
            self._ack_waiter.set_result(False)
        self._in_dialog = self._reinvite = None
        self.ended.set_result(cause)
        self._host.call_ended(self)

    def _final_sent(self) -> bool:
        return (
            self.answered
            or self.ended.done()
            or (self.txn.last_response is not None and self.txn.last_response.status >= 200)
        )

    def ring(self, status: int = 180, reason: str = "Ringing") -> None:
        self.progress(status, reason=reason)

    def progress(
        self, status: int = 183, sdp: bytes | None = None, *, reason: str | None = None
    ) -> None:
        """A provisional response (180, 183 with SDP for early media...) before the final one."""
        if self._final_sent():
            return
        response = self._host.make_response(
            self.request,
            status,
            reason,
            to_tag=self.local_tag,
            body=sdp or b"",
            content_type="application/sdp" if sdp else None,
        )
        self.txn.respond(response)

    def reject(
        self,
        status: int,
        reason: str | None = None,
        *,
        reason_header: str | None = None,
        headers: list[Header] | None = None,
    ) -> None:
        """Final non-2xx; ``reason_header`` → ``Reason: SIP;cause=N;text="..."``."""
        if self._final_sent():
            return
        extra = list(headers or [])
        if reason_header is not None:
            extra.append(build_reason(status, reason_header))
        response = self._host.make_response(
            self.request, status, reason, to_tag=self.local_tag, headers=extra
        )
        self.txn.respond(response)
        self.finish("rejected")

    def cancel(self) -> None:
        """CANCEL arrived for the pending INVITE: 487, ``ended`` = "cancel"."""
        if self._final_sent():
            return
        self.txn.respond(self._host.make_response(self.request, 487, None, to_tag=self.local_tag))
        self.finish("cancel")

    async def answer(self, sdp: bytes) -> bool:
        """200 OK with SDP, retransmitted (T1 doubling to T2) until ACK or 64*T1.

        True when ACKed. False when the ACK never came (a BYE is sent, ``ended`` =
        "ack-timeout") or the call ended meanwhile.
        """
        if self._final_sent():
            return False
        self.answered = True
        self.local_sdp = sdp
        response = self._host.make_response(
            self.request, 200, "OK", to_tag=self.local_tag, body=sdp, content_type="application/sdp"
        )
        self._ack_waiter = asyncio.get_running_loop().create_future()
        self.txn.respond(response)
        config = self._host.config
        self._schedule_2xx(response, config.t1, config.t1)
        acked = await asyncio.shield(self._ack_waiter)
        if not acked and not self.ended.done():
            await self._send_bye("ack-timeout")
        return acked

    def _schedule_2xx(self, response: SipResponse, interval: float, elapsed: float) -> None:
        config = self._host.config
        if elapsed >= config.timeout:
            self._retransmit = self._host.timers.schedule(interval, self._ack_timeout)
            return

        def fire() -> None:
            if self._ack_waiter is not None and not self._ack_waiter.done():
                self._host.resend(response, self.reply_to)
                nxt = min(2 * interval, config.t2)
                self._schedule_2xx(response, nxt, elapsed + nxt)

        self._retransmit = self._host.timers.schedule(interval, fire)

    def _ack_timeout(self) -> None:
        if self._ack_waiter is not None and not self._ack_waiter.done():
            self._ack_waiter.set_result(False)

    def on_ack(self, sdp: bytes = b"") -> None:
        """The ACK of our 200 OK; after a late offer (INVITE without SDP) ``sdp`` is the
        caller's answer, kept as ``remote_sdp``."""
        if sdp and self.remote_sdp is None:
            self.remote_sdp = sdp
        if self._retransmit is not None:
            self._retransmit.cancel()
        if self._ack_waiter is not None and not self._ack_waiter.done():
            self._ack_waiter.set_result(True)

    async def hangup(self, reason: str | None = None) -> None:
        """End the call from our side; idempotent.

        Answered: BYE (after the ACK, per §15), waits for its response or 64*T1; ``ended`` =
        "local-bye". Not answered yet: 480 Temporarily Unavailable with ``reason`` as Reason
        header; ``ended`` = "rejected".
        """
        if self.ended.done():
            return
        if not self.answered:
            self.reject(480, reason_header=reason or "hangup before answer")
            return
        if self._ack_waiter is not None and not await asyncio.shield(self._ack_waiter):
            await asyncio.shield(self.ended)
            return
        await self._send_bye("local-bye", reason)

    async def _send_bye(self, cause: str, reason: str | None = None) -> None:
        if self._bye is None:
            headers: list[Header] = []
            if reason:
                headers.append(build_reason(200, reason))
            self._bye = asyncio.ensure_future(self._bye_exchange(cause, headers))
        await asyncio.shield(self._bye)

    async def _bye_exchange(self, cause: str, headers: list[Header]) -> None:
        result = self._host.send_in_dialog(self, "BYE", headers, b"")
        try:
            await result
        finally:
            self.finish(cause)

    def on_in_dialog_request(self, callback: Callable[[IncomingRequest], None]) -> None:
        self._in_dialog = callback

    def on_reinvite(self, callback: Callable[[IncomingRequest], None]) -> None:
        """Take the caller's re-INVITEs: the callback must ``respond`` once (200 with the SDP
        answer, 488, 491...). Without a callback they are answered with ``local_sdp``."""
        self._reinvite = callback

    def dispatch_reinvite(self, request: IncomingRequest) -> bool:
        if self._reinvite is None:
            return False
        self._reinvite(request)
        return True

    def dispatch_in_dialog(self, request: IncomingRequest) -> bool:
        """Give REFER/NOTIFY/INFO... to the application callback; False when there is none."""
        if self._in_dialog is None:
            return False
        self._in_dialog(request)
        return True

    def send_in_dialog(
        self, method: str, headers: list[Header], body: bytes = b""
    ) -> asyncio.Future[SipResponse | None]:
        """An in-dialog request to the caller (re-INVITE, INFO, NOTIFY...): the future gets the
        final response, None on timeout. A re-INVITE's 2xx is ACKed by the endpoint."""
        return self._host.send_in_dialog(self, method, headers, body)

    def send_notify(
        self, event: str, body: bytes, content_type: str, subscription_state: str
    ) -> None:
        """In-dialog NOTIFY (e.g. REFER progress as message/sipfrag); fire and forget."""
        headers: list[Header] = [
            ("Event", event),
            ("Subscription-State", subscription_state),
            ("Content-Type", content_type),
        ]
        self._host.send_in_dialog(self, "NOTIFY", headers, body)


__all__ = ["END_CAUSES", "IncomingCall", "IncomingRequest", "reason_phrase"]
