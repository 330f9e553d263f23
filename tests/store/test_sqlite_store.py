"""What only the SQLite store has: a private database file in WAL mode.

Everything else the store does is in the contract suite (test_store_contract*.py), which runs
on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rcmlrouter.store.sqlite import SqliteStore
from rcmlrouter.store.sqlite_core import migration_scripts


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "store.db")
    yield opened
    await opened.close()


async def test_file_is_private_and_migrations_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "db.sqlite"
    first = await SqliteStore.open(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    admin, token = await first.ensure_default_setup()
    assert token is not None and len(token) == 32
    await first.close()
    latest = migration_scripts()[-1][0]
    assert latest >= 3
    second = await SqliteStore.open(path)
    try:
        assert await second.migrate() == latest  # nothing left to apply
        again, no_token = await second.ensure_default_setup()
        assert again == admin and no_token is None
    finally:
        await second.close()
    with sqlite3.connect(path) as raw:
        applied = raw.execute("SELECT COUNT(*) FROM schema_version").fetchone()
        assert applied == (len(migration_scripts()),)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
