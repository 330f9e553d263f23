"""The INVITE client transaction (RFC 3261 §17.1.1 with RFC 6026's Accepted state), sans-I/O.

Calling → Proceeding (1xx) → Accepted (2xx, Timer M) / Completed (3xx-6xx, ACK sent here, Timer
D) → Terminated. Every 2xx, the first and those received in Accepted (retransmissions, other
forks), goes to the transaction user, which ACKs it: the ACK for a 2xx is a new transaction of
the dialog. The non-2xx ACK reuses the INVITE's branch and is repeated for each retransmitted
final response.

Timer B only runs in Calling (no response at all); a transaction in Proceeding waits for its
final response as long as the callee rings: the transaction user bounds that (CANCEL), and
:meth:`InviteClientTransaction.cancel_sent` starts the 64*T1 wait for the final response after a
CANCEL (§9.1).
"""

from __future__ import annotations

from collections.abc import Callable

from rcmlrouter.sip.message import SipRequest, SipResponse
from rcmlrouter.sip.transaction import Link, ServerKey, State, Transaction

ResponseCallback = Callable[[SipResponse | None], None]
_OPEN = (State.CALLING, State.PROCEEDING)


class InviteClientTransaction(Transaction):
    """§17.1.1: Timers A (retransmit, UDP), B (timeout), D (linger after non-2xx), M (RFC 6026).

    ``on_result(response)``: the first final response, then every 2xx received in Accepted;
    ``on_result(None)``: Timer B, transport failure, or no final response 64*T1 after CANCEL.
    ``on_provisional(response)``: each 1xx while Calling or Proceeding.
    """

    __slots__ = ("_ack", "on_provisional", "on_result", "request", "transport_failed")

    def __init__(
        self,
        key: ServerKey,
        link: Link,
        request: SipRequest,
        on_result: ResponseCallback,
        on_provisional: Callable[[SipResponse], None],
    ) -> None:
        super().__init__(key, link)
        self.request = request
        self.on_result = on_result
        self.on_provisional = on_provisional
        self.state = State.CALLING
        self._ack: SipRequest | None = None
        self.transport_failed = False

    def start(self) -> None:
        self.send(self.request)
        if not self.reliable:
            self._start(self.config.t1, lambda: self._timer_a(self.config.t1))
        self._start(self.config.timeout, self._timer_b)

    def _timer_a(self, interval: float) -> None:
        if self.state is State.CALLING:  # §17.1.1.2: doubling, no T2 cap for INVITE
            self.send(self.request)
            self._start(2 * interval, lambda: self._timer_a(2 * interval))

    def _timer_b(self) -> None:
        if self.state in _OPEN:
            self._give_up()

    def _give_up(self) -> None:
        self.on_result(None)
        self.terminate()

    def cancel_sent(self) -> None:
        """A CANCEL went out: without a final response within 64*T1 the INVITE is given up."""
        if self.state in _OPEN:
            self._start(self.config.timeout, self._timer_b)

    def on_transport_error(self) -> None:
        if self.state in _OPEN:
            self.transport_failed = True
            self._give_up()

    def on_response(self, response: SipResponse) -> None:
        status = response.status
        if status < 200:
            if self.state in _OPEN:
                if self.state is State.CALLING:
                    self.state = State.PROCEEDING
                    self._stop_timers()  # Timers A and B; the TU bounds the ringing
                self.on_provisional(response)
            return
        if status < 300:
            self._on_2xx(response)
            return
        if self.state is State.COMPLETED and self._ack is not None:
            self.send(self._ack)  # the final response was retransmitted: our ACK was lost
            return
        if self.state not in _OPEN:
            return
        self._stop_timers()
        self.state = State.COMPLETED
        self._settle()
        self._ack = build_non2xx_ack(self.request, response)
        self.send(self._ack)
        self._start(0.0 if self.reliable else self.config.timeout, self.terminate)  # Timer D
        self.on_result(response)

    def _on_2xx(self, response: SipResponse) -> None:
        if self.state is State.ACCEPTED:
            self.on_result(response)  # RFC 6026 §8.4: passed to the TU, which re-ACKs
            return
        if self.state not in _OPEN:
            return
        self._stop_timers()
        self.state = State.ACCEPTED
        self._settle()
        self._start(self.config.timeout, self.terminate)  # Timer M
        self.on_result(response)


def build_non2xx_ack(invite: SipRequest, response: SipResponse) -> SipRequest:
    """§17.1.1.3: the ACK for a non-2xx final response (same branch, To from the response)."""
    headers = [("Via", invite.get("Via") or "")]
    for name in ("Route", "From", "Call-ID"):
        headers.extend((name, v) for v in invite.get_all(name))
    headers.append(("To", response.get("To") or ""))
    headers.append(("CSeq", f"{invite.cseq[0]} ACK"))
    headers.append(("Max-Forwards", "70"))
    return SipRequest("ACK", invite.uri, headers)


def build_cancel(invite: SipRequest, reason: str | None = None) -> SipRequest:
    """§9.1: CANCEL of a pending INVITE: its Request-URI, top Via (so the same branch), Route,
    From, To, Call-ID and CSeq number. ``reason`` is a ready ``Reason`` value (RFC 3326)."""
    headers = [("Via", invite.get("Via") or "")]
    for name in ("Route", "From", "To", "Call-ID"):
        headers.extend((name, v) for v in invite.get_all(name))
    headers.append(("CSeq", f"{invite.cseq[0]} CANCEL"))
    headers.append(("Max-Forwards", "70"))
    if reason:
        headers.append(("Reason", reason))
    return SipRequest("CANCEL", invite.uri, headers)


__all__ = ["InviteClientTransaction", "build_cancel", "build_non2xx_ack"]
