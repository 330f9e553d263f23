"""RFC 3261 §17 transaction state machines (with RFC 6026's Accepted state), sans-I/O.

A transaction is given a ``send`` callable (already bound to the peer), a :class:`Timers`
source, and whether its transport is reliable. It never touches sockets or the event loop.
Terminated transactions call ``on_terminated`` so the owner can drop them from its table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from rcmlrouter.sip.message import SentResponse, SipMessage, SipRequest, SipResponse
from rcmlrouter.sip.timers import Timer, TimerConfig, Timers
from rcmlrouter.sip.uri import Via

MAGIC_COOKIE = "z9hG4bK"

Send = Callable[[SipMessage | SentResponse], None]
ServerKey = tuple[str, ...]


class State(Enum):
    TRYING = "trying"
    CALLING = "calling"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


def server_key(request: SipRequest, via: Via) -> ServerKey:
    """RFC 3261 §17.2.3 matching key; ACK maps to its INVITE. Pre-3261 peers use §17.2.3's
    fallback (Call-ID, From tag, CSeq number, top Via)."""
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    if branch.startswith(MAGIC_COOKIE):
        return (branch, via.sent_by, method)
    from_tag = request.from_addr.tag or ""
    return ("rfc2543", request.call_id, from_tag, str(request.cseq[0]), via.sent_by, method)


@dataclass(frozen=True, slots=True)
class Link:
    """What a transaction needs from its owner: a bound sender, timers and settings."""

    send: Send
    timers: Timers
    config: TimerConfig
    reliable: bool
    on_terminated: Callable[[Transaction], None]
    on_settled: Callable[[Transaction], None] | None = None  # first final response or end


class Transaction:
    """Common plumbing: state, timers, termination callback."""

    __slots__ = ("_timers", "config", "key", "link", "reliable", "send", "settled", "state")

    def __init__(self, key: ServerKey, link: Link) -> None:
        self.key = key
        self.link = link
        self.send = link.send
        self.config = link.config
        self.reliable = link.reliable
        self.state = State.TRYING
        self.settled = False
        self._timers: list[Timer] = []

    def _settle(self) -> None:
        """The transaction is no longer in flight (final response sent/received, or ended)."""
        if not self.settled:
            self.settled = True
            if self.link.on_settled is not None:
                self.link.on_settled(self)

    def _start(self, delay: float, callback: Callable[[], None]) -> None:
        self._timers.append(self.link.timers.schedule(delay, callback))

    def _stop_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def on_retransmit(self) -> None:
        """The request arrived again; server transactions repeat their last response."""

    def terminate(self) -> None:
        if self.state is State.TERMINATED:
            return
        self.state = State.TERMINATED
        self._stop_timers()
        self._settle()
        self.link.on_terminated(self)


def _released(txn: Transaction) -> RuntimeError:
    return RuntimeError(f"{type(txn).__name__}: the request is released at the final response")


class InviteServerTransaction(Transaction):
    """§17.2.1 + RFC 6026: Proceeding → Accepted (2xx) / Completed (3xx-6xx) → Confirmed."""

    __slots__ = ("_request", "last_response", "on_timeout", "repeat_2xx")

    def __init__(self, key: ServerKey, link: Link, request: SipRequest) -> None:
        super().__init__(key, link)
        self._request: SipRequest | None = request
        self.state = State.PROCEEDING
        self.last_response: SentResponse | None = None
        self.on_timeout: Callable[[], None] | None = None
        # a re-INVITE: its 2xx is sent again (T1 doubling to T2) until ack_2xx() or Timer L,
        # the UAS core's duty (RFC 3261 §13.3.1.4) done here, as IncomingCall does for the first
        self.repeat_2xx = False

    @property
    def request(self) -> SipRequest:
        """The INVITE, until the final response (a lingering transaction keeps no request)."""
        if self._request is None:
            raise _released(self)
        return self._request

    def respond(self, response: SipResponse) -> None:
        if self.state is not State.PROCEEDING:
            return
        self.last_response = sent = SentResponse(response)
        self.send(sent)
        if response.status < 200:
            return
        self._request = None  # lingering for Timer L/H needs only the last response
        self._settle()
        if response.status < 300:
            self.state = State.ACCEPTED
            self._start(self.config.timeout, self.terminate)  # Timer L
            if self.repeat_2xx and not self.reliable:
                self._start(self.config.t1, lambda: self._repeat_2xx(self.config.t1))
            return
        self.state = State.COMPLETED
        if not self.reliable:
            self._start(self.config.t1, lambda: self._timer_g(self.config.t1))
        self._start(self.config.timeout, self._timer_h)

    def trying_after(self, delay: float, trying: Callable[[], SipResponse]) -> None:
        """§17.2.1: send ``trying()`` (a 100) after ``delay`` unless a response went out
        first. A transaction timer: cancelled when the transaction ends."""

        def fire() -> None:
            if self.state is State.PROCEEDING and self.last_response is None:
                self.respond(trying())

        self._start(delay, fire)

    def _timer_g(self, interval: float) -> None:
        if self.state is State.COMPLETED and self.last_response is not None:
            self.send(self.last_response)
            nxt = min(2 * interval, self.config.t2)
            self._start(nxt, lambda: self._timer_g(nxt))

    def _repeat_2xx(self, interval: float) -> None:
        if self.repeat_2xx and self.state is State.ACCEPTED and self.last_response is not None:
            self.send(self.last_response)
            nxt = min(2 * interval, self.config.t2)
            self._start(nxt, lambda: self._repeat_2xx(nxt))

    def ack_2xx(self) -> None:
        """The ACK of our 2xx arrived (a new transaction of its own): stop repeating it."""
        self.repeat_2xx = False

    def _timer_h(self) -> None:
        if self.on_timeout is not None:
            self.on_timeout()
        self.terminate()

    def on_retransmit(self) -> None:
        """The INVITE arrived again: repeat the last response (provisional or final)."""
        if self.last_response is not None and self.state in (
            State.PROCEEDING,
            State.COMPLETED,
            State.ACCEPTED,
        ):
            self.send(self.last_response)

    def on_ack(self) -> bool:
        """An ACK matched this transaction. True when absorbed (non-2xx final)."""
        if self.state is State.COMPLETED:
            self.state = State.CONFIRMED
            self._stop_timers()
            self._start(0.0 if self.reliable else self.config.t4, self.terminate)  # Timer I
            return True
        return self.state is State.CONFIRMED


class NonInviteServerTransaction(Transaction):
    """§17.2.2: Trying → Proceeding → Completed (Timer J) → Terminated."""

    __slots__ = ("_request", "last_response")

    def __init__(self, key: ServerKey, link: Link, request: SipRequest) -> None:
        super().__init__(key, link)
        self._request: SipRequest | None = request
        self.last_response: SentResponse | None = None

    @property
    def request(self) -> SipRequest:
        """The request, until the final response (a lingering transaction keeps no request)."""
        if self._request is None:
            raise _released(self)
        return self._request

    def respond(self, response: SipResponse) -> None:
        if self.state in (State.COMPLETED, State.TERMINATED):
            return
        self.last_response = sent = SentResponse(response)
        self.send(sent)
        if response.status < 200:
            self.state = State.PROCEEDING
            return
        self._request = None  # lingering for Timer J needs only the last response
        self.state = State.COMPLETED
        self._settle()
        self._start(0.0 if self.reliable else self.config.timeout, self.terminate)  # Timer J

    def on_retransmit(self) -> None:
        if self.last_response is not None and self.state is not State.TERMINATED:
            self.send(self.last_response)


ResponseCallback = Callable[[SipResponse | None], None]


def _no_result(response: SipResponse | None) -> None:
    """A finished client transaction's result callback: later responses are retransmissions."""


