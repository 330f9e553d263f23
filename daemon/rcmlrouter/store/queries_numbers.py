# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
"""Incoming numbers and the inventory, for both engines.

Listeners hear about every committed change to a number made through this store object, with
the application names filled in. Bulk inserts and the route stream are the engines' own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from rcmlrouter.errors import ConflictError, NotFoundError
from rcmlrouter.store import rows
from rcmlrouter.store.filters import InventoryQuery, NumberCursor, NumberQuery, Page
from rcmlrouter.store.number_grams import indexed_numbers, indexed_page
from rcmlrouter.store.number_lists import (
    filtered_page,
    inventory_where,
    keyset_sql,
    number_where,
    page_sids,
    unfiltered_total,
)
from rcmlrouter.store.records import IncomingNumber, InventoryEntry, NumberChange
from rcmlrouter.store.sql import SqlStore, Unit, change, execute_many, fetch, fetch_one

NUMBER_UPDATE = f"{rows.NUMBER_UPDATE} WHERE sid = ?"
CLAIM = (
    "UPDATE inventory SET assigned_sid = ? WHERE phone_number = ? "
    "AND assigned_sid IS NULL AND available_at <= ?"
)
RELEASE = "UPDATE inventory SET assigned_sid = NULL, available_at = ? WHERE phone_number = ?"
INVENTORY_SELECT = f"SELECT {rows.INVENTORY_COLUMNS} FROM inventory"
INVENTORY_UPSERT = (
    "INSERT INTO inventory (phone_number, iso_country, number_type, region, rate_center, "
    "postal_code, lata, voice, sms, mms, fax, beta) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (phone_number) DO UPDATE SET iso_country = excluded.iso_country, "
    "number_type = excluded.number_type, region = excluded.region, "
    "rate_center = excluded.rate_center, postal_code = excluded.postal_code, "
    "lata = excluded.lata, voice = excluded.voice, sms = excluded.sms, "
    "mms = excluded.mms, fax = excluded.fax, beta = excluded.beta"
)


def claim_and_insert(number: IncomingNumber, now: float) -> Unit[None]:
    """Claim ``number``'s inventory entry (ConflictError when taken or recycling), insert it."""
    if (yield from change(CLAIM, (number.sid, number.phone_number, now))) == 0:
        raise ConflictError(f"{number.phone_number} is not available")
    yield from change(rows.NUMBER_INSERT, rows.number_values(number))


