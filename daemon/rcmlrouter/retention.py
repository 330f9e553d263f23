"""Records retention (``[records] max_age``): calls (and their media streams), messages,
notifications and recordings (with their WAV files) older than ``max_age`` are deleted, oldest
first, in small batches.

A round runs every ``max_age / 10`` seconds (at most every 60 s, jittered so that nodes sharing
a database do not wake together). It works through each kind a batch (``BATCH`` rows, one short
transaction) at a time, pausing after a full batch four times as long as it took: the calls'
journal commits and API requests never wait behind more than one batch, and a backlog takes at
most a fifth of the store's time. It stops a kind when a batch comes back short (the backlog is
gone) or another node holds the database's pruning lock (PostgreSQL; that node is doing the
work). What may be deleted and what is still owed work is in ``store/queries_retention.py``.

A recording's file is removed before its row: a crash in between leaves a row without audio,
which the next round deletes, never a file without a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import structlog

from rcmlrouter import metrics
from rcmlrouter.errors import StoreError
from rcmlrouter.store.base import Store
from rcmlrouter.store.records import PrunedKind

log = structlog.get_logger(__name__)

BATCH = 200  # rows deleted per transaction: ~2 ms on SQLite and PostgreSQL (500: 3-11 ms)
PAUSE = 0.01  # seconds between two full batches, at least (calls get the store in between)
BUSY_SHARE = 0.2  # a backlog takes at most this share of the store's time: the pause after a
# batch is 4x its duration (13,000-15,000 rows a second on an idle store) ...
MAX_PAUSE = 0.1  # ... and at most this (a busy store still prunes ~2,000 rows a second)
MAX_INTERVAL = 60.0  # seconds between rounds, at most
# An outbound message still "queued" / "sending" this long after max_age is a crash's
# leftover (a delivery ends within sms.timeout): deleted like a finished one.
STALE_SENDING = 3600.0
ROW_KINDS: tuple[PrunedKind, ...] = ("calls", "streams", "messages", "notifications")

# One batch: (records handled, records deleted), or None when another node is pruning.
Batch = Callable[[float], Awaitable[tuple[int, int] | None]]


class RecordsRetention:
    """The pruning task of one process (every node runs one)."""

    def __init__(
        self,
        store: Store,
        max_age: float,
        recordings_dir: Path,
        *,
        batch: int = BATCH,
        pause: float = PAUSE,
        interval: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.max_age = max_age
        self.recordings_dir = recordings_dir
        self.batch = batch
        self.pause = pause
        self.interval = interval or min(MAX_INTERVAL, max(1.0, max_age / 10))
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Prune in the background (nothing when ``max_age`` is 0: records are kept)."""
        if self.max_age > 0:
            self._task = asyncio.create_task(self._run(), name="records-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        await asyncio.sleep(random.uniform(0.1, min(5.0, self.interval)))  # after start-up
        while True:
            try:
                await self.prune_once()
            except StoreError as exc:
                log.warning("records.prune_failed", error=str(exc), retry_in=self.interval)
            await asyncio.sleep(self.interval * random.uniform(0.8, 1.2))

    async def prune_once(self) -> dict[str, int]:
        """One round: every kind until its backlog is gone; the records deleted, by kind."""
        started = time.monotonic()
        cutoff = self.clock() - self.max_age
        pruned: dict[str, int] = {}
        for kind in ROW_KINDS:
            pruned[kind] = await self._drain(kind, self._rows_batch(kind), cutoff)
        pruned["recordings"] = await self._drain("recordings", self._recordings_batch, cutoff)
        if any(pruned.values()):
            log.info("records.pruned", **pruned, seconds=round(time.monotonic() - started, 3))
        return pruned

    async def _drain(self, kind: str, step: Batch, cutoff: float) -> int:
        total = 0
        counter = metrics.RECORDS_PRUNED.labels(kind)
        while True:
            started = time.perf_counter()
            done = await step(cutoff)
            elapsed = time.perf_counter() - started
            metrics.RECORDS_PRUNE_SECONDS.observe(elapsed)
            if done is None:  # another node holds the pruning lock: it does this round
                return total
            handled, deleted = done
            total += deleted
            counter.inc(deleted)
            if handled < self.batch:
                return total
            share = elapsed * (1 - BUSY_SHARE) / BUSY_SHARE
            await asyncio.sleep(max(self.pause, min(MAX_PAUSE, share)))

    def _rows_batch(self, kind: PrunedKind) -> Batch:
        async def step(cutoff: float) -> tuple[int, int] | None:
            deleted = await self.store.prune_records(
                kind, cutoff, self.batch, stale_before=cutoff - STALE_SENDING
            )
            return None if deleted is None else (deleted, deleted)

        return step

    async def _recordings_batch(self, cutoff: float) -> tuple[int, int] | None:
        """Files first, then rows (module docstring)."""
        found = await self.store.old_recordings(cutoff, self.batch)
        if not found:
            return 0, 0
        await asyncio.to_thread(self._remove_files, found)
        deleted = await self.store.delete_recordings([sid for _, sid in found], cutoff)
        return None if deleted is None else (len(found), deleted)

    def _remove_files(self, recordings: Sequence[tuple[str, str]]) -> None:
        for account_sid, sid in recordings:
            if not _plain_name(account_sid) or not _plain_name(sid):
                continue  # never a path outside the recordings directory
            path = self.recordings_dir / account_sid / f"{sid}.wav"
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:  # the row goes anyway: the file is an orphan to report
                log.warning("records.file_not_removed", path=str(path), error=str(exc))


def _plain_name(name: str) -> bool:
    return bool(name) and os.sep not in name and not name.startswith(".")
