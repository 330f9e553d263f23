"""The change feed: every node LISTENs and applies the store's committed changes.

PostgreSQL triggers (migration 0008) give every committed change to numbers, applications,
organizations and accounts a gapless version, append it to ``change_log`` and ``pg_notify`` it
in the same transaction on the channel ``rcmlrouter:<schema>``. A :class:`ChangeFeed` holds one
dedicated connection that LISTENs on it; one consumer task applies what arrives, in version
order, through a :class:`ChangeApplier` (routing snapshot and caches).

It can never miss a change:

- LISTEN comes before the snapshot is loaded (:meth:`ChangeFeed.open` returns the version read
  after LISTEN; the snapshot loaded afterwards holds at least that), and changes at or below
  the applied version are skipped;
- a gap in versions (a notification lost), a payload that only names a version range, a lost
  listener connection (reconnected with backoff) or a periodic version check that finds the
  store ahead (the backstop, every ``check_interval`` seconds) make the consumer catch up from
  ``change_log``; when the log no longer holds what is missing, it reloads everything.

Catch-ups and reloads are serialised (one consumer) and coalesced (what is queued meanwhile is
taken as one batch, then applied after).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import structlog

from rcmlrouter.cluster.versions import SnapshotVersion
from rcmlrouter.errors import RcmlRouterError
from rcmlrouter.store.postgres import PostgresStore

log = structlog.get_logger(__name__)

CATCH_UP_PAGE = 5_000  # change_log rows read per round trip
CATCH_UP_LIMIT = 50_000  # missing more than this: reload everything instead
RECONNECT_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0)


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change: ``kind`` number | application | organization | account."""

    version: int
    kind: str
    sid: str
    action: str  # upsert | delete


class ChangeApplier(Protocol):
    """Applies changes to a node's routing snapshot and caches."""

    async def apply(self, changes: Sequence[Change]) -> None:
        """Apply ``changes`` (in version order) from the store's current rows."""

    async def reload(self) -> None:
        """Rebuild the snapshot and drop every cache, from the store."""


@dataclass(frozen=True, slots=True)
class _Notice:
    """A consumer input: a notification payload, or a reason to check the version."""

    payload: dict[str, Any] | None = None
    check: str | None = None  # "lost" | "periodic" | "reconnected"


def parse_notification(payload: dict[str, Any]) -> tuple[int, int, list[Change] | None]:
    """(first version, count, the changes or None when only the range was sent)."""
    first, count = int(payload["v"]), int(payload.get("n", 1))
    listed = payload.get("c")
    if listed is None:
        return first, count, None
    kind = str(payload["k"])
    changes = [
        Change(first + index, kind, str(sid), str(action))
        for index, (sid, action) in enumerate(listed)
    ]
    return first, count, changes


