# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
"""Call records, notifications and the callback outbox's reads, for both engines.

The journal write (records and their outbox events in one transaction) is the hot path of
every call; each engine writes it its own way (SQLite: multi-row statements; PostgreSQL: one
``unnest`` insert) with the upserts below.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import TypeVar

from rcmlrouter.errors import NotFoundError
from rcmlrouter.store import rows
from rcmlrouter.store.filters import Page
from rcmlrouter.store.queries_idempotency import claim_idempotency_key
from rcmlrouter.store.records import (
    CallRecord,
    IdempotencyRecord,
    MessageRecord,
    Notification,
    OutboxEvent,
)
from rcmlrouter.store.sql import Row, SqlStore, Unit, change, counted_page, execute_many

R = TypeVar("R")


def upsert_sql(table: str, columns: str) -> str:
    """INSERT … ON CONFLICT (sid) DO UPDATE every other column: the record as last written."""
    names = columns.split(", ")
    updates = ", ".join(f"{name} = excluded.{name}" for name in names[1:])
    placeholders = ", ".join("?" for _ in names)
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "
        f"ON CONFLICT (sid) DO UPDATE SET {updates}"
    )


CALL_UPSERT = upsert_sql("calls", rows.CALL_COLUMNS)
MESSAGE_UPSERT = upsert_sql("messages", rows.MESSAGE_COLUMNS)
NOTIFICATION_INSERT = (
    f"INSERT INTO notifications ({rows.NOTIFICATION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)"
)


class RecordQueries(SqlStore):
    """Calls, notifications, outbox."""

    async def record_calls(self, records: Sequence[CallRecord]) -> None:
        """Insert or replace call records, all in one transaction."""
        if not records:
            return
        values = [rows.call_values(r) for r in records]
        await self.write_unit(lambda: execute_many(CALL_UPSERT, values), idempotent=True)

    async def create_call(
        self, call: CallRecord, idempotency: IdempotencyRecord | None, ttl: float
    ) -> IdempotencyRecord | None:
        """Insert a call the API queued (``POST Calls``), under ``idempotency``'s key when
        given, in one transaction. None when it was written; else the live record already
        holding the key (nothing written: see ``queries_idempotency``)."""
        values = rows.call_values(call)

        def unit() -> Unit[IdempotencyRecord | None]:
            if idempotency is not None:
                held = yield from claim_idempotency_key(idempotency, ttl)
                if held is not None:
                    return held
            yield from change(CALL_UPSERT, values)
            return None

        return await self.write_unit(unit)

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

    async def add_notifications(self, items: Sequence[Notification]) -> None:
        if not items:
            return
        values = [rows.field_values(n) for n in items]
        await self.write_unit(lambda: execute_many(NOTIFICATION_INSERT, values))

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
        return await self.account_page(
            "notifications",
            rows.NOTIFICATION_COLUMNS,
            "date_created",
            account_sid,
            page,
            page_size,
            rows.to_notification,
        )

    async def account_page(
        self,
        table: str,
        columns: str,
        time_column: str,
        account_sid: str,
        page: int,
        page_size: int,
        convert: Callable[[Row], R],
    ) -> Page[R]:
        """An account's rows, newest first, with the total: one snapshot."""
        count_sql = f"SELECT COUNT(*) FROM {table} WHERE account_sid = ?"
        page_sql = (
            f"SELECT {columns} FROM {table} WHERE account_sid = ? "
            f"ORDER BY {time_column} DESC, sid LIMIT ? OFFSET ?"
        )
        found, total = await self.read_unit(
            lambda: counted_page(count_sql, (account_sid,), page_sql, page, page_size)
        )
        return Page([convert(r) for r in found], total)

    # ---- journal and outbox ------------------------------------------------------------------

    @abc.abstractmethod
    async def write_journal(
        self,
        calls: Sequence[CallRecord],
        messages: Sequence[MessageRecord],
        events: Sequence[OutboxEvent],
    ) -> list[int]:
        """Upsert call and message records (in order: the last write of a sid wins) and append
        outbox events, all in one transaction; return the events' ids, in order.

        This is the crash-consistency point: a record and the events it owes become durable
        together or not at all."""

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

    async def pending_callback_count(self) -> int:
        row = await self.fetchone("SELECT COUNT(*) FROM callback_outbox")
        return int(row[0]) if row else 0