class NonInviteClientTransaction(Transaction):
    """§17.1.2: Timers E (retransmit), F (timeout), K (linger). ``on_result(None)`` = timeout."""

    __slots__ = ("_request", "on_result")

    def __init__(
        self, key: ServerKey, link: Link, request: SipRequest, on_result: ResponseCallback
    ) -> None:
        super().__init__(key, link)
        self._request: SipRequest | None = request
        self.on_result = on_result

    @property
    def request(self) -> SipRequest:
        """The request, until the final response (Timer K's linger keeps nothing of it)."""
        if self._request is None:
            raise _released(self)
        return self._request

    def _release(self) -> None:
        """Done with the request and the result callback (which holds the caller's future and
        through it the response): lingering for Timer K needs neither."""
        self._request = None
        self.on_result = _no_result

    def start(self) -> None:
        self.send(self.request)
        if not self.reliable:
            self._start(self.config.t1, lambda: self._timer_e(self.config.t1))
        self._start(self.config.timeout, self._timer_f)

    def _timer_e(self, interval: float) -> None:
        if self.state in (State.TRYING, State.PROCEEDING):
            self.send(self.request)
            nxt = min(2 * interval, self.config.t2)
            if self.state is State.PROCEEDING:
                nxt = self.config.t2
            self._start(nxt, lambda: self._timer_e(nxt))

    def _timer_f(self) -> None:
        if self.state in (State.TRYING, State.PROCEEDING):
            self.on_result(None)
            self.terminate()

    def on_response(self, response: SipResponse) -> None:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return
        if response.status < 200:
            self.state = State.PROCEEDING
            return
        self.state = State.COMPLETED
        self._stop_timers()
        self._settle()
        self.on_result(response)
        self._release()
        self._start(0.0 if self.reliable else self.config.t4, self.terminate)  # Timer K

    def on_transport_error(self) -> None:
        if self.state in (State.TRYING, State.PROCEEDING):
            self.on_result(None)
            self.terminate()
