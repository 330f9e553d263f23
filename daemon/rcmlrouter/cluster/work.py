# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
"""Work that any node can finish: outbox events, unfinished calls, accepted messages and the
messages the API queued but did not send.

On PostgreSQL every row a node writes to ``callback_outbox``, ``calls`` and ``messages`` carries
its node id in ``owner`` (the column's default is the connection's ``rcmlrouter.node_id``
setting, migration 0008). Each node heartbeats in ``nodes``; a node whose heartbeat is older
than the lease is dead, and a survivor **claims** its rows: in one transaction, under an
advisory lock (one claimer at a time, so the events of one call never split between two
survivors), with ``FOR UPDATE SKIP LOCKED``, ``owner`` becomes the survivor. The daemon then
does with the claim exactly what a restart does with its own leftovers: the events are queued
in id order (so in order per call), the calls are closed with the final callback they owe, the
accepted messages are processed and the API's queued messages sent (``messaging/queued.py``: one
being sent when its owner died is resent as the same request).

At start a node claims its own rows of an earlier run (same node id) plus a dead node's; rows
without an owner (copied by ``migrate``) belong to whoever claims them first. A graceful stop
deletes the node's heartbeat, so what it could not deliver is claimed at once.

Each claimed call comes with its dead owner's **last sign of life**: the owner's last
``heartbeat_at`` (read in the claim transaction, before the node is forgotten; for this node's
own earlier run, read before its first heartbeat overwrote it). The call is closed there, or at
its last checkpoint when that is later (``calls/recovery.py``), not at the take-over. Heartbeats
come every :func:`heartbeat_interval` s (1 s, or lease/4 when shorter).

On SQLite (one node) :class:`~rcmlrouter.cluster.local.LocalWork` hands the start-up everything
an earlier run left, with the same last sign of life (a liveness stamp in ``nodes``).

Known limit: a node that is alive but cannot reach the database for longer than the lease is
declared dead; its events may then be delivered by a survivor and by itself (at-least-once,
as for a ``kill -9``); it logs ``cluster.declared_dead`` when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import structlog

from rcmlrouter.errors import RcmlRouterError
from rcmlrouter.store import rows
from rcmlrouter.store.postgres import PostgresStore
from rcmlrouter.store.queries_messages import OUTBOUND_API, OUTBOUND_PENDING
from rcmlrouter.store.records import CallRecord, MessageRecord, OutboxEvent

log = structlog.get_logger(__name__)

RECOVERY_PAGE = 5000
PRUNE_KEEP = 100_000  # change_log rows kept (a node further behind reloads everything)
_NOW = "EXTRACT(EPOCH FROM clock_timestamp())"


@dataclass(slots=True)
class Claim:
    """Work a node took on: from an earlier run of its own, or from dead nodes."""

    events: list[OutboxEvent] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    messages: list[MessageRecord] = field(default_factory=list)
    # messages the API queued, not yet sent (queued, or sending when the owner died)
    outbound: list[MessageRecord] = field(default_factory=list)
    dead_nodes: list[str] = field(default_factory=list)
    # call sid -> its owner's last heartbeat (POSIX s), where known: when the call was last
    # known to be alive, at the latest
    last_seen: dict[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.events or self.calls or self.messages or self.outbound)


TakeOver = Callable[[Claim], Awaitable[None]]
PRUNE_EVERY = 600.0  # s between change_log prunes


def heartbeat_interval(lease: float) -> float:
    """Seconds between heartbeats: often enough to date a crash to the second, and four
    within a lease, so one late beat does not make a live node dead."""
    return max(0.05, min(1.0, lease / 4))


class WorkOwnership(Protocol):
    async def claim_at_start(self) -> Claim: ...
    def start(self, take_over: TakeOver) -> None: ...
    async def stop(self) -> None: ...
    def health(self) -> dict[str, Any]: ...


def _call_order(call: CallRecord) -> tuple[float, str]:
    return (call.start_time, call.sid)


def _prefixed(columns: str) -> str:
    return ", ".join(f"o.{name}" for name in columns.split(", "))


# $1 me, $2 the owner counted as own ('' in periodic sweeps), $3 live node ids
_CLAIMABLE = "(owner IS NULL OR owner = $2 OR NOT (owner = ANY($3::text[])))"
_CLAIM_EVENTS = (
    f"UPDATE callback_outbox o SET owner = $1 FROM (SELECT id FROM callback_outbox "
    f"WHERE {_CLAIMABLE} ORDER BY id FOR UPDATE SKIP LOCKED) c "
    f"WHERE o.id = c.id RETURNING {_prefixed(rows.OUTBOX_COLUMNS)}"
)
_CLAIM_CALLS = (  # the row, then its previous owner
    f"UPDATE calls o SET owner = $1 FROM (SELECT sid, owner FROM calls "
    f"WHERE end_time IS NULL AND {_CLAIMABLE} FOR UPDATE SKIP LOCKED) c "
    f"WHERE o.sid = c.sid RETURNING {_prefixed(rows.CALL_COLUMNS)}, c.owner"
)
_CLAIM_MESSAGES = (  # accepted inbound messages, and API messages not sent yet
    f"UPDATE messages o SET owner = $1 FROM (SELECT sid FROM messages "
    f"WHERE (status = 'accepted' OR ({OUTBOUND_PENDING})) AND {_CLAIMABLE} "
    f"FOR UPDATE SKIP LOCKED) c WHERE o.sid = c.sid RETURNING {_prefixed(rows.MESSAGE_COLUMNS)}"
)


class ClusterWork:
    """PostgreSQL: heartbeats, and claims of dead nodes' work."""

    def __init__(
        self,
        store: PostgresStore,
        node_id: str,
        *,
        lease: float = 10.0,
        sip: str = "",
        api: str = "",
    ) -> None:
        self.store = store
        self.node_id = node_id
        self.lease = lease
        self.sip = sip
        self.api = api
        self.instance = secrets.token_hex(8)
        self.claimed = 0  # rows claimed from dead nodes since start
        self.previous_beat: float | None = None  # this node id's last heartbeat of an earlier run
        self._task: asyncio.Task[None] | None = None

    async def register(self) -> None:
        """Heartbeat for the first time; when another live process holds this node id, wait
        for its lease to run out (a restart right after a ``kill -9`` does that)."""
        waited = False
        while True:
            holder = await self.store.fetchone(
                f"SELECT instance, {_NOW} - heartbeat_at, heartbeat_at FROM nodes "
                "WHERE node_id = ?",
                (self.node_id,),
            )
            if holder is not None and holder[0] != self.instance:
                self.previous_beat = float(holder[2])
            if holder is None or holder[0] == self.instance or float(holder[1]) > self.lease:
                break
            if not waited:
                log.warning("cluster.node_id_busy", node_id=self.node_id, wait=self.lease)
                waited = True
            await asyncio.sleep(min(0.5, self.lease / 4))
        await self._heartbeat(first=True)

    async def _heartbeat(self, *, first: bool = False) -> None:
        async def unit(conn: asyncpg.Connection) -> str:
            return str(
                await conn.execute(
                    f"UPDATE nodes SET heartbeat_at = {_NOW}, sip = $3, api = $4 "
                    "WHERE node_id = $1 AND instance = $2",
                    self.node_id,
                    self.instance,
                    self.sip,
                    self.api,
                )
            )

        if await self.store.write(unit, idempotent=True) != "UPDATE 0":
            return
        if not first:
            log.error("cluster.declared_dead", node_id=self.node_id, lease=self.lease)
        await self.store.write(self._insert_node, idempotent=True)

    async def _insert_node(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            f"INSERT INTO nodes (node_id, started_at, heartbeat_at, instance, sip, api) "
            f"VALUES ($1, {_NOW}, {_NOW}, $2, $3, $4) ON CONFLICT (node_id) DO UPDATE SET "
            "started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at, "
            "instance = EXCLUDED.instance, sip = EXCLUDED.sip, api = EXCLUDED.api",
            self.node_id,
            self.instance,
            self.sip,
            self.api,
        )

    async def claim_at_start(self) -> Claim:
        """Register; claim this node's rows of an earlier run and dead nodes' rows."""
        await self.register()
        claim = await self.claim(include_own=True)
        log.info(
            "cluster.started",
            node_id=self.node_id,
            events=len(claim.events),
            calls=len(claim.calls),
            messages=len(claim.messages),
            outbound=len(claim.outbound),
            dead_nodes=claim.dead_nodes,
        )
        return claim

    async def claim(self, *, include_own: bool = False) -> Claim:
        """One transaction: claim every row whose owner is dead (or missing), and forget the
        dead nodes. ``include_own``: this node's rows too (at start: an earlier run's)."""

        async def unit(conn: asyncpg.Connection) -> Claim:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('rcmlrouter.claim:' || current_schema()))"
            )
            live = [
                str(r[0])
                for r in await conn.fetch(
                    f"SELECT node_id FROM nodes WHERE heartbeat_at >= {_NOW} - $1 OR node_id = $2",
                    self.lease,
                    self.node_id,
                )
            ]
            args = (self.node_id, self.node_id if include_own else "", live)
            calls = [tuple(r) for r in await conn.fetch(_CLAIM_CALLS, *args)]
            claim = Claim(
                events=sorted(
                    (rows.to_outbox(tuple(r)) for r in await conn.fetch(_CLAIM_EVENTS, *args)),
                    key=lambda e: e.id or 0,
                ),
                calls=sorted((rows.to_call(r[:-1]) for r in calls), key=_call_order),
            )
            messages = sorted(
                (rows.to_message(tuple(r)) for r in await conn.fetch(_CLAIM_MESSAGES, *args)),
                key=lambda m: (m.date_created, m.sid),
            )
            claim.messages = [m for m in messages if m.direction != OUTBOUND_API]
            claim.outbound = [m for m in messages if m.direction == OUTBOUND_API]
            beats = {
                str(r[0]): float(r[1])
                for r in await conn.fetch(
                    "DELETE FROM nodes WHERE NOT (node_id = ANY($1::text[])) "
                    "RETURNING node_id, heartbeat_at",
                    live,
                )
            }
            claim.dead_nodes = list(beats)
            if include_own and self.previous_beat is not None:
                beats[self.node_id] = self.previous_beat
            claim.last_seen = {str(r[0]): beats[r[-1]] for r in calls if r[-1] in beats}
            return claim

        return await self.store.write(unit)

    def start(self, take_over: TakeOver) -> None:
        """Heartbeat every :func:`heartbeat_interval`; look for dead nodes' work every
        lease/2 s."""
        self._task = asyncio.create_task(self._watch(take_over), name="cluster-work")

    async def _watch(self, take_over: TakeOver) -> None:
        clock = asyncio.get_running_loop().time
        next_claim = clock() + self.lease / 2
        next_prune = clock() + PRUNE_EVERY
        while True:
            await asyncio.sleep(heartbeat_interval(self.lease))
            try:
                await self._heartbeat()
                if clock() >= next_claim:
                    next_claim = clock() + self.lease / 2
                    claim = await self.claim()
                    if claim or claim.dead_nodes:
                        await self._take_over(take_over, claim)
                if clock() >= next_prune:
                    next_prune = clock() + PRUNE_EVERY
                    await self._prune_change_log()
            except RcmlRouterError as exc:
                log.warning("cluster.heartbeat_failed", error=str(exc))

    async def _take_over(self, take_over: TakeOver, claim: Claim) -> None:
        self.claimed += len(claim.events) + len(claim.calls) + len(claim.messages)
        self.claimed += len(claim.outbound)
        log.warning(
            "cluster.took_over",
            node_id=self.node_id,
            dead_nodes=claim.dead_nodes,
            events=len(claim.events),
            calls=len(claim.calls),
            messages=len(claim.messages),
            outbound=len(claim.outbound),
        )
        if claim:
            try:
                await take_over(claim)
            except Exception:  # the watch must go on; the claimed rows stay ours
                log.exception("cluster.take_over_failed", node_id=self.node_id)

    async def _prune_change_log(self) -> None:
        await self.store.execute_many(
            "DELETE FROM change_log WHERE version <= "
            "(SELECT version FROM change_version WHERE one = 1) - ?",
            [(PRUNE_KEEP,)],
            idempotent=True,
        )

    async def stop(self) -> None:
        """Stop heartbeating and leave: survivors claim what this node did not finish."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(RcmlRouterError):
            await self.store.execute_many(
                "DELETE FROM nodes WHERE node_id = ? AND instance = ?",
                [(self.node_id, self.instance)],
                idempotent=True,
            )

    def health(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "lease": self.lease, "claimed": self.claimed}
