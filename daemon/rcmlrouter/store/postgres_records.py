"""Call records, notifications and the durable callback outbox on PostgreSQL."""

# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from rcmlrouter.errors import NotFoundError
from rcmlrouter.store import rows
from rcmlrouter.store.base import CallRecord, MessageRecord, Notification, OutboxEvent, Page
from rcmlrouter.store.postgres_core import PostgresConnection, numbered


def upsert_sql(table: str, columns: str) -> str:
    """INSERT … ON CONFLICT (sid) DO UPDATE every other column: the record as last written."""
    names = columns.split(", ")
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in names[1:])
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "
        f"ON CONFLICT (sid) DO UPDATE SET {updates}"
    )


CALL_UPSERT = upsert_sql("calls", rows.CALL_COLUMNS)
MESSAGE_UPSERT = upsert_sql("messages", rows.MESSAGE_COLUMNS)

# Every event of a journal write in one statement; ids are drawn in ORDER BY ord order, so the
# sorted ids are the events' ids in order.
_OUTBOX_TYPES = ("text", "text", "int4", "text", "text", "text", "int4", "float8", "float8", "text")
_OUTBOX_NAMES = rows.OUTBOX_COLUMNS.split(", ")[1:]
OUTBOX_INSERT = (
    f"INSERT INTO callback_outbox ({', '.join(_OUTBOX_NAMES)}) "
    f"SELECT {', '.join(_OUTBOX_NAMES)} FROM unnest("
    + ", ".join(f"${i}::{kind}[]" for i, kind in enumerate(_OUTBOX_TYPES, start=1))
    + f") WITH ORDINALITY AS e ({', '.join(_OUTBOX_NAMES)}, ord) ORDER BY ord RETURNING id"
)


async def insert_events(conn: asyncpg.Connection, values: Sequence[tuple[Any, ...]]) -> list[int]:
    """Append outbox rows (``rows.outbox_values``) on ``conn``; their ids, in order."""
    if not values:
        return []
    columns = [list(column) for column in zip(*values, strict=True)]
    found = await conn.fetch(OUTBOX_INSERT, *columns)
    return sorted(int(row[0]) for row in found)


class RecordQueries(PostgresConnection):
    """Calls, notifications, outbox."""

    async def record_calls(self, records: Sequence[CallRecord]) -> None:
        """Insert or replace call records, all in one transaction."""
        if not records:
            return
        values = [rows.call_values(r) for r in records]

        async def unit(conn: asyncpg.Connection) -> None:
            await conn.executemany(CALL_UPSERT, values)

        await self.write(unit, idempotent=True)

    async def unfinished_calls(self) -> list[CallRecord]:
        """Calls recorded without an end time (in progress, or cut short by a crash)."""
        found = await self.fetchall(
            f"SELECT {rows.CALL_COLUMNS} FROM calls WHERE end_time IS NULL ORDER BY start_time, sid"
        )
        return [rows.to_call(r) for r in found]

    async def get_call(self, sid: str) -> CallRecord:
        row = await self.fetchone(f"SELECT {rows.CALL_COLUMNS} FROM calls WHERE sid = ?", (sid,))
        if row is None:
            raise NotFoundError(f"no call {sid}")
        return rows.to_call(row)

    async def list_calls(self, account_sid: str, page: int, page_size: int) -> Page[CallRecord]:
        """Newest first."""
        return await self._page(
            "calls", rows.CALL_COLUMNS, "start_time", account_sid, page, page_size, rows.to_call
        )

    async def add_notifications(self, items: Sequence[Notification]) -> None:
        if not items:
            return
        await self.execute_many(
            f"INSERT INTO notifications ({rows.NOTIFICATION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
            [rows.field_values(n) for n in items],
        )

    async def get_notification(self, sid: str) -> Notification:
        row = await self.fetchone(
            f"SELECT {rows.NOTIFICATION_COLUMNS} FROM notifications WHERE sid = ?", (sid,)
        )
        if row is None:
            raise NotFoundError(f"no notification {sid}")
        return rows.to_notification(row)

    async def list_notifications(
        self, account_sid: str, page: int, page_size: int
    ) -> Page[Notification]:
        """Newest first."""
        return await self._page(
            "notifications",
            rows.NOTIFICATION_COLUMNS,
            "date_created",
            account_sid,
            page,
            page_size,
            rows.to_notification,
        )

    async def _page(
        self,
        table: str,
        columns: str,
        time_column: str,
        account_sid: str,
        page: int,
        page_size: int,
        convert: Any,
    ) -> Page[Any]:
        """An account's rows, newest first, with the total: one snapshot."""
        count_sql = numbered(f"SELECT COUNT(*) FROM {table} WHERE account_sid = ?")
        page_sql = numbered(
            f"SELECT {columns} FROM {table} WHERE account_sid = ? "
            f"ORDER BY {time_column} DESC, sid LIMIT ? OFFSET ?"
        )

        async def unit(conn: asyncpg.Connection) -> Page[Any]:
            total = int(await conn.fetchval(count_sql, account_sid))
            found = await conn.fetch(page_sql, account_sid, page_size, page * page_size)
            return Page([convert(tuple(r)) for r in found], total)

        return await self.read_snapshot(unit)

    # ---- journal: records and their outbox events, one transaction -------------------------

    async def write_journal(
        self,
        calls: Sequence[CallRecord],
        messages: Sequence[MessageRecord],
        events: Sequence[OutboxEvent],
    ) -> list[int]:
        """Upsert call and message records (in order: the last write of a sid wins) and append
        outbox events, all in one transaction; return the events' ids, in order.

        This is the crash-consistency point: a record and the events it owes become durable
        together or not at all. Retried only when the connection was lost before COMMIT.
        """
        call_rows = [rows.call_values(c) for c in calls]
        message_rows = [rows.message_values(m) for m in messages]
        event_rows = [rows.outbox_values(e) for e in events]

        async def unit(conn: asyncpg.Connection) -> list[int]:
            if call_rows:
                await conn.executemany(CALL_UPSERT, call_rows)
            if message_rows:
                await conn.executemany(MESSAGE_UPSERT, message_rows)
            return await insert_events(conn, event_rows)

        return await self.write(unit)

    # ---- outbox ----------------------------------------------------------------------------

    async def enqueue_callbacks(self, events: Sequence[OutboxEvent]) -> list[int]:
        """Append events in one transaction; return the ids the database assigned, in order."""
        if not events:
            return []
        return await self.write_journal((), (), events)

    async def pending_callbacks(self, after_id: int, limit: int) -> list[OutboxEvent]:
        """Undelivered events with an id above ``after_id``, by id (so in order per call)."""
        found = await self.fetchall(
            f"SELECT {rows.OUTBOX_COLUMNS} FROM callback_outbox WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [rows.to_outbox(r) for r in found]

    async def mark_callbacks_delivered(self, ids: Sequence[int]) -> None:
        """Delivered events leave the outbox."""
        if not ids:
            return
        wanted = [int(i) for i in ids]

        async def unit(conn: asyncpg.Connection) -> None:
            await conn.execute("DELETE FROM callback_outbox WHERE id = ANY($1::int8[])", wanted)

        await self.write(unit, idempotent=True)

    async def pending_callback_count(self) -> int:
        row = await self.fetchone("SELECT COUNT(*) FROM callback_outbox")
        return int(row[0]) if row else 0
