"""One daemon's place in a cluster: its node id, its change feed and its work ownership.

:meth:`ClusterNode.create` picks by engine. On PostgreSQL the node LISTENs to the change feed
(opened before the routing snapshot is loaded), heartbeats, and claims dead nodes' work. On
SQLite it is the only node: changes arrive through the store's in-process listeners (the
snapshot version counts them) and every leftover row at start is its own.

Start-up order, driven by the composition root (``app.py``)::

    node = ClusterNode.create(config, store)
    await node.open_feed()               # LISTEN, then read the version
    snapshot = await load_snapshot(...)  # holds at least that version
    claim = await node.claim_at_start()  # this node's earlier run + dead nodes
    ...                                  # queue events, close calls, process messages
    node.start(applier, take_over)       # apply changes; heartbeat; take over dead nodes
    await node.open_commands(apply)      # PostgreSQL: live call control from other nodes

On PostgreSQL the node also has a command channel (``cluster/call_commands.py``): commands
about live calls (``POST Calls/{CA}`` updates, ``Calls/{CA}/Streams``) and live conferences
(``Conferences/{CF}…`` changes) sent by the node that took the request to the node that runs
the call or the room, and their answers.
"""

from __future__ import annotations

import platform
from typing import Any

from rcmlrouter.cluster.call_commands import ApplyLocally, CallCommands
from rcmlrouter.cluster.changefeed import ChangeApplier, ChangeFeed
from rcmlrouter.cluster.local import LocalWork
from rcmlrouter.cluster.versions import SnapshotVersion
from rcmlrouter.cluster.work import Claim, ClusterWork, TakeOver, WorkOwnership
from rcmlrouter.config import Config, parse_sip_listen
from rcmlrouter.store.base import Store
from rcmlrouter.store.postgres import PostgresStore
from rcmlrouter.store.sqlite import SqliteStore


def node_id_for(config: Config) -> str:
    """``cluster.node_id``, else ``HOSTNAME:SIP_PORT`` (stable across restarts, so a restarted
    node finds its own unfinished work)."""
    if config.cluster.node_id:
        return config.cluster.node_id
    port = next((p[2] for p in map(parse_sip_listen, config.sip.listen) if p), 5060)
    return f"{platform.node() or 'localhost'}:{port}"


class ClusterNode:
    """The change feed and the work ownership of one daemon (see the module docstring)."""

    def __init__(
        self,
        version: SnapshotVersion,
        work: WorkOwnership,
        feed: ChangeFeed | None,
        commands: CallCommands | None = None,
        node_id: str | None = None,
    ) -> None:
        self.version = version
        self.work = work
        self.feed = feed
        self.commands = commands
        self.node_id = node_id  # None on SQLite (the one node)

    @classmethod
    def create(cls, config: Config, store: Store) -> ClusterNode:
        if not isinstance(store, PostgresStore):
            assert isinstance(store, SqliteStore)
            return cls(SnapshotVersion(engine="sqlite"), LocalWork(store), None)
        node_id = node_id_for(config)
        version = SnapshotVersion(engine="postgresql")
        feed = ChangeFeed(
            config.store.url,
            store,
            node_id=node_id,
            check_interval=config.cluster.version_check,
            version=version,
        )
        work = ClusterWork(
            store,
            node_id,
            lease=config.cluster.lease,
            sip=",".join(config.sip.listen),
            api=config.api.listen,
        )
        commands = CallCommands(config.store.url, store, node_id, config.cluster.lease)
        return cls(version, work, feed, commands, node_id)

    async def open_feed(self) -> None:
        """PostgreSQL: LISTEN before the snapshot is loaded."""
        if self.feed is not None:
            await self.feed.open()

    def local_change(self) -> None:
        """A change made by this process reached its snapshot (SQLite counts them; on
        PostgreSQL the change feed brings every change, this process's included)."""
        if self.feed is None:
            self.version.local_change()

    async def claim_at_start(self) -> Claim:
        return await self.work.claim_at_start()

    def start(self, applier: ChangeApplier, take_over: TakeOver) -> None:
        if self.feed is not None:
            self.feed.start(applier)
        self.work.start(take_over)

    async def open_commands(self, apply: ApplyLocally) -> None:
        """PostgreSQL: take other nodes' commands about this node's live calls (``apply``)."""
        if self.commands is not None:
            await self.commands.open(apply)

    async def stop(self) -> None:
        if self.commands is not None:
            await self.commands.stop()
        if self.feed is not None:
            await self.feed.stop()
        await self.work.stop()

    def health(self) -> dict[str, Any]:
        commands = self.commands.health() if self.commands is not None else {}
        return {**self.version.health(), **self.work.health(), **commands}