class NumberQueries(SqlStore):
    """Numbers and the inventory."""

    async def create_number(
        self, number: IncomingNumber, *, from_inventory: bool
    ) -> IncomingNumber:
        """Insert a number; with ``from_inventory`` claim its inventory entry atomically.

        Raises ConflictError when the number is taken or its inventory entry is unavailable.
        """
        now, values = time.time(), rows.number_values(number)

        def unit() -> Unit[None]:
            if from_inventory:
                yield from claim_and_insert(number, now)
            else:
                yield from change(rows.NUMBER_INSERT, values)

        await self.write_unit(unit)
        return await self._announce_upsert(number)

    async def buy_number(
        self, phone_number: str, build: Callable[[InventoryEntry], IncomingNumber]
    ) -> IncomingNumber:
        """Read ``phone_number``'s inventory entry, ``build`` the number from it, claim the
        entry and insert the number: one transaction.

        Raises NotFoundError when the number is not in the inventory, ConflictError when it is
        taken or still recycling; whatever ``build`` raises aborts the transaction.
        """
        now, lock = time.time(), self.dialect.for_update

        def unit() -> Unit[IncomingNumber]:
            sql = f"{INVENTORY_SELECT} WHERE phone_number = ?{lock}"
            row = yield from fetch_one(sql, (phone_number,))
            if row is None:
                raise NotFoundError(f"{phone_number} is not in the inventory")
            number = build(rows.to_inventory(row))
            yield from claim_and_insert(number, now)
            return number

        return await self._announce_upsert(await self.write_unit(unit))

    async def get_number(self, sid: str) -> IncomingNumber:
        row = await self.fetchone(f"{rows.NUMBER_SELECT} WHERE n.sid = ?", (sid,))
        if row is None:
            raise NotFoundError(f"no number {sid}")
        return rows.to_number(row)

    async def account_number(self, account_sid: str, phone_number: str) -> IncomingNumber | None:
        """The account's number ``phone_number`` exactly (a provider number before a SIP number
        of the same string), or None."""
        row = await self.fetchone(
            f"{rows.NUMBER_SELECT} WHERE n.account_sid = ? AND n.phone_number = ? "
            "ORDER BY n.is_sip LIMIT 1",
            (account_sid, phone_number),
        )
        return rows.to_number(row) if row is not None else None

    async def update_number(self, number: IncomingNumber) -> IncomingNumber:
        """Replace every column of an existing number (account transfer included)."""
        values = rows.number_values(number)

        def unit() -> Unit[None]:
            if (yield from change(NUMBER_UPDATE, (*values[1:], number.sid))) == 0:
                raise NotFoundError(f"no number {number.sid}")

        await self.write_unit(unit, idempotent=True)
        return await self._announce_upsert(number)

    async def delete_number(self, sid: str, recycle_after: float) -> None:
        """Delete; a provider number returns to the inventory after ``recycle_after`` s."""

        def unit() -> Unit[None]:
            row = yield from fetch_one(
                "DELETE FROM incoming_phone_numbers WHERE sid = ? RETURNING phone_number, is_sip",
                (sid,),
            )
            if row is None:
                raise NotFoundError(f"no number {sid}")
            if not row[1]:
                yield from change(RELEASE, (time.time() + recycle_after, row[0]))

        await self.write_unit(unit)
        self.notify([NumberChange("delete", sid, None)])

    async def list_numbers(
        self, query: NumberQuery, page: int, page_size: int
    ) -> Page[IncomingNumber]:
        """One page, ordered by phone number then sid; one read snapshot (see number_lists)."""
        return await self.read_unit(lambda: self._number_page(query, page, page_size))

    def _number_page(self, query: NumberQuery, page: int, size: int) -> Unit[Page[IncomingNumber]]:
        where, params = number_where(query, self.dialect.pattern_sql)
        indexed = None
        if query.phone_number:  # through the gram index when it has a usable window
            indexed = yield from indexed_page(query, page, size, self.dialect.pattern_sql)
        if indexed is not None:
            sids, total = indexed
        elif query.phone_number or query.friendly_name is not None:
            sids, total = yield from filtered_page(where, params, page, size)
        else:
            total = yield from unfiltered_total(query)
            sids = yield from page_sids(where, params, page * size, size, total)
        if not sids:
            return Page([], total)
        in_sids, values = self.dialect.in_list("n.sid", sids)
        found = yield from fetch(f"{rows.NUMBER_SELECT} WHERE {in_sids}", values)
        found.sort(key=lambda row: (row[3], row[0]))
        return Page([rows.to_number(r) for r in found], total)

    async def list_numbers_from(
        self, query: NumberQuery, cursor: NumberCursor | None, limit: int
    ) -> list[IncomingNumber]:
        """Up to ``limit`` numbers after (or before) ``cursor`` in list order, ascending."""
        if query.phone_number:  # through the gram index when it has a usable window
            numbers = await self.read_unit(
                lambda: indexed_numbers(query, cursor, limit, self.dialect)
            )
            if numbers is not None:
                return numbers
        where, params = number_where(query, self.dialect.pattern_sql)
        sql, values = keyset_sql(where, params, cursor, limit)
        found = [rows.to_number(r) for r in await self.fetchall(sql, values)]
        return found[::-1] if cursor is not None and cursor.before else found

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
            await self.write_unit(lambda: execute_many(INVENTORY_UPSERT, values), idempotent=True)
        return len(values)

    async def get_inventory_entry(self, phone_number: str) -> InventoryEntry:
        row = await self.fetchone(f"{INVENTORY_SELECT} WHERE phone_number = ?", (phone_number,))
        if row is None:
            raise NotFoundError(f"{phone_number} is not in the inventory")
        return rows.to_inventory(row)

    async def list_inventory(self, query: InventoryQuery, now: float) -> list[InventoryEntry]:
        """Available entries matching ``query``, ordered by phone number."""
        where, params = inventory_where(query, now, self.dialect.pattern_sql)
        found = await self.fetchall(
            f"{INVENTORY_SELECT} WHERE {where} ORDER BY phone_number LIMIT ?",
            [*params, query.limit],
        )
        return [rows.to_inventory(r) for r in found]

    async def pick_available_number(self, query: InventoryQuery, now: float) -> InventoryEntry:
        """A random available entry matching ``query``; NotFoundError when there is none."""
        where, params = inventory_where(query, now, self.dialect.pattern_sql)
        row = await self.fetchone(
            f"{INVENTORY_SELECT} WHERE {where} ORDER BY random() LIMIT 1", params
        )
        if row is None:
            raise NotFoundError("no available number matches")
        return rows.to_inventory(row)

    async def count_inventory(self) -> int:
        row = await self.fetchone("SELECT COUNT(*) FROM inventory")
        return int(row[0]) if row else 0
