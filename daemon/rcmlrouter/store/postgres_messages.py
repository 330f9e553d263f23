"""Message records on PostgreSQL: write, read, list with filters, and what a restart needs
(accepted messages not yet processed, the dedupe keys of the last seconds)."""

# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from rcmlrouter.errors import NotFoundError
from rcmlrouter.store import rows
from rcmlrouter.store.base import MessageQuery, MessageRecord, Page
from rcmlrouter.store.postgres_core import numbered
from rcmlrouter.store.postgres_records import MESSAGE_UPSERT, RecordQueries
from rcmlrouter.store.sqlite_messages import ACCEPTED, message_where


class MessageQueries(RecordQueries):
    """The ``messages`` table."""

    async def record_messages(self, records: Sequence[MessageRecord]) -> None:
        """Insert or replace message records, all in one transaction."""
        if not records:
            return
        values = [rows.message_values(m) for m in records]

        async def unit(conn: asyncpg.Connection) -> None:
            await conn.executemany(MESSAGE_UPSERT, values)

        await self.write(unit, idempotent=True)

    async def get_message(self, sid: str) -> MessageRecord:
        row = await self.fetchone(
            f"SELECT {rows.MESSAGE_COLUMNS} FROM messages WHERE sid = ?", (sid,)
        )
        if row is None:
            raise NotFoundError(f"no message {sid}")
        return rows.to_message(row)

    async def list_messages(
        self, query: MessageQuery, page: int, page_size: int
    ) -> Page[MessageRecord]:
        """Newest first."""
        where, values = message_where(query)
        count_sql = numbered(f"SELECT COUNT(*) FROM messages WHERE {where}")
        page_sql = numbered(
            f"SELECT {rows.MESSAGE_COLUMNS} FROM messages WHERE {where} "
            "ORDER BY date_created DESC, sid LIMIT ? OFFSET ?"
        )

        async def unit(conn: asyncpg.Connection) -> Page[MessageRecord]:
            total = int(await conn.fetchval(count_sql, *values))
            found = await conn.fetch(page_sql, *values, page_size, page * page_size)
            return Page([rows.to_message(tuple(r)) for r in found], total)

        return await self.read_snapshot(unit)

    async def accepted_messages(self) -> list[MessageRecord]:
        """Inbound messages stored and answered 202 but not processed yet, oldest first."""
        found = await self.fetchall(
            f"SELECT {rows.MESSAGE_COLUMNS} FROM messages WHERE status = '{ACCEPTED}' "
            "ORDER BY date_created, sid"
        )
        return [rows.to_message(r) for r in found]

    async def recent_message_keys(self, since: float) -> list[tuple[str, str]]:
        """``(dedupe_key, sid)`` of the messages created at or after ``since``."""
        found = await self.fetchall(
            "SELECT dedupe_key, sid FROM messages "
            "WHERE dedupe_key IS NOT NULL AND date_created >= ?",
            (since,),
        )
        return [(str(key), str(sid)) for key, sid in found]
