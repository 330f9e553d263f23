"""Records retention (``retention.py``) on a real SQLite store and data directory: a round
removes what is older than ``max_age`` in batches, recordings with their files (files first),
and keeps what is young or owed work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rcmlrouter import metrics
from rcmlrouter.retention import RecordsRetention
from rcmlrouter.store.filters import CallQuery
from rcmlrouter.store.records import CallRecord, Notification, OutboxEvent, Recording
from rcmlrouter.store.sqlite import SqliteStore
from rcmlrouter.store.stream_records import StreamRecord

NOW = 100_000.0
MAX_AGE = 3600.0
OLD, YOUNG = NOW - MAX_AGE - 10, NOW - 10


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "store.db")
    yield opened
    await opened.close()


def _call(sid: str, end: float | None) -> CallRecord:
    return CallRecord(
        sid, "AC1", None, "a", "b", "inbound", "completed" if end else "ringing", None, 1.0,
        None, end, None, 603,
    )  # fmt: skip


def _stream(sid: str, call_sid: str, ended: float) -> StreamRecord:
    return StreamRecord(
        sid, "AC1", call_sid, sid, "wss://agent/", "inbound_track", "start", "stopped", None,
        None, ended - 5, ended,
    )  # fmt: skip


def _wav(root: Path, account: str, sid: str) -> Path:
    path = root / account / f"{sid}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF....WAVE")
    return path


def _pruned(kind: str) -> float:
    return metrics.REGISTRY.get_sample_value("rcmlrouter_records_pruned_total", {"kind": kind}) or 0


async def test_a_round_prunes_every_kind_in_batches(store: SqliteStore, tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    calls = [_call(f"CA{i:02d}", OLD - i) for i in range(7)]
    await store.write_journal([*calls, _call("CAyoung", YOUNG), _call("CAopen", None)], [], [])
    await store.add_notifications(
        [Notification(f"NO{i}", "AC1", None, 11200, "error", "x", None, OLD) for i in range(4)]
    )
    # a media stream goes with its call; an open call's (ended long ago) and a young one stay
    ended = {"CA00": OLD - 10, "CA01": OLD - 10, "CAopen": OLD - 10, "CAyoung": YOUNG}
    await store.save_streams([_stream("MZ" + call[2:], call, at) for call, at in ended.items()])
    old_files = []
    for index in range(5):
        await store.add_recording(Recording(f"RE{index}", "AC1", None, 1.0, OLD))
        old_files.append(_wav(recordings, "AC1", f"RE{index}"))
    old_files[0].unlink()  # a row whose file is already gone (a crash between the two)
    await store.add_recording(Recording("REyoung", "AC1", None, 1.0, YOUNG))
    young_file = _wav(recordings, "AC1", "REyoung")
    await store.add_recording(Recording("REowed", "AC1", None, 1.0, OLD))
    owed_file = _wav(recordings, "AC1", "REowed")
    await store.enqueue_callbacks([OutboxEvent(None, "REowed", "AC1", 0, "http://x/", "POST", {})])
    before = _pruned("calls")
    retention = RecordsRetention(store, MAX_AGE, recordings, batch=3, pause=0, clock=lambda: NOW)

    pruned = await retention.prune_once()

    assert pruned == {
        "calls": 7,
        "streams": 2,
        "messages": 0,
        "notifications": 4,
        "recordings": 5,
    }
    assert _pruned("calls") - before == 7
    left = sorted(c.sid for c in (await store.list_calls(CallQuery("AC1"), 0, 50)).items)
    assert left == ["CAopen", "CAyoung"]
    assert (await store.list_notifications("AC1", 0, 50)).total == 0
    assert [s.sid for s in await store.call_streams("CAopen")] == ["MZopen"]
    assert [s.sid for s in await store.call_streams("CAyoung")] == ["MZyoung"]
    assert await store.call_streams("CA00") == []
    assert sorted(r.sid for r in (await store.list_recordings("AC1", None, 0, 50)).items) == [
        "REowed",
        "REyoung",
    ]
    assert not any(path.exists() for path in old_files)
    assert young_file.exists() and owed_file.exists()
    assert await retention.prune_once() == dict.fromkeys(pruned, 0)


async def test_the_task_prunes_until_stopped_and_zero_keeps_everything(
    store: SqliteStore, tmp_path: Path
) -> None:
    await store.write_journal([_call("CAold", OLD)], [], [])
    keep = RecordsRetention(store, 0, tmp_path, interval=0.05, clock=lambda: NOW)
    keep.start()  # max_age 0: records are kept forever
    await asyncio.sleep(0.3)
    await keep.stop()
    assert (await store.list_calls(CallQuery("AC1"), 0, 5)).total == 1

    prune = RecordsRetention(store, MAX_AGE, tmp_path, interval=0.05, clock=lambda: NOW)
    prune.start()
    try:
        for _ in range(100):
            if (await store.list_calls(CallQuery("AC1"), 0, 5)).total == 0:
                break
            await asyncio.sleep(0.1)
        assert (await store.list_calls(CallQuery("AC1"), 0, 5)).total == 0
        await store.write_journal([_call("CAlater", OLD)], [], [])  # the next round takes it
        for _ in range(100):
            if (await store.list_calls(CallQuery("AC1"), 0, 5)).total == 0:
                break
            await asyncio.sleep(0.1)
        assert (await store.list_calls(CallQuery("AC1"), 0, 5)).total == 0
    finally:
        await prune.stop()


def test_the_interval_follows_max_age() -> None:
    store = object()
    assert RecordsRetention(store, 60, Path()).interval == 6.0  # type: ignore[arg-type]
    assert RecordsRetention(store, 30 * 86400, Path()).interval == 60.0  # type: ignore[arg-type]
