"""``SqliteStore``: the :class:`~rcmlrouter.store.base.Store` on SQLite (aiosqlite).

Open with ``await SqliteStore.open(path)``. sqlite3 errors become ``StoreError`` /
``ConflictError``; a missing row raises ``NotFoundError``.
"""

# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace

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
from rcmlrouter.store.number_grams import sqlite_indexed_numbers, sqlite_indexed_page
from rcmlrouter.store.sqlite_accounts import AccountQueries
from rcmlrouter.store.sqlite_lists import (
    filtered_page,
    inventory_where,
    keyset_sql,
    number_pattern_sql,
    number_where,
    page_sids,
    unfiltered_total,
)
from rcmlrouter.store.sqlite_messages import MessageQueries
from rcmlrouter.store.sqlite_recordings import RecordingQueries

ROUTE_BATCH = 20_000


class SqliteStore(AccountQueries, MessageQueries, RecordingQueries):
    """The SQLite store. Every method is a coroutine unless noted."""

    # ---- applications ----------------------------------------------------------------------

    async def create_application(self, app: Application) -> Application:
        async with self.transaction() as db:
            await db.execute(
                f"INSERT INTO applications ({rows.APP_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                rows.field_values(app),
            )
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
        async with self.transaction() as db:
            cursor = await db.execute(
                "UPDATE applications SET account_sid=?, friendly_name=?, voice_url=?, "
                "voice_method=?, sms_url=?, sms_method=?, refer_url=?, refer_method=?, "
                "date_created=?, date_updated=? WHERE sid = ?",
                (*values[1:], app.sid),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"no application {app.sid}")
        await self._notify_numbers_using(app.sid)
        return app

    async def delete_application(self, sid: str) -> None:
        """Delete; numbers using it lose the reference (and listeners hear about them)."""
        users = await self._numbers_using(sid)
        async with self.transaction() as db:
            cursor = await db.execute("DELETE FROM applications WHERE sid = ?", (sid,))
            if cursor.rowcount == 0:
                raise NotFoundError(f"no application {sid}")
        for number_sid in users:
            await self._notify_upsert(number_sid)

    async def list_applications(
        self, account_sid: str, page: int, page_size: int
    ) -> Page[Application]:
        count = await self.fetchone(
            "SELECT COUNT(*) FROM applications WHERE account_sid = ?", (account_sid,)
        )
        found = await self.fetchall(
            f"SELECT {rows.APP_COLUMNS} FROM applications WHERE account_sid = ? "
            "ORDER BY friendly_name, sid LIMIT ? OFFSET ?",
            (account_sid, page_size, page * page_size),
        )
        return Page([rows.to_application(r) for r in found], int(count[0]) if count else 0)

    async def _numbers_using(self, app_sid: str) -> list[str]:
        found = await self.fetchall(
            "SELECT sid FROM incoming_phone_numbers WHERE voice_application_sid = ? "
            "UNION SELECT sid FROM incoming_phone_numbers WHERE sms_application_sid = ? "
            "UNION SELECT sid FROM incoming_phone_numbers WHERE refer_application_sid = ?",
            (app_sid, app_sid, app_sid),
        )
        return [row[0] for row in found]

    async def _notify_numbers_using(self, app_sid: str) -> None:
        for number_sid in await self._numbers_using(app_sid):
            await self._notify_upsert(number_sid)

    # ---- numbers ---------------------------------------------------------------------------

    async def create_number(
        self, number: IncomingNumber, *, from_inventory: bool
    ) -> IncomingNumber:
        """Insert a number; with ``from_inventory`` claim its inventory entry atomically.

        Raises ConflictError when the number is taken or its inventory entry is unavailable.
        """
        now = time.time()

        def insert(db: sqlite3.Connection) -> None:
            if from_inventory:
                claimed = db.execute(
                    "UPDATE inventory SET assigned_sid = ? WHERE phone_number = ? "
                    "AND assigned_sid IS NULL AND available_at <= ?",
                    (number.sid, number.phone_number, now),
                )
                if claimed.rowcount == 0:
                    raise ConflictError(f"{number.phone_number} is not available")
            db.execute(rows.NUMBER_INSERT, rows.number_values(number))

        await self.run_in_transaction(insert)
        return await self._announce_upsert(number)

    async def buy_number(
        self, phone_number: str, build: Callable[[InventoryEntry], IncomingNumber]
    ) -> IncomingNumber:
        """Read ``phone_number``'s inventory entry, ``build`` the number from it, claim the
        entry and insert the number: one transaction, one database round trip.

        Raises NotFoundError when the number is not in the inventory, ConflictError when it is
        taken or still recycling; whatever ``build`` raises aborts the transaction.
        """
        now = time.time()

        def buy(db: sqlite3.Connection) -> IncomingNumber:
            row = db.execute(
                f"SELECT {rows.INVENTORY_COLUMNS} FROM inventory WHERE phone_number = ?",
                (phone_number,),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"{phone_number} is not in the inventory")
            number = build(rows.to_inventory(row))
            claimed = db.execute(
                "UPDATE inventory SET assigned_sid = ? WHERE phone_number = ? "
                "AND assigned_sid IS NULL AND available_at <= ?",
                (number.sid, phone_number, now),
            )
            if claimed.rowcount == 0:
                raise ConflictError(f"{phone_number} is not available")
            db.execute(rows.NUMBER_INSERT, rows.number_values(number))
            return number

        return await self._announce_upsert(await self.run_in_transaction(buy))

    async def bulk_insert_numbers(self, numbers: Sequence[IncomingNumber]) -> int:
        """Insert many numbers in one transaction, bypassing the inventory (imports, benches).

        Listeners are not called; rebuild routing from :meth:`iter_route_rows`.
        """
        async with self.transaction() as db:
            await db.executemany(rows.NUMBER_INSERT, [rows.number_values(n) for n in numbers])
        return len(numbers)

    async def get_number(self, sid: str) -> IncomingNumber:
        row = await self.fetchone(f"{rows.NUMBER_SELECT} WHERE n.sid = ?", (sid,))
        if row is None:
            raise NotFoundError(f"no number {sid}")
        return rows.to_number(row)

    async def update_number(self, number: IncomingNumber) -> IncomingNumber:
        """Replace every column of an existing number (account transfer included)."""
        values = rows.number_values(number)

        def update(db: sqlite3.Connection) -> None:
            if (
                db.execute(
                    f"{rows.NUMBER_UPDATE} WHERE sid = ?", (*values[1:], number.sid)
                ).rowcount
                == 0
            ):
                raise NotFoundError(f"no number {number.sid}")

        await self.run_in_transaction(update)
        return await self._announce_upsert(number)

    async def delete_number(self, sid: str, recycle_after: float) -> None:
        """Delete; a provider number returns to the inventory after ``recycle_after`` s."""
        async with self.transaction() as db:
            cursor = await db.execute(
                "SELECT phone_number, is_sip FROM incoming_phone_numbers WHERE sid = ?", (sid,)
            )
            row = await cursor.fetchone()
            if row is None:
                raise NotFoundError(f"no number {sid}")
            await db.execute("DELETE FROM incoming_phone_numbers WHERE sid = ?", (sid,))
            if not row[1]:
                await db.execute(
                    "UPDATE inventory SET assigned_sid = NULL, available_at = ? "
                    "WHERE phone_number = ?",
                    (time.time() + recycle_after, row[0]),
                )
        self.notify([NumberChange("delete", sid, None)])

    async def list_numbers(
        self, query: NumberQuery, page: int, page_size: int
    ) -> Page[IncomingNumber]:
        """One page, ordered by phone number then sid; one database round trip.

        Unfiltered totals come from ``number_counts`` and pages in the second half of the list
        are read backwards, so the skipped prefix stays short. Filtered lists (PhoneNumber,
        FriendlyName) count with a window function over the same scan that finds the page.
        """
        where, params = number_where(query)
        filtered = bool(query.phone_number) or query.friendly_name is not None

        def read(db: sqlite3.Connection) -> Page[IncomingNumber]:
            indexed = None
            if query.phone_number:  # through the gram index when it has a usable window
                indexed = sqlite_indexed_page(db, query, page, page_size, number_pattern_sql)
            if indexed is not None:
                sids, total = indexed
            elif filtered:
                sids, total = filtered_page(db, where, params, page, page_size)
            else:
                total = unfiltered_total(db, query)
                sids = page_sids(db, where, params, page * page_size, page_size, total)
            if not sids:
                return Page([], total)
            marks = ", ".join("?" for _ in sids)
            found = db.execute(f"{rows.NUMBER_SELECT} WHERE n.sid IN ({marks})", sids).fetchall()
            found.sort(key=lambda row: (row[3], row[0]))
            return Page([rows.to_number(r) for r in found], total)

        return await self.run_read(read)

    async def list_numbers_from(
        self, query: NumberQuery, cursor: NumberCursor | None, limit: int
    ) -> list[IncomingNumber]:
        """Up to ``limit`` numbers after (or before) ``cursor`` in list order, ascending."""
        if query.phone_number:  # through the gram index when it has a usable window

            def indexed(db: sqlite3.Connection) -> list[IncomingNumber] | None:
                return sqlite_indexed_numbers(db, query, cursor, limit, number_pattern_sql)

            if (numbers := await self.run_read(indexed)) is not None:
                return numbers
        where, params = number_where(query)
        sql, values = keyset_sql(where, params, cursor, limit)
        found = [rows.to_number(r) for r in await self.fetchall(sql, values)]
        return found[::-1] if cursor is not None and cursor.before else found

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
        await self.execute_many(
            "INSERT INTO inventory (phone_number, iso_country, number_type, region, rate_center, "
            "postal_code, lata, voice, sms, mms, fax, beta) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (phone_number) DO UPDATE SET iso_country = excluded.iso_country, "
            "number_type = excluded.number_type, region = excluded.region, "
            "rate_center = excluded.rate_center, postal_code = excluded.postal_code, "
            "lata = excluded.lata, voice = excluded.voice, sms = excluded.sms, "
            "mms = excluded.mms, fax = excluded.fax, beta = excluded.beta",
            values,
        )
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
        where, params = inventory_where(query, now)
        found = await self.fetchall(
            f"SELECT {rows.INVENTORY_COLUMNS} FROM inventory WHERE {where} "
            "ORDER BY phone_number LIMIT ?",
            [*params, query.limit],
        )
        return [rows.to_inventory(r) for r in found]

    async def pick_available_number(self, query: InventoryQuery, now: float) -> InventoryEntry:
        """A random available entry matching ``query``; NotFoundError when there is none."""
        where, params = inventory_where(query, now)
        row = await self.fetchone(
            f"SELECT {rows.INVENTORY_COLUMNS} FROM inventory WHERE {where} "
            "ORDER BY RANDOM() LIMIT 1",
            params,
        )
        if row is None:
            raise NotFoundError("no available number matches")
        return rows.to_inventory(row)

    async def count_inventory(self) -> int:
        row = await self.fetchone("SELECT COUNT(*) FROM inventory")
        return int(row[0]) if row else 0
