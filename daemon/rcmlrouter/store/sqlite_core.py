"""The SQLite connection underneath :class:`~rcmlrouter.store.sqlite.SqliteStore`.

One aiosqlite connection serves reads and writes; an ``asyncio.Lock`` serialises units of work so
a transaction's statements never interleave with another coroutine's. Migrations are the numbered
``migrations/NNNN_*.sql`` files, applied at open inside one transaction and tracked in
``schema_version``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Self, TypeVar, cast

import aiosqlite
import structlog

from rcmlrouter.errors import ConflictError, StoreError, StoreUnavailableError
from rcmlrouter.store.base import ChangeListener
from rcmlrouter.store.sql import ChangeNotifier

log = structlog.get_logger()

Row = tuple[Any, ...]
T = TypeVar("T")


def migration_scripts() -> list[tuple[int, str]]:
    """(version, sql) for every packaged migration, in order."""
    found: list[tuple[int, str]] = []
    for entry in resources.files("rcmlrouter.store").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql") and entry.name[:4].isdigit():
            found.append((int(entry.name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


# Primary result codes after which a later retry may succeed: answered 503, retried by writers.
_UNAVAILABLE = {
    5: "the database is locked by another process (SQLITE_BUSY)",
    6: "a table is locked (SQLITE_LOCKED)",
    10: "disk I/O error (SQLITE_IOERR)",
    13: "the disk is full (SQLITE_FULL)",
}


SQLITE_BUSY = 5
BUSY_TIMEOUT_MS = 5000
# After a write found the database locked by another process (having waited BUSY_TIMEOUT_MS),
# later writes wait only this long until one succeeds: an API request or a call gets its 503
# within one busy timeout, not after every background writer queued before it on the
# connection has waited a full one of its own; the first write after the release succeeds.
LOCKED_BUSY_TIMEOUT_MS = 100


def _translate(exc: sqlite3.Error) -> StoreError:
    if isinstance(exc, sqlite3.IntegrityError):
        return ConflictError(str(exc))
    reason = _UNAVAILABLE.get(getattr(exc, "sqlite_errorcode", 0) & 0xFF)
    if reason is not None:
        return StoreUnavailableError(f"database unavailable: {reason}: {exc}")
    return StoreError(f"database error: {exc}")


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is still open: after SQLITE_FULL, SQLITE_IOERR or
    SQLITE_BUSY SQLite may already have rolled it back itself, and a second ROLLBACK would
    replace the real error with "no transaction is active"."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _create_private_file(path: Path) -> None:
    """Create the database file with mode 0600 before SQLite touches it (it holds tokens)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class SqliteConnection(ChangeNotifier):
    """Connection, locking, transactions, migrations and change listeners."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self._listeners: list[ChangeListener] = []
        self._locked = False  # the last write found the database locked by another process

    async def _write_failed(self, exc: sqlite3.Error) -> StoreError:
        """Translate a failed write; on SQLITE_BUSY wait only LOCKED_BUSY_TIMEOUT_MS from now
        on (called holding the connection lock)."""
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF == SQLITE_BUSY and not self._locked:
            self._locked = True
            await self._db.execute(f"PRAGMA busy_timeout={LOCKED_BUSY_TIMEOUT_MS}")
        return _translate(exc)

    async def _write_succeeded(self) -> None:
        if self._locked:
            self._locked = False
            await self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Self:
        """Open (creating if needed, mode 0600) and migrate the database at ``path``."""
        file = Path(path)
        if str(path) != ":memory:":
            try:
                _create_private_file(file)
            except OSError as exc:
                raise StoreError(f"cannot create database {file}: {exc}") from exc
        try:
            pending = aiosqlite.connect(str(path), isolation_level=None)
            # A store someone forgot to close must not keep the process alive at exit (SQLite
            # in WAL mode treats that like a crash: the open transaction is rolled back).
            worker = getattr(pending, "_thread", None)
            if worker is not None:
                worker.daemon = True
            db = await pending
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            await db.execute("PRAGMA cache_size=-65536")
            await db.execute("PRAGMA mmap_size=268435456")
            await db.execute("PRAGMA temp_store=MEMORY")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {file}: {exc}") from exc
        store = cls(db)
        await store.migrate()
        return store

    async def close(self) -> None:
        async with self._lock:
            await self._db.close()

    async def migrate(self) -> int:
        """Apply pending migrations; return the schema version."""
        async with self.transaction() as db:
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                "applied_at REAL NOT NULL)"
            )
            cursor = await db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            row = await cursor.fetchone()
            current = int(row[0]) if row else 0
            for version, script in migration_scripts():
                if version <= current:
                    continue
                for statement in _split_statements(script):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_version (version, applied_at) "
                    "VALUES (?, CAST(strftime('%s','now') AS REAL))",
                    (version,),
                )
                log.info("store.migrated", version=version)
                current = version
        return current

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT); sqlite3 errors translated."""
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise await self._write_failed(exc) from exc
            try:
                yield self._db
                await self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                await self._db._execute(_rollback, self._db._conn)  # type: ignore[no-untyped-call]
                raise await self._write_failed(exc) from exc
            except BaseException:
                await self._db._execute(_rollback, self._db._conn)  # type: ignore[no-untyped-call]
                raise
            await self._write_succeeded()

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._lock:
            try:
                rows = await self._db.execute_fetchall(sql, params)
            except sqlite3.Error as exc:
                raise _translate(exc) from exc
        return cast(list[Row], list(rows))

    async def run_in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` inside one write transaction on the database thread, in one hop.

        For hot write paths: a unit of work costs one thread round trip instead of one per
        statement. Uses aiosqlite's ``_execute`` (the hook behind every aiosqlite call).
        """

        def unit() -> T:
            conn = self._db._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            return result

        async with self._lock:
            try:
                result = cast(T, await self._db._execute(unit))  # type: ignore[no-untyped-call]
            except sqlite3.Error as exc:
                raise await self._write_failed(exc) from exc
            await self._write_succeeded()
            return result

    async def run_read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run several reads on the database thread in one hop (and one read snapshot)."""

        def unit() -> T:
            conn = self._db._conn
            conn.execute("BEGIN")
            try:
                return work(conn)
            finally:
                conn.execute("COMMIT")

        async with self._lock:
            try:
                return cast(T, await self._db._execute(unit))  # type: ignore[no-untyped-call]
            except sqlite3.Error as exc:
                raise _translate(exc) from exc

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as db:
            await db.executemany(sql, rows)


def _split_statements(script: str) -> list[str]:
    """Complete SQL statements of ``script`` (trigger bodies with inner ``;`` stay whole)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        if not pending and line.strip().startswith("--"):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements
