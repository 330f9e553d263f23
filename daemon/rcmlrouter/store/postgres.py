"""``PostgresStore``: the :class:`~rcmlrouter.store.base.Store` on PostgreSQL (asyncpg).

Open with ``await PostgresStore.open("postgresql://user@host/db")``. Same tables, columns and
semantics as :class:`~rcmlrouter.store.sqlite.SqliteStore`: uniqueness and integrity violations
raise ``ConflictError``, a missing row ``NotFoundError``, an unreachable database (after retries)
``StoreUnavailableError``. Change listeners hear about the changes made through this store
object, after commit; other processes' changes arrive through the change feed (``cluster/``).
"""

# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace

import asyncpg

from rcmlrouter.errors import ConflictError, NotFoundError
from rcmlrouter.store import rows
from rcmlrouter.store.base import (
    Application,
    IncomingNumber,
    InventoryEntry,
    InventoryQuery,
    NumberChange,
    NumberCursor,
    NumberQuery,
    Page,
)
from rcmlrouter.store.number_grams import postgres_indexed_numbers, postgres_indexed_page
from rcmlrouter.store.postgres_accounts import AccountQueries
from rcmlrouter.store.postgres_core import (
    ACQUIRE_TIMEOUT,
    is_connection_loss,
    numbered,
    translate,
)
from rcmlrouter.store.postgres_lists import (
    filtered_page,
    number_pattern_sql,
    page_sids,
    unfiltered_total,
)
from rcmlrouter.store.postgres_recordings import RecordingQueries
from rcmlrouter.store.sqlite_lists import inventory_where, keyset_sql, number_where

ROUTE_BATCH = 20_000  # rows fetched per round trip by iter_route_rows' cursor

