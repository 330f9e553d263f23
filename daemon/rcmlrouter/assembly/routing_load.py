"""The routing snapshot: loaded from the store at start, then kept current by number changes."""

from __future__ import annotations

import time

import structlog

from rcmlrouter import metrics
from rcmlrouter.directory import Directory
from rcmlrouter.routing.table import RouteEntry, RoutingSnapshot
from rcmlrouter.store.base import Store
from rcmlrouter.store.records import NumberChange

log = structlog.get_logger("rcmlrouter.app")
BATCH = 10_000


async def load_snapshot(store: Store) -> RoutingSnapshot:
    """Every routable number of the store, in batches (a number that cannot load is skipped
    with a warning: one bad pattern never keeps the daemon from starting)."""
    started = time.perf_counter()
    snapshot = RoutingSnapshot()
    batch: list[RouteEntry] = []
    async for row in store.iter_route_rows():
        batch.append(RouteEntry(*row))
        if len(batch) >= BATCH:
            _load(snapshot, batch)
            batch = []
    _load(snapshot, batch)
    metrics.ROUTING_NUMBERS.set(len(snapshot))
    log.info(
        "routing.loaded", numbers=len(snapshot), seconds=round(time.perf_counter() - started, 3)
    )
    return snapshot


def _load(snapshot: RoutingSnapshot, entries: list[RouteEntry]) -> None:
    for entry, error in snapshot.load(entries):
        log.warning("routing.number_skipped", sid=entry.sid, error=str(error))


def apply_number_change(
    snapshot: RoutingSnapshot, directory: Directory, change: NumberChange
) -> None:
    """One committed number change (this node's or another's) applied to the snapshot and to
    the directory's cached numbers."""
    directory.on_number_change(change)
    number = change.number
    if change.action == "delete" or number is None:
        snapshot.remove(change.sid)
    else:
        entry = RouteEntry(
            number.sid,
            number.organization_sid,
            number.phone_number,
            number.is_sip,
            number.date_created,
        )
        snapshot.load([entry])
    metrics.ROUTING_NUMBERS.set(len(snapshot))
