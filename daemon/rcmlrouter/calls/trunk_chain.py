"""Trunk failover: a number dialled through its trunk and, when that trunk could not take the
call, through the next one its ``failover`` names (``[[trunks]] failover``), one try at a time.

A try fails over when it says the trunk or its carrier could not take the call, never the
callee: no response at all (not even 100 Trying) within the trunk's ``failover_timeout`` (the
try is cancelled) or by Timer B; a transport failure (refused TCP connection, ICMP unreachable,
DNS: the SIP core's local 503); a 408, 500, 502, 503 or 504 from the trunk. Anything else ends
the chain: a 2xx, 486, 404, 480, any other 4xx, a 6xx, any final response after a 180 or 183
(the callee was reached), and the owner's cancel. The ``timeout`` is overall: each try rings for
what is left of it, and no try starts with less than :data:`MIN_TRY` left. Each try is logged
with its trunk; each failover counts in ``rcmlrouter_trunk_failovers_total``.

The owner (a ``<Dial>`` noun, ``calls/dialed_leg.py``; an API call, ``calls/outbound_call.py``)
says how a try is placed (``start``: the trunk's URI, number format and credentials), sees each
try as it starts (``on_try``) and gets the last one from :attr:`TrunkChain.result`. An API call
also gives ``slot``: a try on the next trunk waits for that trunk's pacing slot (its ``cps`` is
never exceeded), within the overall timeout. A target without a trunk (a SIP URI, no
``trunks``) is a chain of one try.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import structlog

from rcmlrouter import metrics
from rcmlrouter.config import TrunkConfig
from rcmlrouter.errors import SipError
from rcmlrouter.sip.message import SipResponse
from rcmlrouter.sip.outgoing import OutgoingCall

log = structlog.get_logger(__name__)

FAILOVER_STATUSES = frozenset({408, 500, 502, 503, 504})
MIN_TRY = 1.0  # seconds: with less left of the timeout no further trunk is tried

StartTry = Callable[[TrunkConfig | None, float], OutgoingCall]  # (trunk, ring timeout) -> INVITE
TrunkSlot = Callable[[TrunkConfig, float], Awaitable[bool]]  # (trunk, deadline) -> slot in time


def failover_reason(call: OutgoingCall, reached: bool) -> str | None:
    """Why the finished try ``call`` fails over (the metric's label); None when it does not
    (``reached``: a 180/183 came, the callee's answer is final)."""
    if call.answered or reached or not call.result.done():
        return None
    cause = call.ended.result() if call.ended.done() else None
    status = call.result.result().status
    if cause == "transport-error":
        return "transport"
    if cause == "cancel" or status not in FAILOVER_STATUSES:
        return None
    if cause == "timeout":  # a local 408: Timer B (a ring timeout leaves no time to fail over)
        return "no-response"
    return str(status)


class TrunkChain:
    """The tries of one dialled target; :attr:`call` is the current try, :attr:`result` gets
    the last one once its final response came (answered or not)."""

    def __init__(
        self,
        trunks: Sequence[TrunkConfig],
        start: StartTry,
        timeout: float,
        *,
        on_try: Callable[[OutgoingCall], None] | None = None,
        progress: Callable[[SipResponse], None] | None = None,
        slot: TrunkSlot | None = None,
    ) -> None:
        self.trunks = tuple(trunks)
        self.timeout = timeout
        self.call: OutgoingCall | None = None
        self.trunk: TrunkConfig | None = None
        self.result: asyncio.Future[OutgoingCall] = asyncio.get_running_loop().create_future()
        self._start = start
        self._on_try = on_try
        self._progress = progress
        self._slot = slot
        self._deadline = 0.0
        self._stopped = False
        self._reached = False
        self._silent = False  # the current try was cancelled by its failover_timeout
        self._task: asyncio.Task[None] | None = None

    def start(self) -> OutgoingCall:
        """The first try, now (its :class:`SipError` is the caller's); the rest in a task."""
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self.timeout
        call = self._try(self.trunks[0] if self.trunks else None, self.timeout, 1)
        self._task = loop.create_task(self._run(), name="trunk-chain")
        return call

    def stop(self) -> None:
        """No further try (the current one goes on: the owner cancels or hangs it up)."""
        self._stopped = True
        if self._task is not None and self.call is not None and self.call.result.done():
            self._task.cancel()  # between tries (waiting for a slot): the last try is the result

    def cancel(self, reason: str | None = None) -> None:
        """No further try, and the current one is cancelled (no-op once answered)."""
        self.stop()
        if self.call is not None:
            self.call.cancel(reason)

    # -- the tries ---------------------------------------------------------------------------

    def _try(self, trunk: TrunkConfig | None, ring_timeout: float, number: int) -> OutgoingCall:
        call = self._start(trunk, ring_timeout)
        self.call, self.trunk = call, trunk
        self._reached = self._silent = False
        call.on_progress(self._on_progress)
        if self._on_try is not None:
            self._on_try(call)
        if trunk is not None:
            log.info("dial.trunk_try", trunk=trunk.name, attempt=number, sip_call_id=call.call_id)
        return call

    def _on_progress(self, response: SipResponse) -> None:
        self._reached = True  # a 180/183 (the SIP core passes on no 100): the callee is reached
        if self._progress is not None:
            self._progress(response)

    async def _run(self) -> None:
        try:
            for index, trunk in enumerate(self.trunks[1:], start=2):
                if not await self._fails_over(trunk):
                    return
                left = self._deadline - asyncio.get_running_loop().time()
                try:
                    self._try(trunk, left, index)
                except SipError as exc:  # a trunk that cannot be dialled: the last try stands
                    log.warning("dial.trunk_not_dialled", trunk=trunk.name, error=exc.reason)
                    return
            if self.call is not None:
                await asyncio.wait((self.call.result,))
        except asyncio.CancelledError:
            pass  # stop() between tries
        finally:
            if self.call is not None and not self.result.done():
                self.result.set_result(self.call)

    async def _fails_over(self, nxt: TrunkConfig) -> bool:
        """Wait for the current try's end; whether ``nxt`` gets the call (its slot taken)."""
        call, trunk = self.call, self.trunk
        assert call is not None and trunk is not None
        await self._settled(call, trunk)
        reason = "no-response" if self._silent else failover_reason(call, self._reached)
        loop = asyncio.get_running_loop()
        if reason is None or self._stopped or self._deadline - loop.time() < MIN_TRY:
            return False
        if self._slot is not None and not await self._slot(nxt, self._deadline - MIN_TRY):
            log.warning("dial.trunk_no_slot", trunk=nxt.name, failed=trunk.name, reason=reason)
            return False
        if self._stopped or self._deadline - loop.time() < MIN_TRY:
            return False
        status = call.result.result().status
        log.warning(
            "dial.trunk_failover", trunk=trunk.name, reason=reason, sip_status=status, next=nxt.name
        )
        metrics.TRUNK_FAILOVERS.labels(trunk.name, reason).inc()
        return True

    async def _settled(self, call: OutgoingCall, trunk: TrunkConfig) -> None:
        """Until the try's final response; a try that hears nothing within the trunk's
        ``failover_timeout`` is cancelled then (with time left for the next trunk)."""
        loop = asyncio.get_running_loop()
        timer = None
        wait = trunk.failover_timeout
        if 0 < wait < self._deadline - loop.time() - MIN_TRY:
            timer = loop.call_later(wait, self._no_response, call)
        try:
            await asyncio.wait((call.result,))
        finally:
            if timer is not None:
                timer.cancel()

    def _no_response(self, call: OutgoingCall) -> None:
        if call is self.call and not (call.responded or call.result.done() or self._stopped):
            self._silent = True
            call.time_out()  # a local 408, as Timer B would say (the last try's, if it stays)


__all__ = ["FAILOVER_STATUSES", "MIN_TRY", "TrunkChain", "failover_reason"]
