"""``SqliteStore``: the :class:`~rcmlrouter.store.base.Store` on SQLite (aiosqlite).

Open with ``await SqliteStore.open(path)``. sqlite3 errors become ``StoreError`` /
``ConflictError``; a missing row raises ``NotFoundError``.
"""

# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import replace
from typing import Any

from rcmlrouter.errors import ConflictError, NotFoundError
from rcmlrouter.store import rows
from rcmlrouter.store.base import (
    DEFAULT_DOMAIN,
    Account,
    Application,
    IncomingNumber,
    InventoryEntry,
    InventoryQuery,
    NumberChange,
    NumberQuery,
    Organization,
    Page,
    hash_password,
    new_auth_token,
    new_sid,
)
from rcmlrouter.store.sqlite_records import RecordQueries

ROUTE_BATCH = 20_000


def like_escape(text: str) -> str:
    """Escape LIKE metacharacters (``\\`` is the ESCAPE character)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def number_pattern_sql(pattern: str) -> tuple[str, list[Any]]:
    """SQL for a PhoneNumber filter: match anywhere, ``*`` = one digit, leading ``+`` optional."""
    pattern = pattern.removeprefix("+")
    like = "".join("_" if ch == "*" else like_escape(ch) for ch in pattern)
    sql = "n.phone_number LIKE ? ESCAPE '\\'"
    params: list[Any] = [f"%{like}%"]
    if "*" in pattern:
        glob = "".join(
            "[0-9]" if ch == "*" else (f"[{ch}]" if ch in "[]?" else ch) for ch in pattern
        )
        sql += " AND n.phone_number GLOB ?"
        params.append(f"*{glob}*")
    return sql, params


def _number_where(query: NumberQuery) -> tuple[str, list[Any]]:
    clauses, params = ["n.account_sid = ?"], [query.account_sid]
    if query.number_type is not None:
        clauses.append("n.number_type = ?")
        params.append(query.number_type)
    if query.friendly_name is not None:
        clauses.append("n.friendly_name = ?")
        params.append(query.friendly_name)
    if not query.include_beta:
        clauses.append("n.beta = 0")
    if query.phone_number:
        sql, extra = number_pattern_sql(query.phone_number)
        clauses.append(sql)
        params.extend(extra)
    return " AND ".join(clauses), params


def _inventory_where(query: InventoryQuery, now: float) -> tuple[str, list[Any]]:
    clauses = ["assigned_sid IS NULL", "available_at <= ?"]
    params: list[Any] = [now]
    for column, wanted in (("iso_country", query.iso_country), ("number_type", query.number_type)):
        if wanted is not None:
            clauses.append(f"{column} = ?")
            params.append(wanted)
    if query.area_code:
        clauses.append("phone_number LIKE ?")
        params.append(f"+1{query.area_code}%")
    if query.contains:
        sql, extra = number_pattern_sql(query.contains)
        clauses.append(sql.replace("n.", ""))
        params.extend(extra)
    for column, value in (("region", query.region), ("postal_code", query.postal_code)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    for column, flag in (
        ("voice", query.voice),
        ("sms", query.sms),
        ("mms", query.mms),
        ("fax", query.fax),
    ):
        if flag is not None:
            clauses.append(f"{column} = ?")
            params.append(int(flag))
    if not query.include_beta:
        clauses.append("beta = 0")
    return " AND ".join(clauses), params


def _unfiltered_total(db: sqlite3.Connection, query: NumberQuery) -> int:
    sql = "SELECT COALESCE(SUM(total), 0) FROM number_counts WHERE account_sid = ?"
    values: list[Any] = [query.account_sid]
    if query.number_type is not None:
        sql += " AND number_type = ?"
        values.append(query.number_type)
    if not query.include_beta:
        sql += " AND beta = 0"
    return int(db.execute(sql, values).fetchone()[0])


def _page_sids(
    db: sqlite3.Connection, where: str, params: list[Any], offset: int, limit: int, total: int
) -> list[str]:
    """Sids of one page; the second half of the list is read backwards from the end."""
    if offset >= total:
        return []
    order = "ASC"
    if offset > total // 2:
        order, limit = "DESC", min(limit, total - offset)
        offset = max(total - offset - limit, 0)
    found = db.execute(
        f"SELECT n.sid FROM incoming_phone_numbers n WHERE {where} "
        f"ORDER BY n.phone_number {order}, n.sid {order} LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    return [row[0] for row in found]


def _filtered_page(
    db: sqlite3.Connection, where: str, params: list[Any], page: int, page_size: int
) -> tuple[list[str], int]:
    found = db.execute(
        f"SELECT n.sid, COUNT(*) OVER () FROM incoming_phone_numbers n WHERE {where} "
        "ORDER BY n.phone_number, n.sid LIMIT ? OFFSET ?",
        [*params, page_size, page * page_size],
    ).fetchall()
    if found:
        return [row[0] for row in found], int(found[0][1])
    if page == 0:
        return [], 0
    counted = db.execute(f"SELECT COUNT(*) FROM incoming_phone_numbers n WHERE {where}", params)
    return [], int(counted.fetchone()[0])


class SqliteStore(RecordQueries):
    """The SQLite store. Every method is a coroutine unless noted."""

    # ---- organizations and accounts -------------------------------------------------------

    async def ensure_default_setup(self) -> tuple[Account, str | None]:
        """Create the default organization and administrator when missing."""
        now = time.time()
        async with self.transaction() as db:
            cursor = await db.execute("SELECT sid FROM organizations WHERE is_default = 1")
            row = await cursor.fetchone()
            if row is None:
                org_sid = new_sid("OR")
                await db.execute(
                    f"INSERT INTO organizations ({rows.ORG_COLUMNS}) VALUES (?, ?, 1, ?)",
                    (org_sid, DEFAULT_DOMAIN, now),
                )
            else:
                org_sid = row[0]
            cursor = await db.execute(
                f"SELECT {rows.ACCOUNT_COLUMNS} FROM accounts WHERE parent_sid IS NULL "
                "AND organization_sid = ? ORDER BY date_created, sid LIMIT 1",
                (org_sid,),
            )
            existing = await cursor.fetchone()
            if existing is not None:
                return rows.to_account(tuple(existing)), None
            token = new_auth_token()
            admin = Account(
                new_sid("AC"),
                None,
                org_sid,
                "Default Administrator Account",
                f"administrator@{DEFAULT_DOMAIN}",
                token,
                None,
                "active",
                now,
                now,
            )
            await db.execute(
                f"INSERT INTO accounts ({rows.ACCOUNT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                rows.account_values(admin),
            )
        return admin, token

    async def add_organization(self, domain: str) -> Organization:
        org = Organization(new_sid("OR"), domain.strip().lower(), False, time.time())
        async with self.transaction() as db:
            await db.execute(
                f"INSERT INTO organizations ({rows.ORG_COLUMNS}) VALUES (?, ?, 0, ?)",
                (org.sid, org.domain, org.date_created),
            )
        return org

    async def list_organizations(self) -> list[Organization]:
        found = await self.fetchall(
            f"SELECT {rows.ORG_COLUMNS} FROM organizations ORDER BY is_default DESC, domain"
        )
        return [rows.to_organization(row) for row in found]

    async def get_account(self, sid: str) -> Account:
        row = await self.fetchone(
            f"SELECT {rows.ACCOUNT_COLUMNS} FROM accounts WHERE sid = ?", (sid,)
        )
        if row is None:
            raise NotFoundError(f"no account {sid}")
        return rows.to_account(row)

    async def get_account_by_email(self, email: str) -> Account:
        row = await self.fetchone(
            f"SELECT {rows.ACCOUNT_COLUMNS} FROM accounts WHERE email = ?", (email.lower(),)
        )
        if row is None:
            raise NotFoundError(f"no account with email {email}")
        return rows.to_account(row)

    async def account_lineage(self, sid: str) -> list[str]:
        """``[sid, parent, grandparent, …]``; empty when the account does not exist."""
        found = await self.fetchall(
            "WITH RECURSIVE lineage (sid, parent_sid, depth) AS ("
            " SELECT sid, parent_sid, 0 FROM accounts WHERE sid = ?"
            " UNION ALL SELECT a.sid, a.parent_sid, l.depth + 1 FROM accounts a"
            " JOIN lineage l ON a.sid = l.parent_sid WHERE l.depth < 64)"
            " SELECT sid FROM lineage ORDER BY depth",
            (sid,),
        )
        return [row[0] for row in found]

    async def create_account(
        self, parent: Account, friendly_name: str, email: str | None, password: str | None
    ) -> Account:
        """A sub-account of ``parent`` in its organization. Duplicate email: ConflictError."""
        now = time.time()
        account = Account(
            new_sid("AC"),
            parent.sid,
            parent.organization_sid,
            friendly_name,
            email.lower() if email else None,
            new_auth_token(),
            hash_password(password) if password else None,
            "active",
            now,
            now,
        )
        async with self.transaction() as db:
            await db.execute(
                f"INSERT INTO accounts ({rows.ACCOUNT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                rows.account_values(account),
            )
        return account

    # ---- applications ----------------------------------------------------------------------

    async def create_application(self, app: Application) -> Application:
        async with self.transaction() as db:
            await db.execute(
                f"INSERT INTO applications ({rows.APP_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                rows.application_values(app),
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
        values = rows.application_values(app)
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
        where, params = _number_where(query)
        filtered = bool(query.phone_number) or query.friendly_name is not None

        def read(db: sqlite3.Connection) -> Page[IncomingNumber]:
            if filtered:
                sids, total = _filtered_page(db, where, params, page, page_size)
            else:
                total = _unfiltered_total(db, query)
                sids = _page_sids(db, where, params, page * page_size, page_size, total)
            if not sids:
                return Page([], total)
            marks = ", ".join("?" for _ in sids)
            found = db.execute(f"{rows.NUMBER_SELECT} WHERE n.sid IN ({marks})", sids).fetchall()
            found.sort(key=lambda row: (row[3], row[0]))
            return Page([rows.to_number(r) for r in found], total)

        return await self.run_read(read)

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
        where, params = _inventory_where(query, now)
        found = await self.fetchall(
            f"SELECT {rows.INVENTORY_COLUMNS} FROM inventory WHERE {where} "
            "ORDER BY phone_number LIMIT ?",
            [*params, query.limit],
        )
        return [rows.to_inventory(r) for r in found]

    async def pick_available_number(self, query: InventoryQuery, now: float) -> InventoryEntry:
        """A random available entry matching ``query``; NotFoundError when there is none."""
        where, params = _inventory_where(query, now)
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
