"""The call supervisor: every call task of the process, the registry of live calls, the drain.

``on_invite`` is the SIP endpoint's hook: an INVITE over ``sip.max_calls`` or during the drain
gets 503 with Retry-After; any other becomes a task running
:func:`~rcmlrouter.calls.inbound_call.run_inbound_call`. A call a transfer leaves running on a
dialed leg (:func:`~rcmlrouter.calls.transferred_call.run_transferred_call`) and a call placed
through the API (:func:`~rcmlrouter.calls.outbound_call.run_outbound_call`, from its 201 on) are
tasks here too.
Each task is a :class:`~rcmlrouter.calls.live_call.LiveCall` in the registry under its CallSid
(:meth:`CallSupervisor.live_call`) from its start to its end, and is cancelled when the far end
ends its call. The drain refuses new calls, waits for the running ones, then stops the rest.

Every call task runs with its live call as the executor's ``STEERING`` (``rcml/ports.py``): any
document a call runs can be redirected by live call control (``calls/live_control.py``), whatever
kind of call started it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Coroutine
from typing import Any

from rcmlrouter.calls.conference_leg import internal_join, run_conference_leg
from rcmlrouter.calls.dialed_leg import Dialer
from rcmlrouter.calls.inbound_call import run_inbound_call
from rcmlrouter.calls.live_call import LiveCall
from rcmlrouter.calls.outbound_call import DialSlots, OutboundCall
from rcmlrouter.calls.transferred_call import TransferredLeg, run_transferred_call
from rcmlrouter.calls.wiring import CallWiring, Handover
from rcmlrouter.errors import OverloadError
from rcmlrouter.rcml.model import Stream
from rcmlrouter.rcml.ports import STEERING
from rcmlrouter.services import Services
from rcmlrouter.sip.call import IncomingCall
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import CallRecord

STOP_WAIT = 5.0  # seconds the drain waits for stopped calls to end


class CallSupervisor:
    """Owns every call of the process."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.wiring = CallWiring(services, None, self)
        self.draining = False
        self._calls: dict[str, LiveCall] = {}
        self._inbound = 0

    def attach(self, dialer: Dialer) -> None:
        """Place ``<Dial>`` legs through ``dialer`` (the SIP endpoint, once built; before it
        listens). The endpoint takes INVITEs through this supervisor, so it comes after it."""
        self.wiring = CallWiring(self.services, dialer, self)

    @property
    def active(self) -> int:
        """Inbound calls in progress (what ``sip.max_calls`` limits)."""
        return self._inbound

    def live_call(self, call_sid: str) -> LiveCall | None:
        """The running call ``call_sid`` (inbound or transferred), if any."""
        return self._calls.get(call_sid)

    def start_stream(
        self, account_sid: str, call_sid: str, stream: Stream
    ) -> dict[str, str] | None:
        """``POST Calls/{CA}/Streams``: a one-way stream on the running call (None: no such
        live call of that account in this process); StreamRefusedError."""
        live = self._calls.get(call_sid)
        streams = live.streams if live is not None else None
        if streams is None or streams.account_sid != account_sid:
            return None
        return streams.start_stream(stream)

    def stop_stream(self, account_sid: str, call_sid: str, ref: str) -> dict[str, str] | None:
        """``POST Calls/{CA}/Streams/{MZ or name}`` Status=stopped; LookupError: no such
        stream on the running call."""
        live = self._calls.get(call_sid)
        streams = live.streams if live is not None else None
        if streams is None or streams.account_sid != account_sid:
            return None
        stopped = streams.stop_stream(ref)
        if stopped is None:
            raise LookupError(ref)
        return stopped

    def on_invite(self, call: IncomingCall) -> None:
        if self.draining or self._inbound >= self.services.config.sip.max_calls:
            error = OverloadError("draining" if self.draining else "too many calls")
            call.reject(
                503, headers=[("Retry-After", str(error.retry_after))], reason_header=error.reason
            )
            return
        join = internal_join(call)
        if join is not None:  # another node's caller joining a conference that lives here
            live = LiveCall(new_sid("CA"), inbound=True, status="ringing")
            self._start(live, run_conference_leg(call, join, live, self.wiring))
            return
        live = LiveCall(new_sid("CA"), inbound=True, status="ringing")
        self._start(live, run_inbound_call(call, live, self.wiring))

    def run_transferred(self, handover: Handover) -> None:
        """Run ``handover.document`` on the handed-over leg as a call of its own."""
        leg = TransferredLeg(handover, self.wiring)
        live = LiveCall(handover.leg.sid, inbound=False, status="in-progress")
        live.callbacks = handover.leg
        self._start(live, run_transferred_call(leg, handover.document, live))

    def run_outbound(self, record: CallRecord, slots: DialSlots) -> LiveCall:
        """Run the API call ``record`` (queued, with its request) from its pacing slot to its
        end, as one task (``calls/outbound_call.py``)."""
        live = LiveCall(record.sid, inbound=False)
        outbound = OutboundCall(record, live, self.wiring, slots)
        self._start(live, outbound.run())
        assert live.task is not None
        live.task.add_done_callback(outbound.on_task_done)
        return live

    async def drain(self, grace: float) -> None:
        """Refuse new calls; wait up to ``grace`` for calls to end, then stop the rest."""
        self.draining = True
        running = self._tasks()
        if running:
            await asyncio.wait(running, timeout=grace)
        for live in list(self._calls.values()):
            live.interrupt("drain")
        running = self._tasks()
        if running:
            await asyncio.wait(running, timeout=STOP_WAIT)

    def _tasks(self) -> list[asyncio.Task[None]]:
        return [live.task for live in self._calls.values() if live.task is not None]

    def _start(self, live: LiveCall, run: Coroutine[Any, Any, None]) -> None:
        context = contextvars.copy_context()
        context.run(STEERING.set, live)
        task = asyncio.create_task(run, context=context)
        live.task = task
        self._calls[live.call_sid] = live
        if live.inbound:
            self._inbound += 1
        task.add_done_callback(functools.partial(self._forget, live, context))

    def _forget(
        self, live: LiveCall, context: contextvars.Context, _task: asyncio.Task[None]
    ) -> None:
        # live -> task -> its context -> STEERING -> live: a cycle per call, left to the cycle
        # collector (whose pauses stop every call) unless the context lets go of the call
        context.run(STEERING.set, None)
        self._calls.pop(live.call_sid, None)
        if live.inbound:
            self._inbound -= 1
