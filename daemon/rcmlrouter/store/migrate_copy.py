# ruff: noqa: S608  (SQL is assembled from constant table and column lists; values are bound)
"""``rcmlrouter migrate --from URL --to postgresql://…``: copy one store into another.

Both stores are opened (so migrated) to the same schema version first. Every table the daemon
keeps is copied (organizations, accounts, applications, numbers, inventory, calls, messages,
notifications, recordings, media streams, conferences with their participants and the
undelivered callback outbox, ids included)
in key-ordered batches, all in ONE transaction on the target: a failed copy leaves the target as
it was. A target holding any row is refused unless ``force``, which empties it first (in the
same transaction).
``number_counts`` is rebuilt on the target by its triggers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg

from rcmlrouter.errors import ConflictError, StoreError
from rcmlrouter.store import rows
from rcmlrouter.store.base import Store
from rcmlrouter.store.postgres import PostgresStore
from rcmlrouter.store.queries_conferences import C_COLUMNS, P_COLUMNS
from rcmlrouter.store.queries_recordings import RECORDING_COLUMNS
from rcmlrouter.store.queries_streams import STREAM_COLUMNS
from rcmlrouter.store.sqlite import SqliteStore

BATCH = 5_000


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: str
    key: str  # batches are read in key order: WHERE key > last ORDER BY key
    start: Any  # a value below every key
    order: str = ""  # a composite key instead: batches by LIMIT / OFFSET in this order


# Parents before children (foreign keys are checked row by row).
TABLES = (
    Table("organizations", rows.ORG_COLUMNS, "sid", ""),
    Table("accounts", rows.ACCOUNT_COLUMNS, "sid", ""),
    Table("applications", rows.APP_COLUMNS, "sid", ""),
    Table("incoming_phone_numbers", rows.NUMBER_COLUMNS, "sid", ""),
    Table("inventory", rows.INVENTORY_COLUMNS, "phone_number", ""),
    Table("calls", rows.CALL_COLUMNS, "sid", ""),
    Table("messages", rows.MESSAGE_COLUMNS, "sid", ""),
    Table("notifications", rows.NOTIFICATION_COLUMNS, "sid", ""),
    Table("recordings", RECORDING_COLUMNS, "sid", ""),
    Table("streams", STREAM_COLUMNS, "sid", ""),
    Table("conferences", C_COLUMNS, "sid", ""),
    Table("conference_participants", P_COLUMNS, "", None, order="conference_sid, call_sid"),
    Table("callback_outbox", rows.OUTBOX_COLUMNS, "id", -1),
)
# kept by triggers; emptied with --force, never copied
_DERIVED = ("number_counts", "number_grams", "gram_counts", "gram_accounts")

# Accounts parent-first: depth in the account tree, then sid.
_ACCOUNTS_BY_DEPTH = (
    "WITH RECURSIVE tree (sid, depth) AS ("
    " SELECT sid, 0 FROM accounts WHERE parent_sid IS NULL"
    " UNION ALL SELECT a.sid, t.depth + 1 FROM accounts a JOIN tree t ON a.parent_sid = t.sid"
    " WHERE t.depth < 64)"
    f" SELECT {rows.ACCOUNT_COLUMNS} FROM accounts JOIN tree USING (sid)"
    " ORDER BY depth, sid LIMIT ? OFFSET ?"
)


RowSource = SqliteStore | PostgresStore  # both read SQL with ``?`` placeholders


async def batches(source: RowSource, table: Table, size: int) -> AsyncIterator[list[Any]]:
    """The rows of ``table`` in batches of ``size``."""
    if table.name == "accounts":
        offset = 0
        while found := await source.fetchall(_ACCOUNTS_BY_DEPTH, (size, offset)):
            yield found
            offset += len(found)
        return
    if table.order:
        sql = f"SELECT {table.columns} FROM {table.name} ORDER BY {table.order} LIMIT ? OFFSET ?"
        offset = 0
        while found := await source.fetchall(sql, (size, offset)):
            yield found
            offset += len(found)
        return
    key_index = table.columns.split(", ").index(table.key)
    last = table.start
    sql = (
        f"SELECT {table.columns} FROM {table.name} WHERE {table.key} > ? "
        f"ORDER BY {table.key} LIMIT ?"
    )
    while found := await source.fetchall(sql, (last, size)):
        yield found
        last = found[-1][key_index]
        if len(found) < size:
            return


async def copy_store(
    source: Store, target: Store, *, force: bool = False, batch: int = BATCH
) -> dict[str, int]:
    """Copy every table of ``source`` (SQLite or PostgreSQL) into ``target`` (PostgreSQL);
    rows copied per table.

    Raises ConflictError when the target holds rows and ``force`` is false.
    """
    if not isinstance(source, SqliteStore | PostgresStore):
        raise StoreError("migrate --from must be a sqlite:/// or postgresql:// store")
    if not isinstance(target, PostgresStore):
        raise StoreError("migrate --to must be a postgresql:// store")
    reader: RowSource = source

    async def unit(conn: asyncpg.Connection) -> dict[str, int]:
        filled = [
            t.name for t in TABLES if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {t.name})")
        ]
        if filled and not force:
            raise ConflictError(
                "the target store is not empty (" + ", ".join(filled) + "); --force replaces it"
            )
        if filled:
            names = ", ".join([t.name for t in TABLES] + list(_DERIVED))
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        counts: dict[str, int] = {}
        for table in TABLES:
            counts[table.name] = 0
            columns = table.columns.split(", ")
            async for found in batches(reader, table, batch):
                await conn.copy_records_to_table(table.name, records=found, columns=columns)
                counts[table.name] += len(found)
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('callback_outbox', 'id'), "
            "COALESCE(MAX(id), 0) + 1, false) FROM callback_outbox"
        )
        return counts

    return await target.write(unit)
