"""Group commit: items produced on the call path are written to the store in batches.

The call path never awaits the store. It appends to a :class:`BatchWriter`, whose single task
writes everything pending in one transaction, as soon as the previous write is done and
``linger`` seconds after the first item arrived (so under load batches grow). A failed write is
retried with backoff; nothing is dropped while the process lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import structlog

from rcmlrouter import metrics
from rcmlrouter.errors import StoreError

T = TypeVar("T")
log = structlog.get_logger(__name__)


class BatchWriter(Generic[T]):
    """Collects items and writes them with ``write(batch)`` from one background task."""

    def __init__(
        self,
        name: str,
        write: Callable[[Sequence[T]], Awaitable[None]],
        *,
        max_batch: int = 1000,
        linger: float = 0.0,
        on_written: Callable[[Sequence[T]], None] | None = None,
    ) -> None:
        self.name = name
        self._linger = linger
        self._write = write
        self._max_batch = max_batch
        self._on_written = on_written
        self._pending: list[T] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._seconds = metrics.STORE_BATCH_SECONDS.labels(name)
        self._items = metrics.STORE_BATCH_ITEMS.labels(name)

    def add(self, item: T) -> None:
        self._pending.append(item)
        self._idle.clear()
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"batch-writer-{self.name}")

    async def flush(self, grace: float = 10.0) -> bool:
        """Wait until everything added so far is written; False on timeout."""
        try:
            async with asyncio.timeout(grace):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self, grace: float = 10.0) -> None:
        await self.flush(grace)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        delay = 0.05
        while True:
            if not self._pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                if self._linger and len(self._pending) < self._max_batch:
                    await asyncio.sleep(self._linger)  # gather more into one transaction
            batch = self._pending[: self._max_batch]
            started = time.monotonic()
            try:
                await self._write(batch)
            except StoreError as exc:
                log.warning("store.write_failed", writer=self.name, error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.05
            self._seconds.observe(time.monotonic() - started)
            self._items.observe(len(batch))
            del self._pending[: len(batch)]
            if self._on_written is not None:
                self._on_written(batch)
