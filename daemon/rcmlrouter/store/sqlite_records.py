"""The journal on SQLite: call and message records and their outbox events, one transaction;
the outbox's deletes."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from rcmlrouter.store import rows
from rcmlrouter.store.queries_records import CALL_UPSERT, MESSAGE_UPSERT
from rcmlrouter.store.records import CallRecord, MessageRecord, OutboxEvent
from rcmlrouter.store.sqlite_core import SqliteConnection


class JournalQueries(SqliteConnection):
    """The journal write and the outbox's deletes."""

    # ---- journal: records and their outbox events, one transaction -------------------------

    async def write_journal(
        self,
        calls: Sequence[CallRecord],
        messages: Sequence[MessageRecord],
        events: Sequence[OutboxEvent],
    ) -> list[int]:
        """:meth:`RecordQueries.write_journal` on the database thread, in one hop."""
        call_rows = [rows.call_values(c) for c in calls]
        message_rows = [rows.message_values(m) for m in messages]
        event_rows = [rows.outbox_values(e) for e in events]

        def write(db: sqlite3.Connection) -> list[int]:
            if call_rows:
                db.executemany(CALL_UPSERT, call_rows)
            if message_rows:
                db.executemany(MESSAGE_UPSERT, message_rows)
            return [int(db.execute(_OUTBOX_INSERT, row).lastrowid or 0) for row in event_rows]

        return await self.run_in_transaction(write)

    async def mark_callbacks_delivered(self, ids: Sequence[int]) -> None:
        """Delivered events leave the outbox."""
        if not ids:
            return
        values = [(i,) for i in ids]

        def delete(db: sqlite3.Connection) -> None:
            db.executemany("DELETE FROM callback_outbox WHERE id = ?", values)

        await self.run_in_transaction(delete)  # one hop


_OUTBOX_INSERT = (
    "INSERT INTO callback_outbox (call_sid, account_sid, sequence, url, method, params, "
    "attempts, next_attempt_at, created_at, last_error) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
