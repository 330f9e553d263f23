"""The Store contract for records retention (``[records] max_age``): the oldest records go in
batches, nothing still owed work goes; on SQLite and PostgreSQL. Many PostgreSQL nodes: one
prunes at a time, the others skip without waiting."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from rcmlrouter.store.base import Store
from rcmlrouter.store.filters import CallQuery
from rcmlrouter.store.records import CallRecord, MessageRecord, Notification, OutboxEvent, Recording
from support.pg import SERVER_URL
from support.store_engines import Engine

CUTOFF = 1000.0


def _call(sid: str, end: float | None, start: float = 1.0) -> CallRecord:
    status = "completed" if end is not None else "ringing"
    return CallRecord(
        sid, "AC1", "PN1", "alice", "1234", "inbound", status, "exact", start, None, end,
        None, 603,
    )  # fmt: skip


def _message(sid: str, created: float, status: str = "received") -> MessageRecord:
    return MessageRecord(
        sid, "AC1", "PN1", "+15105550001", "1234", "hi", "inbound", status, created
    )


def _notification(sid: str, created: float) -> Notification:
    return Notification(sid, "AC1", None, 11200, "error", "HTTP 500", None, created)


def _event(sid: str) -> OutboxEvent:
    return OutboxEvent(None, sid, "AC1", 0, "http://cb.example/", "POST", {}, created_at=1.0)


async def _gone_in_batches(store: Store, kind: str, limit: int, **kw: float) -> list[int]:
    """Prune ``kind`` until a batch comes back short; every batch's count."""
    counts = []
    while True:
        deleted = await store.prune_records(kind, CUTOFF, limit, **kw)  # type: ignore[arg-type]
        assert deleted is not None
        counts.append(deleted)
        if deleted < limit:
            return counts


async def test_old_finished_calls_go_oldest_first_in_batches(store: Store) -> None:
    old = [_call(f"CA{i:02d}", end=100.0 + i) for i in range(7)]
    kept = [
        _call("CAnew", end=CUTOFF + 1),  # younger than the cutoff
        _call("CAopen", end=None),  # unfinished (in progress, or cut by a crash): owed a close
        _call("CAowed", end=50.0),  # an undelivered status callback
        _call("CAlong", end=CUTOFF + 5, start=1.0),  # started long ago, ended recently
    ]
    await store.write_journal([*old, *kept], [], [_event("CAowed")])
    assert await store.prune_records("calls", CUTOFF, 3) == 3
    # the oldest ended went first
    assert [
        c.sid for c in (await store.list_calls(CallQuery("AC1"), 0, 20)).items if c.sid < "CA03"
    ] == []
    assert await _gone_in_batches(store, "calls", 3) == [3, 1]
    left = sorted(c.sid for c in (await store.list_calls(CallQuery("AC1"), 0, 20)).items)
    assert left == ["CAlong", "CAnew", "CAopen", "CAowed"]
    delivered = [e.id for e in await store.pending_callbacks(0, 9) if e.id is not None]
    await store.mark_callbacks_delivered(delivered)
    assert await store.prune_records("calls", CUTOFF, 10) == 1  # delivered: no longer owed
    assert await store.prune_records("calls", CUTOFF, 10) == 0


async def test_messages_owed_work_stay(store: Store) -> None:
    await store.write_journal(
        [],
        [
            _message("SMdone", 10.0),
            _message("SMfailed", 11.0, status="failed"),
            _message("SMsent", 12.0, status="sent"),
            _message("SMaccepted", 13.0, status="accepted"),  # not processed yet
            _message("SMsending", 14.0, status="sending"),  # being sent
            _message("SMqueued", 15.0, status="queued"),
            _message("SMstale", 1.0, status="sending"),  # a crash's leftover
            _message("SMowed", 16.0, status="sent"),  # its status callback is undelivered
            _message("SMnew", CUTOFF + 1),
        ],
        [_event("SMowed")],
    )
    assert await store.prune_records("messages", CUTOFF, 100, stale_before=5.0) == 4
    for sid in ("SMaccepted", "SMsending", "SMqueued", "SMowed", "SMnew"):
        assert (await store.get_message(sid)).sid == sid
    for sid in ("SMdone", "SMfailed", "SMsent", "SMstale"):
        with pytest.raises(Exception, match="no message"):
            await store.get_message(sid)


