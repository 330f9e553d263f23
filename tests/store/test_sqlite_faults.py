"""SQLite faults become StoreUnavailableError (API and SIP answer 503; writers retry), and the
connection is usable again as soon as the cause is gone: no transaction is left open."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rcmlrouter.errors import StoreUnavailableError
from rcmlrouter.store.records import Notification
from rcmlrouter.store.sqlite import SqliteStore

HOLD_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
"""


def _note(index: int, size: int = 100) -> Notification:
    return Notification(f"NO{index:032d}", "AC1", None, 1, "error", "x" * size, None, time.time())


async def test_a_database_locked_by_another_process_is_unavailable(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    store = await SqliteStore.open(db)
    await store._db.execute("PRAGMA busy_timeout=200")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreUnavailableError, match="locked by another process"):
            await store.add_notifications([_note(1)])
        page = await store.list_notifications("AC1", 0, 10)  # reads go on (WAL)
        assert page.items == []
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(10)
    await store.add_notifications([_note(2)])  # released: writes work again
    assert [n.sid for n in (await store.list_notifications("AC1", 0, 10)).items] == [_note(2).sid]
    await store.close()


async def test_a_full_disk_is_unavailable_and_space_brings_it_back(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (root needed): {mounted.stderr.decode().strip()}")
    try:
        store = await SqliteStore.open(disk / "full.db")
        reserve = disk / "reserve"
        reserve.write_bytes(b"\0" * 512 * 1024)
        written = 0
        with pytest.raises(StoreUnavailableError, match="disk is full"):
            while written < 10_000:
                written += 1
                await store.add_notifications([_note(written, 4000)])
        with pytest.raises(StoreUnavailableError, match="disk is full"):  # not a stuck transaction
            await store.add_notifications([_note(written + 1, 4000)])
        page = await store.list_notifications("AC1", 0, 1)
        assert page.total == written - 1  # the failed writes left nothing behind
        reserve.unlink()  # space is freed
        await store.add_notifications([_note(written + 2, 100)])
        assert (await store.list_notifications("AC1", 0, 1)).total == written
        await store.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


async def test_writes_queued_behind_a_locked_database_fail_fast_then_recover(
    tmp_path: Path,
) -> None:
    """The first write waits the full busy timeout; the writes queued behind it on the one
    connection do not each wait another full timeout (an API request behind background
    writers got its 503 after 15-20 s), and the first write after the release succeeds."""
    db = tmp_path / "locked.db"
    store = await SqliteStore.open(db)
    await store._db.execute("PRAGMA busy_timeout=1000")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        outcomes = await asyncio.gather(
            *(store.add_notifications([_note(i)]) for i in range(5)), return_exceptions=True
        )
        took = time.monotonic() - started
        assert all(isinstance(o, StoreUnavailableError) for o in outcomes), outcomes
        assert took < 2.0, f"five queued writes took {took:.2f} s (one busy timeout: 1 s)"
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(10)
    await store.add_notifications([_note(9)])  # at once after the release
    assert [n.sid for n in (await store.list_notifications("AC1", 0, 10)).items] == [_note(9).sid]
    assert (await store._db.execute_fetchall("PRAGMA busy_timeout"))[0][0] == 5000
    await store.close()
