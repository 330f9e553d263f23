# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
"""Message records, for both engines: write, read, list with filters, and what a restart needs
(accepted messages not yet processed, the dedupe keys of the last seconds)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from rcmlrouter.errors import NotFoundError
from rcmlrouter.store import rows
from rcmlrouter.store.filters import MessageQuery, Page, RecordCursor
from rcmlrouter.store.queries_call_log import floor_sql, older_than
from rcmlrouter.store.queries_idempotency import claim_idempotency_key
from rcmlrouter.store.queries_records import MESSAGE_UPSERT
from rcmlrouter.store.records import IdempotencyRecord, MessageRecord
from rcmlrouter.store.sql import SqlStore, Unit, change, counted_page, execute_many

ACCEPTED = "accepted"
OUTBOUND_API = "outbound-api"
MESSAGE_INSERT = (
    f"INSERT INTO messages ({rows.MESSAGE_COLUMNS}) "
    f"VALUES ({', '.join('?' for _ in rows.MESSAGE_COLUMNS.split(', '))})"
)
# queued by the API and not finished: sent after a restart (or by the node that claims them)
OUTBOUND_PENDING = f"direction = '{OUTBOUND_API}' AND status IN ('queued', 'sending')"


def message_where(query: MessageQuery) -> tuple[str, list[Any]]:
    """The WHERE clause (and its values) of an account's message list."""
    clauses = ["account_sid = ?"]
    values: list[Any] = [query.account_sid]
    for clause, value in (
        ("to_number = ?", query.to),
        ("from_number = ?", query.from_),
        ("date_created >= ?", query.sent_from),
        ("date_created < ?", query.sent_before),
    ):
        if value is not None:
            clauses.append(clause)
            values.append(value)
    return " AND ".join(clauses), values


class MessageQueries(SqlStore):
    """The ``messages`` table."""

    async def record_messages(self, records: Sequence[MessageRecord]) -> None:
        """Insert or replace message records, all in one transaction."""
        if not records:
            return
        values = [rows.message_values(m) for m in records]
        await self.write_unit(lambda: execute_many(MESSAGE_UPSERT, values), idempotent=True)

    async def create_message(
        self, message: MessageRecord, idempotency: IdempotencyRecord | None, ttl: float
    ) -> IdempotencyRecord | None:
        """Insert a new message (the API's POST), under ``idempotency``'s key when given, in one
        transaction. None when it was written; else the live record that already holds the key
        (nothing written: see ``queries_idempotency``)."""
        values = rows.message_values(message)

        def unit() -> Unit[IdempotencyRecord | None]:
            if idempotency is not None:
                held = yield from claim_idempotency_key(idempotency, ttl)
                if held is not None:
                    return held
            yield from change(MESSAGE_INSERT, values)
            return None

        return await self.write_unit(unit)

    async def pending_outbound_messages(self) -> list[MessageRecord]:
        """Messages the API queued that are not sent or failed yet (queued, or sending when a
        crash cut them), oldest first."""
        found = await self.fetchall(
            f"SELECT {rows.MESSAGE_COLUMNS} FROM messages WHERE {OUTBOUND_PENDING} "
            "ORDER BY date_created, sid"
        )
        return [rows.to_message(r) for r in found]

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
        """Newest first (one read snapshot)."""
        where, values = message_where(query)
        count_sql = f"SELECT COUNT(*) FROM messages WHERE {where}"
        page_sql = (
            f"SELECT {rows.MESSAGE_COLUMNS} FROM messages WHERE {where} "
            "ORDER BY date_created DESC, sid LIMIT ? OFFSET ?"
        )
        found, total = await self.read_unit(
            lambda: counted_page(count_sql, values, page_sql, page, page_size)
        )
        return Page([rows.to_message(r) for r in found], total)

    async def recent_messages(
        self, query: MessageQuery, before: RecordCursor | None, limit: int
    ) -> list[MessageRecord]:
        """Up to ``limit`` messages, newest first, older than ``before``; nothing is counted."""
        where, values = older_than(*message_where(query), "date_created", before)
        found = await self.fetchall(
            f"SELECT {rows.MESSAGE_COLUMNS} FROM messages WHERE {where} "
            "ORDER BY date_created DESC, sid LIMIT ?",
            (*values, limit),
        )
        return [rows.to_message(r) for r in found]

    async def message_search_floor(
        self, query: MessageQuery, before: RecordCursor | None, depth: int
    ) -> float | None:
        """The date ``depth`` messages back from ``before`` (see ``call_search_floor``)."""
        bounds = dataclasses.replace(query, to=None, from_=None, sent_from=None)
        where, values = older_than(*message_where(bounds), "date_created", before)
        row = await self.fetchone(floor_sql("messages", "date_created", where), (*values, depth))
        return None if row is None else float(row[0])

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
