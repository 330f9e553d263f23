"""The journal write: a call record and the outbox events it owes commit together or not at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from rcmlrouter.errors import StoreError
from rcmlrouter.store.base import CallRecord, OutboxEvent
from rcmlrouter.store.sqlite import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "store.db")
    yield opened
    await opened.close()


def _call(sid: str = "CA1", **changes: object) -> CallRecord:
    call = CallRecord(
        sid, "AC1", "PN1", "alice", "1234", "inbound", "ringing", "exact", 1.0, None, None,
        None, 180, next_sequence=1, status_callback="http://cb/", status_callback_method="GET",
    )  # fmt: skip
    return replace(call, **changes)  # type: ignore[arg-type]


def _event(sid: str, sequence: int) -> OutboxEvent:
    return OutboxEvent(None, sid, "AC1", sequence, "http://cb/", "GET", {"S": str(sequence)})


async def test_record_and_events_are_written_together(store: SqliteStore) -> None:
    ids = await store.write_journal([_call()], [], [_event("CA1", 0)])
    assert len(ids) == 1 and ids[0] > 0
    stored = await store.get_call("CA1")
    assert (stored.next_sequence, stored.status_callback, stored.status_callback_method) == (
        1,
        "http://cb/",
        "GET",
    )
    assert [(e.call_sid, e.sequence) for e in await store.pending_callbacks(0, 10)] == [
        ("CA1", 0)
    ]
    assert [c.sid for c in await store.unfinished_calls()] == ["CA1"]


async def test_a_failed_write_keeps_neither_record_nor_events(store: SqliteStore) -> None:
    broken = _call("CA2", account_sid=None)  # NOT NULL violation inside the transaction
    with pytest.raises(StoreError):
        await store.write_journal([_call("CA1"), broken], [], [_event("CA1", 0)])
    assert await store.pending_callback_count() == 0
    assert await store.unfinished_calls() == []


async def test_the_last_write_of_a_call_in_one_batch_wins(store: SqliteStore) -> None:
    final = _call(status="completed", end_time=9.0, duration=3.0, next_sequence=3)
    await store.write_journal(
        [_call(), _call(status="in-progress", answer_time=2.0, next_sequence=2), final],
        [],
        [_event("CA1", 0), _event("CA1", 1), _event("CA1", 2)],
    )
    stored = await store.get_call("CA1")
    assert stored.status == "completed" and stored.next_sequence == 3
    assert await store.unfinished_calls() == []
    assert [e.sequence for e in await store.pending_callbacks(0, 10)] == [0, 1, 2]
