"""Media stream rows in the store (migration 0022), on SQLite and PostgreSQL: upserts in the
order they were made, a call's streams in the order they began, pruned with their calls."""

from __future__ import annotations

from dataclasses import replace

from rcmlrouter.store.base import Store
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import CallRecord
from rcmlrouter.store.stream_records import StreamRecord

AC = "AC" + "1" * 32
CALL = "CA" + "a" * 32


def stream(call_sid: str = CALL, at: float = 10.0, name: str | None = None) -> StreamRecord:
    sid = new_sid("MZ")
    return StreamRecord(
        sid, AC, call_sid, name or sid, "wss://agent.example/s", "both_tracks", "start",
        "in-progress", None, None, at, at,
    )  # fmt: skip


async def test_a_stream_row_is_inserted_then_updated_in_one_batch(store: Store) -> None:
    opened = stream(name="agent")
    stopped = replace(opened, status="stopped", date_updated=25.5, date_created=99.0)
    await store.save_streams([opened, stopped])  # insert and its update, in order
    (found,) = await store.call_streams(CALL)
    assert found == replace(stopped, date_created=10.0)  # an update keeps when it began
    assert found.date_ended == 25.5


async def test_a_calls_streams_in_the_order_they_began(store: Store) -> None:
    later, first = stream(at=30.0, name="later"), stream(at=20.0, name="first")
    failed = replace(
        stream(at=25.0, name="refused"),
        started_by="connect",
        track="inbound_track",
        status="failed",
        error_code=31941,
        error_message="a stream named 'first' is running",
    )
    other = stream(call_sid="CA" + "b" * 32)
    await store.save_streams([later, first])
    await store.save_streams([failed, other])
    found = await store.call_streams(CALL)
    assert [s.name for s in found] == ["first", "refused", "later"]
    assert found[1] == failed and found[1].date_ended == 25.0
    assert found[0].error_code is None and found[0].date_ended is None
    assert [s.sid for s in await store.call_streams(other.call_sid)] == [other.sid]
    assert await store.call_streams("CA" + "c" * 32) == []
    assert len(await store.call_streams(CALL, limit=2)) == 2


async def test_streams_are_pruned_with_their_calls(store: Store) -> None:
    def call(sid: str, end: float | None) -> CallRecord:
        status = "completed" if end is not None else "in-progress"
        return CallRecord(
            sid, AC, None, "a", "b", "inbound", status, None, 1.0, None, end, None, 200
        )

    old, running = "CA" + "1" * 32, "CA" + "2" * 32
    await store.write_journal([call(old, 50.0), call(running, None)], [], [])
    rows = [replace(stream(c, at=40.0), status="stopped") for c in (old, old, running)]
    young_orphan = stream("CA" + "3" * 32, at=2000.0)  # its call's row is not written yet
    await store.save_streams([*rows, young_orphan])
    assert await store.prune_records("streams", 1000.0, 10) == 0  # their calls are still there
    assert await store.prune_records("calls", 1000.0, 10) == 1
    assert await store.prune_records("streams", 1000.0, 1) == 1  # a batch at a time
    assert await store.prune_records("streams", 1000.0, 10) == 1
    assert await store.call_streams(old) == []
    assert len(await store.call_streams(running)) == 1
    assert len(await store.call_streams(young_orphan.call_sid)) == 1


async def test_streams_a_crash_left_running_end_with_their_calls(store: Store) -> None:
    def call(sid: str, end: float) -> CallRecord:
        return CallRecord(
            sid, AC, None, "a", "b", "inbound", "completed", None, 1.0, 2.0, end, 1.0, 200
        )

    cut, alive = "CA" + "4" * 32, "CA" + "5" * 32
    await store.write_journal([call(cut, 77.0)], [], [])  # closed by recovery at 77
    running, failed = stream(cut, at=40.0), replace(stream(cut, at=41.0), status="failed")
    late = stream(cut, at=90.0)  # began after its call's last sign of life: ends as it began
    orphan, elsewhere = stream("CA" + "6" * 32, at=42.0), stream(alive, at=43.0)
    await store.save_streams([running, failed, late, orphan, elsewhere])
    assert await store.end_streams([]) == 0
    assert await store.end_streams([cut, orphan.call_sid]) == 3
    rows = {s.sid: s for s in await store.call_streams(cut)}
    assert (rows[running.sid].status, rows[running.sid].date_ended) == ("stopped", 77.0)
    assert (rows[late.sid].status, rows[late.sid].date_ended) == ("stopped", 90.0)
    assert rows[failed.sid] == failed  # over already: untouched
    (left,) = await store.call_streams(orphan.call_sid)  # no call row: ends when last heard of
    assert (left.status, left.date_ended) == ("stopped", 42.0)
    assert (await store.call_streams(alive))[0].status == "in-progress"
    assert await store.end_streams([cut]) == 0
