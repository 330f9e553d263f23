"""The calls the API queued (``POST Calls``): the API's ``WorkQueue`` for calls, the pacing, the
bound, and the calls an earlier run (or a dead node) left queued.

``submit`` starts the call's task at once (the supervisor's, ``calls/outbound_call.py``); the
task first waits here for its slot: at most ``[outbound] cps`` calls per second per account and
each trunk's ``cps`` (``calls/pacing.py``), in the order the calls were created; a try on the
next trunk of a failover chain (``calls/trunk_chain.py``) takes a slot of that trunk's ``cps``
too (:meth:`OutboundCalls.wait_trunk`; not the account's again: it is the same call). While
``max_queued`` calls wait in this process, or while it drains, the API answers 429. A waiting
call is durable (its record is ``queued`` with its request): a restart, or the cluster node that
claims a dead node's rows, dials it through :meth:`OutboundCalls.adopt`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from rcmlrouter import metrics
from rcmlrouter.calls.pacing import Limit, Pacer
from rcmlrouter.calls.supervisor import CallSupervisor
from rcmlrouter.config import OutboundConfig, TrunkConfig
from rcmlrouter.store.records import CallRecord

log = structlog.get_logger(__name__)


def is_queued_api_call(record: CallRecord) -> bool:
    """A call the API queued that never reached the network (so it may be dialled)."""
    return record.originate is not None and record.end_time is None


class OutboundCalls:
    """Starts the API's calls and hands out their slots (``WorkQueue``: ``full``, ``submit``;
    the run's ``DialSlots``: ``wait``)."""

    def __init__(self, supervisor: CallSupervisor, config: OutboundConfig) -> None:
        self.supervisor = supervisor
        self.config = config
        self.pacer = Pacer()
        self._waiting: set[str] = set()  # calls waiting for their slot
        metrics.API_CALLS_QUEUED.set_function(lambda: self.waiting)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def full(self) -> bool:
        return self.supervisor.draining or self.waiting >= self.config.max_queued

    def submit(self, item: CallRecord) -> None:
        sid = item.sid
        self._waiting.add(sid)
        live = self.supervisor.run_outbound(item, self)
        if live.task is not None:  # a task cancelled before it ran never reaches wait()
            live.task.add_done_callback(lambda _task: self._waiting.discard(sid))

    def adopt(self, records: Sequence[CallRecord]) -> None:
        """Calls an earlier run (or a dead node) left queued, oldest first: dialled in turn."""
        queued = sorted(
            (r for r in records if is_queued_api_call(r)), key=lambda r: (r.start_time, r.sid)
        )
        for record in queued:
            self.submit(record)
        if queued:
            log.warning("calls.queued_recovered", count=len(queued))

    def stop_waiting(self) -> None:
        """The daemon drains: the calls still waiting for their slot are not dialled here;
        they stay queued in the store for the next start (or another node)."""
        for sid in list(self._waiting):
            live = self.supervisor.live_call(sid)
            if live is not None:
                live.interrupt("drain")

    async def wait(self, record: CallRecord, trunk: TrunkConfig | None) -> None:
        """Until the call's slot (cancellable: the call is then never dialled)."""
        limits: list[Limit] = [(f"account:{record.account_sid}", self.config.cps)]
        if trunk is not None and trunk.cps > 0:
            limits.append((f"trunk:{trunk.name}", trunk.cps))
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = self.pacer.reserve(limits, now)
        try:
            if slot > now:
                await asyncio.sleep(slot - now)
            if self.supervisor.draining:
                raise asyncio.CancelledError  # not dialled: it stays queued (see stop_waiting)
        finally:
            self._waiting.discard(record.sid)

    async def wait_trunk(self, trunk: TrunkConfig, deadline: float) -> bool:
        """Until a failover try's slot on ``trunk``; False, and no slot taken, when that slot
        comes after ``deadline`` (the loop's clock: what is left of the call's Timeout)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = self.pacer.reserve_by([(f"trunk:{trunk.name}", trunk.cps)], now, deadline)
        if slot is None:
            return False
        if slot > now:
            await asyncio.sleep(slot - now)
        return True
