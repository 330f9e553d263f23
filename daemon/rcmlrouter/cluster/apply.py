"""Applying store changes to a node: its routing snapshot, the directory caches and the API's
authentication cache.

A change names a row (kind, sid); the row is read again from the store, so applying a change
twice, or late, leaves the current state: a number that exists is upserted into the snapshot,
one that does not is removed. Several changes of one row in a batch cost one read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import structlog

from rcmlrouter.cluster.changefeed import Change
from rcmlrouter.directory import Directory
from rcmlrouter.errors import NotFoundError
from rcmlrouter.routing.table import RouteEntry, RoutingSnapshot
from rcmlrouter.store.base import Store
from rcmlrouter.store.records import NumberChange

log = structlog.get_logger(__name__)

RELOAD_BATCH = 5_000


class SnapshotApplier:
    """The :class:`~rcmlrouter.cluster.changefeed.ChangeApplier` of a running daemon.

    ``apply_number`` is the daemon's own number-change listener (snapshot and number cache);
    ``forget_accounts`` clears the API's authentication cache, so a rotated or revoked token
    stops working on this node as soon as the change arrives.
    """

    def __init__(
        self,
        store: Store,
        snapshot: RoutingSnapshot,
        directory: Directory,
        apply_number: Callable[[NumberChange], None],
        forget_accounts: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.snapshot = snapshot
        self.directory = directory
        self.apply_number = apply_number
        self.forget_accounts = forget_accounts

    async def apply(self, changes: Sequence[Change]) -> None:
        kinds: dict[str, dict[str, str]] = {}
        for change in changes:  # the last action of a sid wins
            kinds.setdefault(change.kind, {})[change.sid] = change.action
        for sid in kinds.get("application", {}):
            self.directory.forget_application(sid)
        if accounts := kinds.get("account"):
            for sid in accounts:
                self.directory.forget_account(sid)
            self.forget_accounts()
        if kinds.get("organization"):
            await self.directory.refresh_organizations()
        for sid, action in kinds.get("number", {}).items():
            await self._apply_number(sid, action)

    async def _apply_number(self, sid: str, action: str) -> None:
        if action == "delete":
            self.apply_number(NumberChange("delete", sid, None))
            return
        try:
            number = await self.store.get_number(sid)
        except NotFoundError:  # deleted since: a later change says so too
            self.apply_number(NumberChange("delete", sid, None))
            return
        self.apply_number(NumberChange("upsert", sid, number))

    async def reload(self) -> None:
        """Every number again from the store; numbers no longer there removed; caches dropped."""
        seen: set[str] = set()
        batch: list[RouteEntry] = []
        async for row in self.store.iter_route_rows():
            entry = RouteEntry(*row)
            seen.add(entry.sid)
            batch.append(entry)
            if len(batch) >= RELOAD_BATCH:
                self._load(batch)
                batch = []
                await asyncio.sleep(0)  # calls keep being routed during a long reload
        self._load(batch)
        gone = [sid for sid in self.snapshot.sids() if sid not in seen]
        for sid in gone:
            self.snapshot.remove(sid)
        self.directory.forget_all()
        await self.directory.refresh_organizations()
        self.forget_accounts()
        log.info("changefeed.reloaded", numbers=len(self.snapshot), removed=len(gone))

    def _load(self, entries: list[RouteEntry]) -> None:
        for entry, error in self.snapshot.load(entries):
            log.warning("routing.number_skipped", sid=entry.sid, error=str(error))