async def test_notifications_go_by_age(store: Store) -> None:
    await store.add_notifications(
        [_notification(f"NO{i}", 100.0 * i) for i in range(1, 13)]  # 100 … 1200
    )
    assert await _gone_in_batches(store, "notifications", 4) == [4, 4, 1]
    left = (await store.list_notifications("AC1", 0, 20)).items
    assert sorted(n.date_created for n in left) == [1000.0, 1100.0, 1200.0]


async def test_recordings_are_listed_then_deleted_if_still_old(store: Store) -> None:
    for index, created in enumerate((10.0, 20.0, 30.0, CUTOFF + 1)):
        await store.add_recording(Recording(f"RE{index}", "AC1", "CA1", 1.0, created))
    await store.enqueue_callbacks([_event("RE0")])  # its recordingStatusCallback is owed
    found = await store.old_recordings(CUTOFF, 10)
    assert found == [("AC1", "RE1"), ("AC1", "RE2")]
    assert await store.old_recordings(CUTOFF, 1) == [("AC1", "RE1")]
    assert await store.delete_recordings(["RE1", "RE2", "RE3"], CUTOFF) == 2  # RE3 is young
    assert await store.delete_recordings([], CUTOFF) == 0
    left = (await store.list_recordings("AC1", None, 0, 10)).items
    assert sorted(r.sid for r in left) == ["RE0", "RE3"]


# ---- many nodes on one PostgreSQL database ------------------------------------------------------


async def _hold_prune_lock(schema: str) -> asyncpg.Connection:
    """Another node's transaction holding the schema's pruning lock (until it closes)."""
    conn = await asyncpg.connect(SERVER_URL, timeout=5)
    await conn.execute(f'SET search_path = "{schema}"')
    tx = conn.transaction()
    await tx.start()
    assert await conn.fetchval(
        "SELECT pg_try_advisory_xact_lock(hashtext('rcmlrouter.prune:' || "
        "current_setting('search_path')))"
    )
    return conn


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
async def test_a_node_skips_while_another_prunes(engine: Engine, store: Store) -> None:
    await store.add_notifications([_notification(f"NO{i}", 1.0) for i in range(5)])
    await store.add_recording(Recording("RE1", "AC1", None, 1.0, 1.0))
    other = await _hold_prune_lock(engine.schema)
    try:
        started = asyncio.get_running_loop().time()
        assert await store.prune_records("notifications", CUTOFF, 10) is None
        assert await store.delete_recordings(["RE1"], CUTOFF) is None
        assert asyncio.get_running_loop().time() - started < 2.0  # never waited for the lock
        assert engine.count("notifications") == 5 and engine.count("recordings") == 1
    finally:
        await other.close()
    assert await store.prune_records("notifications", CUTOFF, 10) == 5


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
async def test_nodes_pruning_together_delete_each_row_once(engine: Engine, store: Store) -> None:
    calls = [_call(f"CA{i:04d}", end=10.0 + i) for i in range(600)]
    await store.write_journal(calls, [], [])
    others = [await engine.open() for _ in range(3)]
    nodes = [store, *others]
    deleted: list[int] = []
    skipped = 0

    async def node(each: Store) -> None:
        nonlocal skipped
        while True:
            count = await each.prune_records("calls", CUTOFF, 25)
            if count is None:
                skipped += 1
                await asyncio.sleep(0.001)
                continue
            deleted.append(count)
            if count < 25:
                return

    try:
        await asyncio.wait_for(asyncio.gather(*(node(n) for n in nodes)), 60)
    finally:
        for each in others:
            await each.close()
    assert sum(deleted) == 600 and engine.count("calls") == 0
    assert skipped > 0  # the nodes met, and the loser skipped instead of waiting
