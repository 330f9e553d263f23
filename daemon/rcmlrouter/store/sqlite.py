"""``SqliteStore``: the :class:`~rcmlrouter.store.base.Store` on SQLite (aiosqlite).

Open with ``await SqliteStore.open(path)``. sqlite3 errors become ``StoreError`` /
``ConflictError``; a missing row raises ``NotFoundError``. The queries are the engine-neutral
``queries_*`` mixins; this module drives their units of work on the database thread (one hop
per unit) and keeps what is SQLite's own: GLOB patterns, bulk inserts, the rowid route stream.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar, cast

from rcmlrouter.store import rows
from rcmlrouter.store.number_lists import glob_pattern_sql
from rcmlrouter.store.queries import StoreQueries
from rcmlrouter.store.records import IncomingNumber
from rcmlrouter.store.sql import Dialect, SqlStore, T, Unit, Work, execute_many
from rcmlrouter.store.sqlite_records import JournalQueries

ROUTE_BATCH = 20_000


def _in_list(expr: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    return f"{expr} IN ({', '.join('?' for _ in values)})", list(values)


SQLITE = Dialect(
    name="sqlite",
    pattern_sql=glob_pattern_sql,
    in_list=_in_list,
    for_update="",  # BEGIN IMMEDIATE already holds the database for the whole unit
    setup_lock=None,
)


def drive(unit: Unit[T], db: sqlite3.Connection) -> T:
    """Run ``unit``'s steps on ``db`` (on the database thread); its result."""
    result: Any = None
    try:
        while True:
            step = unit.send(result)
            if step.kind == "rows":
                result = db.execute(step.sql, step.params).fetchall()
            elif step.kind == "count":
                result = db.execute(step.sql, step.params).rowcount
            else:
                db.executemany(step.sql, step.params)
                result = None
    except StopIteration as done:
        return cast(T, done.value)


class SqliteEngine(JournalQueries, SqlStore):
    """Units of work on the aiosqlite connection."""

    dialect: ClassVar[Dialect] = SQLITE

    async def read_unit(self, work: Work[T]) -> T:
        return await self.run_read(lambda db: drive(work(), db))

    async def write_unit(self, work: Work[T], *, idempotent: bool = False) -> T:
        return await self.run_in_transaction(lambda db: drive(work(), db))


class SqliteStore(SqliteEngine, StoreQueries):
    """The SQLite store. Every method is a coroutine unless noted."""

    async def bulk_insert_numbers(self, numbers: Sequence[IncomingNumber]) -> int:
        """Insert many numbers in one transaction, bypassing the inventory (imports, benches).

        Listeners are not called; rebuild routing from :meth:`iter_route_rows`.
        """
        values = [rows.number_values(n) for n in numbers]
        await self.write_unit(lambda: execute_many(rows.NUMBER_INSERT, values))
        return len(numbers)

    async def iter_route_rows(self) -> AsyncIterator[tuple[str, str, str, bool, float]]:
        """(sid, organization_sid, phone_number, is_sip, date_created) for every number."""
        last = 0
        while True:
            batch = await self.fetchall(
                "SELECT rowid, sid, organization_sid, phone_number, is_sip, date_created "
                "FROM incoming_phone_numbers WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (last, ROUTE_BATCH),
            )
            for _, sid, org, phone, is_sip, created in batch:
                yield sid, org, phone, is_sip == 1, created
            if len(batch) < ROUTE_BATCH:
                return
            last = batch[-1][0]
