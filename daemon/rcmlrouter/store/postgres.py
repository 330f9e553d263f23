"""``PostgresStore``: the :class:`~rcmlrouter.store.base.Store` on PostgreSQL (asyncpg).

Open with ``await PostgresStore.open("postgresql://user@host/db")``. Same tables, columns and
semantics as :class:`~rcmlrouter.store.sqlite.SqliteStore`: uniqueness and integrity violations
raise ``ConflictError``, a missing row ``NotFoundError``, an unreachable database (after retries)
``StoreUnavailableError``. Change listeners hear about the changes made through this store
object, after commit; other processes' changes arrive through the change feed (``cluster/``).

The queries are the engine-neutral ``queries_*`` mixins; this module drives their units of work
on pooled connections and keeps what is PostgreSQL's own: regular-expression patterns, row
locks, COPY, the server-side cursor of the route stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar, cast

import asyncpg

from rcmlrouter.store import rows
from rcmlrouter.store.number_lists import regex_pattern_sql
from rcmlrouter.store.postgres_core import (
    ACQUIRE_TIMEOUT,
    is_connection_loss,
    numbered,
    translate,
)
from rcmlrouter.store.postgres_records import JournalQueries
from rcmlrouter.store.queries import StoreQueries
from rcmlrouter.store.records import IncomingNumber
from rcmlrouter.store.sql import Dialect, SqlStore, T, Unit, Work

ROUTE_BATCH = 20_000  # rows fetched per round trip by iter_route_rows' cursor


def _in_list(expr: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    return f"{expr} = ANY(?::text[])", [list(values)]


POSTGRES = Dialect(
    name="postgresql",
    pattern_sql=regex_pattern_sql,
    in_list=_in_list,
    for_update=" FOR UPDATE",
    setup_lock="SELECT pg_advisory_xact_lock(hashtext('rcmlrouter.default'))",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    prune_lock=(  # per schema: test schemas (and tenants' schemas) prune side by side
        "SELECT pg_try_advisory_xact_lock(hashtext('rcmlrouter.prune:' || "
        "current_setting('search_path')))"
    ),
)


async def drive(unit: Unit[T], conn: asyncpg.Connection) -> T:
    """Run ``unit``'s steps on ``conn`` (placeholders numbered); its result."""
    result: Any = None
    try:
        while True:
            step = unit.send(result)
            sql = numbered(step.sql)
            if step.kind == "rows":
                result = [tuple(r) for r in await conn.fetch(sql, *step.params)]
            elif step.kind == "count":  # a command status such as ``UPDATE 1``
                result = int((await conn.execute(sql, *step.params)).rsplit(" ", 1)[-1])
            else:
                await conn.executemany(sql, [tuple(r) for r in step.params])
                result = None
    except StopIteration as done:
        return cast(T, done.value)


class PostgresEngine(JournalQueries, SqlStore):
    """Units of work on pooled connections, with the pool's retries."""

    dialect: ClassVar[Dialect] = POSTGRES

    async def read_unit(self, work: Work[T]) -> T:
        return await self.read_snapshot(lambda conn: drive(work(), conn))

    async def write_unit(self, work: Work[T], *, idempotent: bool = False) -> T:
        return await self.write(lambda conn: drive(work(), conn), idempotent=idempotent)


class PostgresStore(PostgresEngine, StoreQueries):
    """The PostgreSQL store. Every method is a coroutine unless noted."""

    async def bulk_insert_numbers(self, numbers: Sequence[IncomingNumber]) -> int:
        """Insert many numbers in one transaction (COPY), bypassing the inventory.

        Listeners are not called; rebuild routing from :meth:`iter_route_rows`.
        """
        values = [rows.number_values(n) for n in numbers]

        async def unit(conn: asyncpg.Connection) -> None:
            await conn.copy_records_to_table(
                "incoming_phone_numbers", records=values, columns=list(rows.NUMBER_FIELDS)
            )

        if values:
            await self.write(unit)
        return len(values)

    async def iter_route_rows(self) -> AsyncIterator[tuple[str, str, str, bool, float]]:
        """(sid, organization_sid, phone_number, is_sip, date_created) for every number, read
        through a server-side cursor in one REPEATABLE READ snapshot.

        A connection lost mid-stream raises StoreUnavailableError (rows were already yielded,
        so the caller starts over).
        """
        sql = (
            "SELECT sid, organization_sid, phone_number, is_sip, date_created "
            "FROM incoming_phone_numbers"
        )
        try:
            async with (
                self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                async for r in conn.cursor(sql, prefetch=ROUTE_BATCH):
                    yield r[0], r[1], r[2], r[3] == 1, r[4]
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            if isinstance(exc, asyncpg.InterfaceError) and not is_connection_loss(exc):
                raise
            raise translate(exc) from exc
