"""SQLite, one node: every leftover row at start is this process's, and a liveness stamp
dates a crash.

While the daemon runs, its row in ``nodes`` (node id ``local``) gets ``heartbeat_at`` every
second: one small write, as a cluster node's heartbeat. At start, before the row is stamped
anew, the old ``heartbeat_at`` is the previous run's last sign of life: the calls a ``kill -9``
left unfinished end there (or at their last checkpoint when that is later), not at the restart
(``calls/recovery.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from typing import Any

import structlog

from rcmlrouter.cluster.work import RECOVERY_PAGE, Claim, TakeOver
from rcmlrouter.errors import RcmlRouterError
from rcmlrouter.store.sqlite import SqliteStore

log = structlog.get_logger(__name__)

NODE_ID = "local"
STAMP_EVERY = 1.0  # s (the cluster heartbeat at the default lease; cluster.* is for PostgreSQL)
_STAMP = (
    "INSERT INTO nodes (node_id, started_at, heartbeat_at, instance) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (node_id) DO UPDATE SET started_at = excluded.started_at, "
    "heartbeat_at = excluded.heartbeat_at, instance = excluded.instance"
)


class LocalWork:
    """The start-up's leftovers and the liveness stamp of the one SQLite node."""

    def __init__(self, store: SqliteStore, *, beat: float = STAMP_EVERY) -> None:
        self.store = store
        self.beat = beat
        self.instance = secrets.token_hex(8)
        self.started_at = time.time()
        self._task: asyncio.Task[None] | None = None

    async def claim_at_start(self) -> Claim:
        """Everything an earlier run left, each call with that run's last stamp."""
        row = await self.store.fetchone("SELECT MAX(heartbeat_at) FROM nodes")
        previous = None if row is None or row[0] is None else float(row[0])
        await self._stamp()
        claim = Claim()
        after = 0
        while True:
            try:
                page = await self.store.pending_callbacks(after, RECOVERY_PAGE)
            except RcmlRouterError as exc:
                log.warning("callbacks.recovery_failed", error=str(exc))
                await asyncio.sleep(1.0)
                continue
            claim.events.extend(page)
            if len(page) < RECOVERY_PAGE:
                break
            after = page[-1].id or after
        claim.calls = await self.store.unfinished_calls()
        claim.messages = await self.store.accepted_messages()
        claim.outbound = await self.store.pending_outbound_messages()
        if previous is not None:
            claim.last_seen = {call.sid: previous for call in claim.calls}
        return claim

    async def _stamp(self) -> None:
        row = (NODE_ID, self.started_at, time.time(), self.instance)
        await self.store.execute_many(_STAMP, [row])

    def start(self, take_over: TakeOver) -> None:
        """No other node to watch: only stamp."""
        self._task = asyncio.create_task(self._stamping(), name="liveness-stamp")

    async def _stamping(self) -> None:
        while True:
            await asyncio.sleep(self.beat)
            try:
                await self._stamp()
            except RcmlRouterError as exc:
                log.warning("cluster.stamp_failed", error=str(exc))

    async def stop(self) -> None:
        """A last stamp: a call that outlived the drain ends no later than this."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(RcmlRouterError):
            await self._stamp()

    def health(self) -> dict[str, Any]:
        return {"node_id": None}
