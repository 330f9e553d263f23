"""Call and message records, notifications and the durable callback outbox on SQLite."""

# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from rcmlrouter.errors import NotFoundError
from rcmlrouter.store import rows
from rcmlrouter.store.base import CallRecord, MessageRecord, Notification, OutboxEvent, Page
from rcmlrouter.store.sqlite_core import SqliteConnection


def _upsert(table: str, columns: str) -> str:
    """INSERT … ON CONFLICT (sid) DO UPDATE every other column: the record as last written."""
    names = columns.split(", ")
    updates = ", ".join(f"{name} = excluded.{name}" for name in names[1:])
    placeholders = ", ".join("?" for _ in names)
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "
        f"ON CONFLICT (sid) DO UPDATE SET {updates}"
    )


_CALL_UPSERT = _upsert("calls", rows.CALL_COLUMNS)
_MESSAGE_UPSERT = _upsert("messages", rows.MESSAGE_COLUMNS)


class RecordQueries(SqliteConnection):
    """Calls, notifications, outbox."""

    async def record_calls(self, records: Sequence[CallRecord]) -> None:
        """Insert or replace call records, all in one transaction."""
        if not records:
            return
        await self.execute_many(_CALL_UPSERT, [rows.call_values(r) for r in records])

    async def unfinished_calls(self) -> list[CallRecord]:
        """Calls recorded without an end time (in progress, or cut short by a crash)."""
        found = await self.fetchall(
            f"SELECT {rows.CALL_COLUMNS} FROM calls WHERE end_time IS NULL ORDER BY start_time"
        )
        return [rows.to_call(r) for r in found]

    async def get_call(self, sid: str) -> CallRecord:
        row = await self.fetchone(f"SELECT {rows.CALL_COLUMNS} FROM calls WHERE sid = ?", (sid,))
        if row is None:
            raise NotFoundError(f"no call {sid}")
        return rows.to_call(row)

    async def list_calls(self, account_sid: str, page: int, page_size: int) -> Page[CallRecord]:
        """Newest first."""
        count = await self.fetchone(
            "SELECT COUNT(*) FROM calls WHERE account_sid = ?", (account_sid,)
        )
        found = await self.fetchall(
            f"SELECT {rows.CALL_COLUMNS} FROM calls WHERE account_sid = ? "
            "ORDER BY start_time DESC, sid LIMIT ? OFFSET ?",
            (account_sid, page_size, page * page_size),
        )
        return Page([rows.to_call(r) for r in found], int(count[0]) if count else 0)

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
        count = await self.fetchone(
            "SELECT COUNT(*) FROM notifications WHERE account_sid = ?", (account_sid,)
        )
        found = await self.fetchall(
            f"SELECT {rows.NOTIFICATION_COLUMNS} FROM notifications WHERE account_sid = ? "
            "ORDER BY date_created DESC, sid LIMIT ? OFFSET ?",
            (account_sid, page_size, page * page_size),
        )
        return Page([rows.to_notification(r) for r in found], int(count[0]) if count else 0)

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
        together or not at all.
        """
        call_rows = [rows.call_values(c) for c in calls]
        message_rows = [rows.message_values(m) for m in messages]
        event_rows = [rows.outbox_values(e) for e in events]

        def write(db: sqlite3.Connection) -> list[int]:
            if call_rows:
                db.executemany(_CALL_UPSERT, call_rows)
            if message_rows:
                db.executemany(_MESSAGE_UPSERT, message_rows)
            return [int(db.execute(_OUTBOX_INSERT, row).lastrowid or 0) for row in event_rows]

        return await self.run_in_transaction(write)

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
        await self.execute_many("DELETE FROM callback_outbox WHERE id = ?", [(i,) for i in ids])

    async def pending_callback_count(self) -> int:
        row = await self.fetchone("SELECT COUNT(*) FROM callback_outbox")
        return int(row[0]) if row else 0


_OUTBOX_INSERT = (
    "INSERT INTO callback_outbox (call_sid, account_sid, sequence, url, method, params, "
    "attempts, next_attempt_at, created_at, last_error) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
