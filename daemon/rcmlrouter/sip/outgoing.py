"""The application-facing object of an INVITE we send: :class:`OutgoingCall` (the UAC call).

It mirrors :class:`~rcmlrouter.sip.call.IncomingCall`: futures and callbacks, no task of its
own. The endpoint's :class:`~rcmlrouter.sip.dialer.Dialer` creates it (``SipEndpoint.start_call``)
and carries its messages; the call decides: early and confirmed dialogs, ACK of 2xx (repeated
for retransmitted 2xx), CANCEL (§9.1, only once a provisional response came), one digest retry
on 401/407 (:mod:`rcmlrouter.sip.digest_retry`), BYE, and in-dialog requests from the callee.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from rcmlrouter.sip.auth import DigestCredentials
from rcmlrouter.sip.call import IncomingRequest
from rcmlrouter.sip.dialog import Dialog, DialogKey
from rcmlrouter.sip.digest_retry import CHALLENGE_HEADERS, digest_answer, next_request
from rcmlrouter.sip.invite_client import InviteClientTransaction
from rcmlrouter.sip.message import Header, SipRequest, SipResponse
from rcmlrouter.sip.response import build_response
from rcmlrouter.sip.response import reason_header as build_reason
from rcmlrouter.sip.timers import Timer, TimerConfig, Timers
from rcmlrouter.sip.transport import Source

OUTGOING_END_CAUSES = (
    "remote-bye",
    "local-bye",
    "cancel",
    "timeout",
    "transport-error",
    "rejected",
)
RING_TIMEOUT = 180.0  # RFC 3261 Timer C: a callee ringing longer than this is cancelled


class OutgoingHost(Protocol):
    """What an outgoing call needs from the endpoint (implemented by the Dialer)."""

    @property
    def timers(self) -> Timers: ...

    @property
    def config(self) -> TimerConfig: ...

    def send_invite(
        self, call: OutgoingCall, request: SipRequest, destination: Source
    ) -> InviteClientTransaction: ...

    def send_cancel(self, invite: SipRequest, destination: Source, reason: str | None) -> None: ...

    def send_ack(self, ack: SipRequest, destination: Source) -> None: ...

    def request_in_dialog(
        self, dialog: Dialog, via: Source, method: str, headers: list[Header], body: bytes
    ) -> asyncio.Future[SipResponse | None]: ...

    def hop(self, dialog: Dialog, via: Source) -> Source: ...

    def bind_dialog(self, call: OutgoingCall, old: DialogKey | None) -> None: ...

    def outgoing_ended(self, call: OutgoingCall) -> None: ...


class OutgoingCall:
    """One INVITE we sent and the dialog it creates (README, Development: outgoing calls).

    ``result`` resolves with the final response once (never an exception): the 2xx, the
    rejection (after the digest retry), or a local 408 (no response, or none by the ring
    timeout) / 487 (cancelled) / 503 (transport failure: a refused connection, an ICMP
    unreachable; DNS). ``ended`` resolves with one of :data:`OUTGOING_END_CAUSES`.
    ``answered`` is True once a 2xx was ACKed and the call was not cancelled meanwhile.
    """

    def __init__(
        self,
        host: OutgoingHost,
        request: SipRequest,
        *,
        credentials: DigestCredentials | None = None,
        ring_timeout: float = RING_TIMEOUT,
    ) -> None:
        loop = asyncio.get_running_loop()
        self._host = host
        self.request = request  # the INVITE; replaced by the authenticated one after 401/407
        self.call_id = request.call_id
        self.local_tag = request.from_addr.tag or ""
        self.destination: Source | None = None
        self.local_sdp: bytes | None = request.body or None
        self.remote_sdp: bytes | None = None
        self.answered = False
        self.result: asyncio.Future[SipResponse] = loop.create_future()
        self.ended: asyncio.Future[str] = loop.create_future()
        self._credentials = credentials
        self._auth: list[Header] = []
        self._txn: InviteClientTransaction | None = None
        self._dialog: Dialog | None = None
        self._ack: SipRequest | None = None
        self._provisional = False
        self._responded = False
        self._cancel_cause: str | None = None
        self._cancel_sent = False
        self._cancel_reason: str | None = None
        self._bye: asyncio.Future[None] | None = None
        self._ring_timer: Timer | None = host.timers.schedule(ring_timeout, self._ring_timeout)
        self._progress: Callable[[SipResponse], None] | None = None
        self._in_dialog: Callable[[IncomingRequest], None] | None = None
        self._reinvite: Callable[[IncomingRequest], None] | None = None

    # --- what the application uses --------------------------------------------------------

    @property
    def dialog(self) -> Dialog:
        """The early or confirmed dialog (once a response with a To tag came)."""
        if self._dialog is None:
            raise RuntimeError("the outgoing call has no dialog yet")
        return self._dialog

    @property
    def dialog_key(self) -> DialogKey | None:
        return self._dialog.key if self._dialog is not None else None

    @property
    def source(self) -> Source:
        """Where the INVITE went (the endpoint reuses it for in-dialog requests over TCP)."""
        if self.destination is None:
            raise RuntimeError("the outgoing call is not sent yet")
        return self.destination

    @property
    def responded(self) -> bool:
        """Any response came (100 Trying included): the next hop took the INVITE."""
        return self._responded

    def on_progress(self, callback: Callable[[SipResponse], None]) -> None:
        """``callback(response)`` for each provisional response but 100 (180, 183 + SDP...)."""
        self._progress = callback

    def on_in_dialog_request(self, callback: Callable[[IncomingRequest], None]) -> None:
        """REFER/NOTIFY/INFO/... from the callee; the callback must ``respond`` once."""
        self._in_dialog = callback

    def on_reinvite(self, callback: Callable[[IncomingRequest], None]) -> None:
        """A re-INVITE from the callee; the callback must ``respond`` once (200 + SDP answer,
        or 488/491...). Without a callback the offer we sent is the answer."""
        self._reinvite = callback

    def cancel(self, reason: str | None = None) -> None:
        """Stop ringing: ``ended`` = "cancel" and ``result`` a local 487 at once; the CANCEL
        goes out now or once a provisional response comes (§9.1). A 2xx crossing the CANCEL
        is ACKed and BYEd. No-op once answered or ended."""
        self._cancel("cancel", reason)

    def time_out(self) -> None:
        """Give up as the ring timeout does (a trunk's ``failover_timeout``): ``ended`` =
        "timeout", ``result`` a local 408 when nothing came (487 after a provisional one)."""
        self._cancel("timeout", "no answer")

    async def hangup(self, reason: str | None = None) -> None:
        """End the call; idempotent. Answered: BYE, awaits its response or 64*T1 (``ended`` =
        "local-bye"). Not answered: :meth:`cancel`, awaits ``ended``."""
        if self.ended.done():
            return
        if not self.answered:
            self.cancel(reason)
            await asyncio.shield(self.ended)
            return
        await self._send_bye("local-bye", reason)

    def send_in_dialog(
        self, method: str, headers: list[Header], body: bytes = b""
    ) -> asyncio.Future[SipResponse | None]:
        """An in-dialog request to the callee (re-INVITE, INFO, REFER, NOTIFY...): the future
        gets the final response, None on timeout. A re-INVITE's 2xx is ACKed by the endpoint."""
        assert self.destination is not None
        return self._host.request_in_dialog(self.dialog, self.destination, method, headers, body)

    # --- driven by the endpoint -----------------------------------------------------------

    def start(self, destination: Source) -> None:
        """Send the INVITE (the Dialer calls this once the destination is resolved)."""
        self.destination = destination
        if self._cancel_cause is not None:
            self._fail(487, "Request Terminated", self._cancel_cause)
            return
        self._txn = self._host.send_invite(self, self.request, destination)

    def fail(self, status: int, reason: str, cause: str) -> None:
        """No INVITE could be sent (DNS, no listener): local final response, ``ended``."""
        self._fail(status, reason, cause)

    def on_provisional(self, response: SipResponse) -> None:
        self._provisional = self._responded = True
        if self._cancel_cause is not None:  # also after the call ended for the application
            self._send_cancel()
        if response.status == 100 or self.ended.done():
            return
        if response.to_addr.tag and (
            self._dialog is None or self._dialog.remote_tag != response.to_addr.tag
        ):
            self._set_dialog(Dialog.from_uac_response(self.request, response))
        if response.body and response.content_type == "application/sdp":
            self.remote_sdp = response.body
        if self._progress is not None:
            self._progress(response)

    def on_result(self, response: SipResponse | None) -> None:
        self._responded = self._responded or response is not None
        if response is None:
            self._on_no_response()
        elif response.status < 300:
            self._on_2xx(response)
        elif self._retry_with_credentials(response):
            return
        else:
            self._settle(response)
            self.finish(self._cancel_cause or "rejected")

    def on_late_2xx(self, response: SipResponse) -> None:
        """A 2xx retransmitted after the INVITE transaction ended: ACK it again."""
        self._on_2xx(response)

    def on_ack(self) -> None:
        """An ACK for our 200 to a re-INVITE of the callee: nothing to stop."""

    def dispatch_in_dialog(self, request: IncomingRequest) -> bool:
        if self._in_dialog is None:
            return False
        self._in_dialog(request)
        return True

    def dispatch_reinvite(self, request: IncomingRequest) -> bool:
        if self._reinvite is None:
            return False
        self._reinvite(request)
        return True

    def finish(self, cause: str) -> None:
        """Resolve ``ended`` once and release the dialog (the endpoint calls it on BYE)."""
        if self.ended.done():
            return
        if self._ring_timer is not None:
            self._ring_timer.cancel()
            self._ring_timer = None
        if not self.result.done():
            self.result.set_result(self._local(487, "Request Terminated"))
        # the application's callbacks hold it (and it holds us): break the cycle, see
        # IncomingCall.finish
        self._progress = self._in_dialog = self._reinvite = None
        self.ended.set_result(cause)
        self._host.outgoing_ended(self)

    # --- internals -----------------------------------------------------------------------

    def _local(self, status: int, reason: str) -> SipResponse:
        return build_response(self.request, status, reason)

    def _settle(self, response: SipResponse) -> None:
        if self._ring_timer is not None:
            self._ring_timer.cancel()
            self._ring_timer = None
        if not self.result.done():
            self.result.set_result(response)

    def _fail(self, status: int, reason: str, cause: str) -> None:
        self._settle(self._local(status, reason))
        self.finish(cause)

    def _on_no_response(self) -> None:
        failed = self._txn is not None and self._txn.transport_failed
        if failed:
            self._fail(503, "Service Unavailable", self._cancel_cause or "transport-error")
        else:
            self._fail(408, "Request Timeout", self._cancel_cause or "timeout")

    def _set_dialog(self, dialog: Dialog) -> None:
        old = self._dialog.key if self._dialog is not None else None
        if self._dialog is not None:
            dialog.local_cseq = max(dialog.local_cseq, self._dialog.local_cseq)
        self._dialog = dialog
        self._host.bind_dialog(self, old)

    def _on_2xx(self, response: SipResponse) -> None:
        tag = response.to_addr.tag or ""
        if self._ack is not None:
            if self._dialog is not None and tag == self._dialog.remote_tag:
                assert self.destination is not None
                self._host.send_ack(self._ack, self._host.hop(self._dialog, self.destination))
            else:
                self._drop_fork(response)  # §13.2.2.4: a second fork answered: ACK and BYE
            return
        if self.ended.done():
            self._drop_fork(response)
            return
        self._set_dialog(Dialog.from_uac_response(self.request, response))
        self._ack = self._send_2xx_ack(self.dialog)
        self._settle(response)
        if self._cancel_cause is not None:  # the 2xx crossed our CANCEL
            self._start_bye(self._cancel_cause, [])
            return
        self.answered = True
        if response.body:
            self.remote_sdp = response.body

    def _send_2xx_ack(self, dialog: Dialog) -> SipRequest:
        assert self.destination is not None
        ack = dialog.build_request("ACK", "", self._auth, cseq=self.request.cseq[0])
        ack.headers.pop(0)  # the Via is stamped when sent
        self._host.send_ack(ack, self._host.hop(dialog, self.destination))
        return ack

    def _drop_fork(self, response: SipResponse) -> None:
        assert self.destination is not None
        fork = Dialog.from_uac_response(self.request, response)
        self._send_2xx_ack(fork)
        self._host.request_in_dialog(fork, self.destination, "BYE", [], b"")

    def _retry_with_credentials(self, response: SipResponse) -> bool:
        """401/407 with credentials: send the INVITE once more with the digest answer."""
        names = CHALLENGE_HEADERS.get(response.status)
        if names is None or self._credentials is None or self._auth or self.ended.done():
            return False
        if self._cancel_cause is not None or self.destination is None:
            return False
        answer = digest_answer(response, names, self.request, self._credentials)
        if answer is None:
            return False
        self._auth = [answer]
        self.request = next_request(self.request, self._auth)
        self._provisional = False
        self._txn = self._host.send_invite(self, self.request, self.destination)
        return True

    def _cancel(self, cause: str, reason: str | None = None) -> None:
        if self.answered or self.ended.done() or self._cancel_cause is not None:
            return
        self._cancel_cause = cause
        self._cancel_reason = build_reason(487, reason)[1] if reason else None
        if self._txn is None:
            return  # not sent yet: start() ends the call
        # The call ends now for the application (a ring timeout is "no answer" at the timeout,
        # a caller's CANCEL releases the leg at once); the INVITE transaction finishes in the
        # background: the CANCEL now, or (§9.1) once a provisional response comes, then the
        # 487 and its ACK; a 2xx crossing it is ACKed and BYEd. Nothing answered at all: a
        # ring timeout reports 408, as Timer B would have 32 s later.
        if self._provisional:
            self._send_cancel()
        if cause == "timeout" and not self._provisional:
            self._fail(408, "Request Timeout", cause)
        else:
            self._fail(487, "Request Terminated", cause)

    def _send_cancel(self) -> None:
        if self._txn is None or self.destination is None or self._txn.settled:
            return
        if self._cancel_sent:
            return  # once per INVITE (a retransmitted 180 asks again)
        self._cancel_sent = True
        self._host.send_cancel(self.request, self.destination, self._cancel_reason)
        self._txn.cancel_sent()

    def _ring_timeout(self) -> None:
        self._ring_timer = None
        self._cancel("timeout", "no answer")

    async def _send_bye(self, cause: str, reason: str | None = None) -> None:
        headers: list[Header] = [build_reason(200, reason)] if reason else []
        await asyncio.shield(self._start_bye(cause, headers))

    def _start_bye(self, cause: str, headers: list[Header]) -> asyncio.Future[None]:
        if self._bye is None:
            self._bye = asyncio.ensure_future(self._bye_exchange(cause, headers))
        return self._bye

    async def _bye_exchange(self, cause: str, headers: list[Header]) -> None:
        try:
            await self.send_in_dialog("BYE", headers)
        finally:
            self.finish(cause)


__all__ = ["OUTGOING_END_CAUSES", "RING_TIMEOUT", "OutgoingCall", "OutgoingHost"]