class ChangeFeed:
    """LISTEN on the store's change channel; keep ``version`` and an applier current."""

    def __init__(
        self,
        url: str,
        store: PostgresStore,
        *,
        node_id: str,
        check_interval: float = 5.0,
        version: SnapshotVersion | None = None,
    ) -> None:
        self.url = url
        self.store = store
        self.node_id = node_id
        self.check_interval = check_interval
        self.version = version or SnapshotVersion(engine="postgresql")
        self.version.engine = "postgresql"
        self._queue: asyncio.Queue[_Notice] = asyncio.Queue()
        self._conn: asyncpg.Connection | None = None
        self._channel = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._applier: ChangeApplier | None = None
        self._stopping = False

    @property
    def application_name(self) -> str:
        """The listener connection's application_name (``pg_stat_activity``)."""
        return f"rcmlrouter-feed {self.node_id}"[:63]

    async def open(self) -> int:
        """Connect and LISTEN; the store's version read after LISTEN (load the snapshot after)."""
        self._stopping = False
        await self._connect()
        current = await self._read_version()
        self.version.reached(current)
        return current

    def start(self, applier: ChangeApplier) -> None:
        """Apply what arrived since :meth:`open`, then everything that arrives."""
        self._applier = applier
        self._tasks = [
            asyncio.create_task(self._consume(), name="change-feed"),
            asyncio.create_task(self._check_periodically(), name="change-feed-check"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._conn is not None:
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await asyncio.wait_for(self._conn.close(), 2.0)
            self._conn = None

    # ---- the listener connection -------------------------------------------------------

    async def _connect(self) -> None:
        conn = await asyncpg.connect(
            self.url,
            timeout=5.0,
            command_timeout=5.0,
            server_settings={"application_name": self.application_name},
        )
        try:
            channel = await conn.fetchval("SELECT 'rcmlrouter:' || left(current_schema(), 52)")
            await conn.add_listener(str(channel), self._on_notify)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._on_terminated)
        self._conn, self._channel = conn, str(channel)
        self.version.listener = "connected"

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            decoded = json.loads(payload)
        except ValueError:
            log.warning("changefeed.bad_payload", payload=payload[:200])
            self._queue.put_nowait(_Notice(check="bad payload"))
            return
        self._queue.put_nowait(_Notice(payload=decoded))

    def _on_terminated(self, conn: object) -> None:
        if self._stopping or conn is not self._conn:
            return
        log.warning("changefeed.listener_lost", node=self.node_id)
        self._conn = None
        self.version.listener = "reconnecting"
        self._queue.put_nowait(_Notice(check="lost"))

    async def _ensure_connected(self) -> None:
        """Reconnect a lost listener (with backoff, until it works)."""
        attempt = 0
        while self._conn is None or self._conn.is_closed():
            self._conn = None
            try:
                await self._connect()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                attempt += 1
                log.warning("changefeed.reconnect_failed", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                continue
            log.info("changefeed.listening", channel=self._channel)

    async def _read_version(self) -> int:
        conn = self._conn
        if conn is None:
            raise ConnectionError("no listener connection")
        return int(await conn.fetchval("SELECT version FROM change_version WHERE one = 1"))

    async def _check_periodically(self) -> None:
        """The backstop: ask the store's version every ``check_interval`` seconds (on the
        listener connection, so a silently dead connection is found too)."""
        while True:
            await asyncio.sleep(self.check_interval)
            self._queue.put_nowait(_Notice(check="periodic"))

    # ---- the consumer ------------------------------------------------------------------

    async def _consume(self) -> None:
        delay = 0.05
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._handle(batch)
                delay = 0.05
            except (RcmlRouterError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                log.warning("changefeed.apply_failed", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                self._queue.put_nowait(_Notice(check="retry"))
            except TimeoutError as exc:  # a silently dead listener connection: start over
                log.warning("changefeed.apply_timeout", error=str(exc), retry_in=delay)
                conn, self._conn = self._conn, None
                if conn is not None:
                    conn.terminate()
                self.version.listener = "reconnecting"
                await asyncio.sleep(delay)
                self._queue.put_nowait(_Notice(check="retry"))

    async def _handle(self, batch: Sequence[_Notice]) -> None:
        """Apply a batch of notices in order; one catch-up at the end when anything is off."""
        assert self._applier is not None
        ready: list[Change] = []
        committed_at: float | None = None
        catch_up = False
        for notice in batch:
            if notice.payload is None:
                catch_up = True
                continue
            first, count, changes = parse_notification(notice.payload)
            self.version.heard(first + count - 1)
            expected = self.version.applied + len(ready) + 1
            if first + count - 1 < expected:
                continue  # already applied (the snapshot or a catch-up had it)
            if catch_up or changes is None or first > expected:
                catch_up = True  # a gap, or only a range: read change_log
                continue
            ready.extend(c for c in changes if c.version >= expected)
            committed_at = float(notice.payload.get("t", 0)) or None
        if ready:
            await self._applier.apply(ready)
            self.version.reached(ready[-1].version, committed_at)
        if catch_up:
            await self._catch_up()

    async def _catch_up(self) -> None:
        """Apply what change_log holds above the applied version; reload when it cannot."""
        assert self._applier is not None
        await self._ensure_connected()
        target = await self._read_version()
        self.version.heard(target)
        while self.version.applied < target:
            after = self.version.applied
            if target - after > CATCH_UP_LIMIT:
                await self._reload()
                return
            found = await self.store.fetchall(
                "SELECT version, kind, sid, action, committed_at FROM change_log "
                "WHERE version > ? ORDER BY version LIMIT ?",
                (after, CATCH_UP_PAGE),
            )
            if not found or int(found[0][0]) != after + 1:
                await self._reload()  # the log was pruned past what we miss
                return
            changes = [Change(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in found]
            await self._applier.apply(changes)
            self.version.reached(changes[-1].version, float(found[-1][4]))
            log.info("changefeed.caught_up", version=self.version.applied, changes=len(changes))

    async def _reload(self) -> None:
        assert self._applier is not None
        target = await self._read_version()  # the reload reads at least this
        log.warning("changefeed.reload", applied=self.version.applied, target=target)
        await self._applier.reload()
        self.version.reloads += 1
        self.version.reached(target)