_APP_INSERT = numbered(
    f"INSERT INTO applications ({rows.APP_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
_APP_UPDATE = numbered(
    "UPDATE applications SET account_sid=?, friendly_name=?, voice_url=?, voice_method=?, "
    "sms_url=?, sms_method=?, refer_url=?, refer_method=?, date_created=?, date_updated=? "
    "WHERE sid = ?"
)
_APP_USERS = (
    "SELECT sid FROM incoming_phone_numbers WHERE voice_application_sid = $1 "
    "OR sms_application_sid = $1 OR refer_application_sid = $1"
)
_NUMBER_INSERT = numbered(rows.NUMBER_INSERT)
_NUMBER_UPDATE = numbered(f"{rows.NUMBER_UPDATE} WHERE sid = ?")
_CLAIM = (
    "UPDATE inventory SET assigned_sid = $1 WHERE phone_number = $2 "
    "AND assigned_sid IS NULL AND available_at <= $3"
)
_INVENTORY_UPSERT = (
    "INSERT INTO inventory (phone_number, iso_country, number_type, region, rate_center, "
    "postal_code, lata, voice, sms, mms, fax, beta) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (phone_number) DO UPDATE SET iso_country = excluded.iso_country, "
    "number_type = excluded.number_type, region = excluded.region, "
    "rate_center = excluded.rate_center, postal_code = excluded.postal_code, "
    "lata = excluded.lata, voice = excluded.voice, sms = excluded.sms, "
    "mms = excluded.mms, fax = excluded.fax, beta = excluded.beta"
)


def _count(status: str) -> int:
    """Rows touched, from a command status such as ``UPDATE 1``."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresStore(AccountQueries, RecordingQueries):
    """The PostgreSQL store. Every method is a coroutine unless noted."""

    # ---- applications ----------------------------------------------------------------------

    async def create_application(self, app: Application) -> Application:
        values = rows.field_values(app)

        async def unit(conn: asyncpg.Connection) -> None:
            await conn.execute(_APP_INSERT, *values)

        await self.write(unit)
        return app

    async def get_application(self, sid: str) -> Application:
        row = await self.fetchone(
            f"SELECT {rows.APP_COLUMNS} FROM applications WHERE sid = ?", (sid,)
        )
        if row is None:
            raise NotFoundError(f"no application {sid}")
        return rows.to_application(row)

    async def update_application(self, app: Application) -> Application:
        values = rows.field_values(app)

        async def unit(conn: asyncpg.Connection) -> list[str]:
            if _count(await conn.execute(_APP_UPDATE, *values[1:], app.sid)) == 0:
                raise NotFoundError(f"no application {app.sid}")
            return [r[0] for r in await conn.fetch(_APP_USERS, app.sid)]

        for number_sid in await self.write(unit, idempotent=True):
            await self._notify_upsert(number_sid)
        return app

    async def delete_application(self, sid: str) -> None:
        """Delete; numbers using it lose the reference (and listeners hear about them)."""

        async def unit(conn: asyncpg.Connection) -> list[str]:
            users = [r[0] for r in await conn.fetch(_APP_USERS, sid)]
            if _count(await conn.execute("DELETE FROM applications WHERE sid = $1", sid)) == 0:
                raise NotFoundError(f"no application {sid}")
            return users

        for number_sid in await self.write(unit):
            await self._notify_upsert(number_sid)

    async def list_applications(
        self, account_sid: str, page: int, page_size: int
    ) -> Page[Application]:
        async def unit(conn: asyncpg.Connection) -> Page[Application]:
            total = await conn.fetchval(
                "SELECT COUNT(*) FROM applications WHERE account_sid = $1", account_sid
            )
            found = await conn.fetch(
                f"SELECT {rows.APP_COLUMNS} FROM applications WHERE account_sid = $1 "
                "ORDER BY friendly_name, sid LIMIT $2 OFFSET $3",
                account_sid,
                page_size,
                page * page_size,
            )
            return Page([rows.to_application(tuple(r)) for r in found], int(total))

        return await self.read_snapshot(unit)

    # ---- numbers ---------------------------------------------------------------------------

    async def create_number(
        self, number: IncomingNumber, *, from_inventory: bool
    ) -> IncomingNumber:
        """Insert a number; with ``from_inventory`` claim its inventory entry atomically.

        Raises ConflictError when the number is taken or its inventory entry is unavailable.
        """
        now, values = time.time(), rows.number_values(number)

        async def unit(conn: asyncpg.Connection) -> None:
            if from_inventory and (
                _count(await conn.execute(_CLAIM, number.sid, number.phone_number, now)) == 0
            ):
                raise ConflictError(f"{number.phone_number} is not available")
            await conn.execute(_NUMBER_INSERT, *values)

        await self.write(unit)
        return await self._announce_upsert(number)

    async def buy_number(
        self, phone_number: str, build: Callable[[InventoryEntry], IncomingNumber]
    ) -> IncomingNumber:
        """Read ``phone_number``'s inventory entry, ``build`` the number from it, claim the
        entry and insert the number: one transaction.

        Raises NotFoundError when the number is not in the inventory, ConflictError when it is
        taken or still recycling; whatever ``build`` raises aborts the transaction.
        """
        now = time.time()

        async def unit(conn: asyncpg.Connection) -> IncomingNumber:
            row = await conn.fetchrow(
                f"SELECT {rows.INVENTORY_COLUMNS} FROM inventory WHERE phone_number = $1 "
                "FOR UPDATE",
                phone_number,
            )
            if row is None:
                raise NotFoundError(f"{phone_number} is not in the inventory")
            number = build(rows.to_inventory(tuple(row)))
            if _count(await conn.execute(_CLAIM, number.sid, phone_number, now)) == 0:
                raise ConflictError(f"{phone_number} is not available")
            await conn.execute(_NUMBER_INSERT, *rows.number_values(number))
            return number

        return await self._announce_upsert(await self.write(unit))

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

    async def get_number(self, sid: str) -> IncomingNumber:
        row = await self.fetchone(f"{rows.NUMBER_SELECT} WHERE n.sid = ?", (sid,))
        if row is None:
            raise NotFoundError(f"no number {sid}")
        return rows.to_number(row)

    async def update_number(self, number: IncomingNumber) -> IncomingNumber:
        """Replace every column of an existing number (account transfer included)."""
        values = rows.number_values(number)

        async def unit(conn: asyncpg.Connection) -> None:
            if _count(await conn.execute(_NUMBER_UPDATE, *values[1:], number.sid)) == 0:
                raise NotFoundError(f"no number {number.sid}")

        await self.write(unit, idempotent=True)
        return await self._announce_upsert(number)

    async def delete_number(self, sid: str, recycle_after: float) -> None:
        """Delete; a provider number returns to the inventory after ``recycle_after`` s."""

        async def unit(conn: asyncpg.Connection) -> None:
            row = await conn.fetchrow(
                "DELETE FROM incoming_phone_numbers WHERE sid = $1 RETURNING phone_number, is_sip",
                sid,
            )
            if row is None:
                raise NotFoundError(f"no number {sid}")
            if not row[1]:
                await conn.execute(
                    "UPDATE inventory SET assigned_sid = NULL, available_at = $1 "
                    "WHERE phone_number = $2",
                    time.time() + recycle_after,
                    row[0],
                )

        await self.write(unit)
        self.notify([NumberChange("delete", sid, None)])

    async def list_numbers(
        self, query: NumberQuery, page: int, page_size: int
    ) -> Page[IncomingNumber]:
        """One page, ordered by phone number then sid; one read snapshot (see SqliteStore)."""
        where, params = number_where(query, number_pattern_sql)
        filtered = bool(query.phone_number) or query.friendly_name is not None
        select = numbered(f"{rows.NUMBER_SELECT} WHERE n.sid = ANY(?::text[])")

        async def unit(conn: asyncpg.Connection) -> Page[IncomingNumber]:
            indexed = None
            if query.phone_number:  # through the gram index when it has a usable window
                indexed = await postgres_indexed_page(
                    conn, query, page, page_size, number_pattern_sql
                )
            if indexed is not None:
                sids, total = indexed
            elif filtered:
                sids, total = await filtered_page(conn, where, params, page, page_size)
            else:
                total = await unfiltered_total(conn, query)
                offset = page * page_size
                sids = await page_sids(conn, where, params, offset, page_size, total)
            if not sids:
                return Page([], total)
            found = [tuple(r) for r in await conn.fetch(select, sids)]
            found.sort(key=lambda row: (row[3], row[0]))
            return Page([rows.to_number(r) for r in found], total)

        return await self.read_snapshot(unit)

    async def list_numbers_from(
        self, query: NumberQuery, cursor: NumberCursor | None, limit: int
    ) -> list[IncomingNumber]:
        """Up to ``limit`` numbers after (or before) ``cursor`` in list order, ascending."""
        if query.phone_number:  # through the gram index when it has a usable window

            async def indexed(conn: asyncpg.Connection) -> list[IncomingNumber] | None:
                return await postgres_indexed_numbers(
                    conn, query, cursor, limit, number_pattern_sql
                )

            if (numbers := await self.read_snapshot(indexed)) is not None:
                return numbers
        where, params = number_where(query, number_pattern_sql)
        sql, values = keyset_sql(where, params, cursor, limit)
        found = [rows.to_number(r) for r in await self.fetchall(sql, values)]
        return found[::-1] if cursor is not None and cursor.before else found

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

    async def _announce_upsert(self, number: IncomingNumber) -> IncomingNumber:
        """Tell listeners about a committed number; application names filled in."""
        if (
            number.voice_application_sid
            or number.sms_application_sid
            or number.refer_application_sid
        ):
            return await self._notify_upsert(number.sid)
        plain = replace(
            number,
            voice_application_name=None,
            sms_application_name=None,
            refer_application_name=None,
        )
        self.notify([NumberChange("upsert", number.sid, plain)])
        return plain

    async def _notify_upsert(self, sid: str) -> IncomingNumber:
        number = await self.get_number(sid)
        self.notify([NumberChange("upsert", sid, number)])
        return number

    # ---- inventory -------------------------------------------------------------------------

    async def import_inventory(self, entries: Iterable[InventoryEntry]) -> int:
        """Upsert inventory entries (assignment and recycling state are kept); return count."""
        values = [rows.inventory_values(e)[:12] for e in entries]
        if values:
            await self.execute_many(_INVENTORY_UPSERT, values, idempotent=True)
        return len(values)

    async def get_inventory_entry(self, phone_number: str) -> InventoryEntry:
        row = await self.fetchone(
            f"SELECT {rows.INVENTORY_COLUMNS} FROM inventory WHERE phone_number = ?",
            (phone_number,),
        )
        if row is None:
            raise NotFoundError(f"{phone_number} is not in the inventory")
        return rows.to_inventory(row)

    async def list_inventory(self, query: InventoryQuery, now: float) -> list[InventoryEntry]:
        """Available entries matching ``query``, ordered by phone number."""
        where, params = inventory_where(query, now, number_pattern_sql)
        found = await self.fetchall(
            f"SELECT {rows.INVENTORY_COLUMNS} FROM inventory WHERE {where} "
            "ORDER BY phone_number LIMIT ?",
            [*params, query.limit],
        )
        return [rows.to_inventory(r) for r in found]

    async def pick_available_number(self, query: InventoryQuery, now: float) -> InventoryEntry:
        """A random available entry matching ``query``; NotFoundError when there is none."""
        where, params = inventory_where(query, now, number_pattern_sql)
        row = await self.fetchone(
            f"SELECT {rows.INVENTORY_COLUMNS} FROM inventory WHERE {where} "
            "ORDER BY random() LIMIT 1",
            params,
        )
        if row is None:
            raise NotFoundError("no available number matches")
        return rows.to_inventory(row)

    async def count_inventory(self) -> int:
        row = await self.fetchone("SELECT COUNT(*) FROM inventory")
        return int(row[0]) if row else 0
