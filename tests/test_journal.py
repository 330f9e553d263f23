"""BatchWriter: group commit, retry on store errors, nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rcmlrouter.errors import StoreError
from rcmlrouter.journal import BatchWriter


async def test_items_are_written_in_batches_in_order() -> None:
    batches: list[list[int]] = []

    async def write(items: Sequence[int]) -> None:
        await asyncio.sleep(0.01)
        batches.append(list(items))

    writer: BatchWriter[int] = BatchWriter("t", write, max_batch=50)
    writer.start()
    for i in range(200):
        writer.add(i)
    assert await writer.flush(5)
    await writer.stop()
    assert [i for batch in batches for i in batch] == list(range(200))
    assert len(batches) < 200  # grouped
    assert max(len(b) for b in batches) <= 50


async def test_failed_writes_are_retried() -> None:
    attempts = 0
    written: list[int] = []

    async def flaky(items: Sequence[int]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise StoreError("database is locked")
        written.extend(items)

    seen: list[int] = []
    writer: BatchWriter[int] = BatchWriter("t", flaky, on_written=lambda b: seen.extend(b))
    writer.start()
    writer.add(1)
    writer.add(2)
    assert await writer.flush(5)
    await writer.stop()
    assert written == [1, 2] and seen == [1, 2] and attempts == 3


async def test_flush_times_out_while_the_store_is_down() -> None:
    async def down(items: Sequence[int]) -> None:
        raise StoreError("down")

    writer: BatchWriter[int] = BatchWriter("t", down)
    writer.start()
    writer.add(1)
    assert not await writer.flush(0.2)
    await writer.stop(0.1)
