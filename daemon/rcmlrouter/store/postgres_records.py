"""The journal on PostgreSQL: call and message records and their outbox events in one
transaction (events in one ``unnest`` insert); the outbox's deletes."""

# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from rcmlrouter.store import rows
from rcmlrouter.store.postgres_core import PostgresConnection, numbered
from rcmlrouter.store.queries_records import CALL_UPSERT, MESSAGE_UPSERT
from rcmlrouter.store.records import CallRecord, MessageRecord, OutboxEvent

_CALL_UPSERT = numbered(CALL_UPSERT)
_MESSAGE_UPSERT = numbered(MESSAGE_UPSERT)

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


class JournalQueries(PostgresConnection):
    """The journal write and the outbox's deletes."""

    # ---- journal: records and their outbox events, one transaction -------------------------

    async def write_journal(
        self,
        calls: Sequence[CallRecord],
        messages: Sequence[MessageRecord],
        events: Sequence[OutboxEvent],
    ) -> list[int]:
        """:meth:`RecordQueries.write_journal`: the records by ``executemany``, the events in one
        ``unnest`` insert. Retried only when the connection was lost before COMMIT."""
        call_rows = [rows.call_values(c) for c in calls]
        message_rows = [rows.message_values(m) for m in messages]
        event_rows = [rows.outbox_values(e) for e in events]

        async def unit(conn: asyncpg.Connection) -> list[int]:
            if call_rows:
                await conn.executemany(_CALL_UPSERT, call_rows)
            if message_rows:
                await conn.executemany(_MESSAGE_UPSERT, message_rows)
            return await insert_events(conn, event_rows)

        return await self.write(unit)

    async def mark_callbacks_delivered(self, ids: Sequence[int]) -> None:
        """Delivered events leave the outbox."""
        if not ids:
            return
        wanted = [int(i) for i in ids]

        async def unit(conn: asyncpg.Connection) -> None:
            await conn.execute("DELETE FROM callback_outbox WHERE id = ANY($1::int8[])", wanted)

        await self.write(unit, idempotent=True)
