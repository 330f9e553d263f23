# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
"""The call log, for both engines: calls listed with filters (counted pages for the API,
newest-first windows for the console), the calls in progress with their node, and what a
call's page shows beside its record (its notifications, its undelivered callbacks).

Every filter is built by :func:`call_where`; the account index carries the numbers (migration
0016), so a number filter reads the index in time order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from rcmlrouter.errors import NotFoundError
from rcmlrouter.store import rows
from rcmlrouter.store.filters import CallQuery, Page, RecordCursor
from rcmlrouter.store.records import CallRecord, LiveCall, NodeInfo, Notification, OutboxEvent
from rcmlrouter.store.sql import SqlStore, counted_page

LIVE_LIMIT = 5000  # calls in progress read at once (the console shows the newest)


def call_where(query: CallQuery) -> tuple[str, list[Any]]:
    """The WHERE clause (and its values) of an account's call list."""
    clauses = ["account_sid = ?"]
    values: list[Any] = [query.account_sid]
    for clause, value in (
        ("to_number = ?", query.to),
        ("from_number = ?", query.from_),
        ("start_time >= ?", query.started_from),
        ("start_time < ?", query.started_before),
    ):
        if value is not None:
            clauses.append(clause)
            values.append(value)
    return " AND ".join(clauses), values


def older_than(
    where: str, values: list[Any], time_column: str, before: RecordCursor | None
) -> tuple[str, list[Any]]:
    """``where`` limited to the rows after ``before`` in newest-first order (time DESC, sid)."""
    if before is None:
        return where, values
    clause = f"({time_column} < ? OR ({time_column} = ? AND sid > ?))"
    return f"{where} AND {clause}", [*values, before.time, before.time, before.sid]


def floor_sql(table: str, time_column: str, where: str) -> str:
    """The time of the row ``OFFSET ?`` rows back in newest-first order (an index scan)."""
    return (
        f"SELECT {time_column} FROM {table} WHERE {where} "
        f"ORDER BY {time_column} DESC LIMIT 1 OFFSET ?"
    )


class CallLogQueries(SqlStore):
    """Call lists, live calls, a call's notifications and pending callbacks, cluster nodes."""

    async def list_calls(self, query: CallQuery, page: int, page_size: int) -> Page[CallRecord]:
        """Newest first, with the total (one read snapshot)."""
        where, values = call_where(query)
        count_sql = f"SELECT COUNT(*) FROM calls WHERE {where}"
        page_sql = (
            f"SELECT {rows.CALL_COLUMNS} FROM calls WHERE {where} "
            "ORDER BY start_time DESC, sid LIMIT ? OFFSET ?"
        )
        found, total = await self.read_unit(
            lambda: counted_page(count_sql, values, page_sql, page, page_size)
        )
        return Page([rows.to_call(r) for r in found], total)

    async def recent_calls(
        self, query: CallQuery, before: RecordCursor | None, limit: int
    ) -> list[CallRecord]:
        """Up to ``limit`` calls, newest first, older than ``before``; nothing is counted."""
        where, values = older_than(*call_where(query), "start_time", before)
        found = await self.fetchall(
            f"SELECT {rows.CALL_COLUMNS} FROM calls WHERE {where} "
            "ORDER BY start_time DESC, sid LIMIT ?",
            (*values, limit),
        )
        return [rows.to_call(r) for r in found]

    async def call_search_floor(
        self, query: CallQuery, before: RecordCursor | None, depth: int
    ) -> float | None:
        """The start time ``depth`` calls back from ``before`` (within the query's date
        bounds, whatever its numbers): a number filter searches no further in one read. None
        when fewer calls remain."""
        bounds = dataclasses.replace(query, to=None, from_=None, started_from=None)
        where, values = older_than(*call_where(bounds), "start_time", before)
        row = await self.fetchone(floor_sql("calls", "start_time", where), (*values, depth))
        return None if row is None else float(row[0])

    async def live_calls(self, account_sids: Sequence[str]) -> list[LiveCall]:
        """Calls of these accounts without an end time (ringing, in progress), newest first,
        with the node that owns each (its ``owner``; NULL on SQLite)."""
        if not account_sids:
            return []
        # "|| ''" keeps the planners off the account index (a million finished calls): the
        # partial index of unfinished calls is the one to read.
        accounts, values = self.dialect.in_list("account_sid || ''", account_sids)
        found = await self.fetchall(
            f"SELECT {rows.CALL_COLUMNS}, owner FROM calls WHERE end_time IS NULL AND {accounts} "
            "ORDER BY start_time DESC, sid LIMIT ?",
            (*values, LIVE_LIMIT),
        )
        return [LiveCall(rows.to_call(r[:-1]), r[-1]) for r in found]

    async def live_call(self, sid: str) -> LiveCall:
        """The call ``sid`` (ended or not) with the node that owns it (``owner``; NULL on
        SQLite): where live call control sends an update. NotFoundError when unknown."""
        row = await self.fetchone(
            f"SELECT {rows.CALL_COLUMNS}, owner FROM calls WHERE sid = ?", (sid,)
        )
        if row is None:
            raise NotFoundError(f"no call {sid}")
        return LiveCall(rows.to_call(row[:-1]), row[-1])

    async def call_notifications(self, call_sid: str, limit: int) -> list[Notification]:
        found = await self.fetchall(
            f"SELECT {rows.NOTIFICATION_COLUMNS} FROM notifications WHERE call_sid = ? "
            "ORDER BY date_created, sid LIMIT ?",
            (call_sid, limit),
        )
        return [rows.to_notification(r) for r in found]

    async def call_callbacks(self, call_sid: str) -> list[OutboxEvent]:
        """The call's events still in the outbox (not delivered, not given up), in order."""
        found = await self.fetchall(
            f"SELECT {rows.OUTBOX_COLUMNS} FROM callback_outbox WHERE call_sid = ? ORDER BY id",
            (call_sid,),
        )
        return [rows.to_outbox(r) for r in found]

    async def list_nodes(self) -> list[NodeInfo]:
        """Every node with a heartbeat row (PostgreSQL clusters; none on SQLite)."""
        found = await self.fetchall(
            "SELECT node_id, started_at, heartbeat_at, sip, api FROM nodes ORDER BY node_id"
        )
        return [
            NodeInfo(str(n), float(s), float(h), str(sip), str(api)) for n, s, h, sip, api in found
        ]
