"""Conferences and their participants (migration 0020), for both engines.

:meth:`ConferenceQueries.claim_conference` is how a room comes to exist: one unit that inserts
the row unless an active conference of the same account and name exists (the partial unique
index decides, on one node or many) and answers the row that holds the name, ours or the
other's. A room's owner writes its rows as they change (``save_conference_rows``, upserts).
"""

# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Final

from rcmlrouter.errors import NotFoundError
from rcmlrouter.store.conference_records import (
    ConferenceQuery,
    ConferenceRecord,
    ParticipantRecord,
)
from rcmlrouter.store.filters import Page
from rcmlrouter.store.sql import SqlStore, Unit, change, counted_page, execute_many, fetch_one

_C_FIELDS: Final = [f.name for f in dataclasses.fields(ConferenceRecord)]
_P_FIELDS: Final = [f.name for f in dataclasses.fields(ParticipantRecord)]
C_COLUMNS: Final = ", ".join(_C_FIELDS)
P_COLUMNS: Final = ", ".join(_P_FIELDS)
_C_MARKS: Final = ", ".join("?" for _ in _C_FIELDS)
_P_MARKS: Final = ", ".join("?" for _ in _P_FIELDS)
C_INSERT_IF_FREE: Final = (
    f"INSERT INTO conferences ({C_COLUMNS}) VALUES ({_C_MARKS}) ON CONFLICT DO NOTHING"
)
C_UPSERT: Final = (
    f"INSERT INTO conferences ({C_COLUMNS}) VALUES ({_C_MARKS}) ON CONFLICT (sid) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _C_FIELDS[1:])
)
P_UPSERT: Final = (
    f"INSERT INTO conference_participants ({P_COLUMNS}) VALUES ({_P_MARKS}) "
    "ON CONFLICT (conference_sid, call_sid) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _P_FIELDS[2:])
)
C_ACTIVE_BY_NAME: Final = (
    f"SELECT {C_COLUMNS} FROM conferences WHERE account_sid = ? AND friendly_name = ? "
    "AND status IN ('init', 'in-progress')"
)
C_BY_SID: Final = f"SELECT {C_COLUMNS} FROM conferences WHERE sid = ?"
P_BY_KEY: Final = (
    f"SELECT {P_COLUMNS} FROM conference_participants WHERE conference_sid = ? AND call_sid = ?"
)
_BOOLS: Final = frozenset(
    {"muted", "hold", "start_conference_on_enter", "end_conference_on_exit", "coaching"}
)


def conference_values(record: ConferenceRecord) -> tuple[Any, ...]:
    return dataclasses.astuple(record)


def participant_values(record: ParticipantRecord) -> tuple[Any, ...]:
    return tuple(
        int(value) if name in _BOOLS else value
        for name, value in zip(_P_FIELDS, dataclasses.astuple(record), strict=True)
    )


def to_conference(row: Sequence[Any]) -> ConferenceRecord:
    values = dict(zip(_C_FIELDS, row, strict=True))
    values["date_created"] = float(values["date_created"])
    values["date_updated"] = float(values["date_updated"])
    values["callback_sequence"] = int(values["callback_sequence"])
    return ConferenceRecord(**values)


def to_participant(row: Sequence[Any]) -> ParticipantRecord:
    values: dict[str, Any] = {
        name: bool(value) if name in _BOOLS else value
        for name, value in zip(_P_FIELDS, row, strict=True)
    }
    values["date_created"] = float(values["date_created"])
    values["date_updated"] = float(values["date_updated"])
    return ParticipantRecord(**values)


def conference_list(query: ConferenceQuery) -> tuple[str, str, tuple[Any, ...]]:
    """(count SQL, page SQL, values): newest first; the page SQL takes LIMIT and OFFSET."""
    where: list[str] = ["account_sid = ?"]
    values: list[Any] = [query.account_sid]
    if query.status:
        where.append("status = ?")
        values.append(query.status)
    if query.friendly_name:
        where.append("friendly_name = ?")
        values.append(query.friendly_name)
    if query.created_from is not None:
        where.append("date_created >= ?")
        values.append(query.created_from)
    if query.created_before is not None:
        where.append("date_created < ?")
        values.append(query.created_before)
    clause = " AND ".join(where)
    count = f"SELECT COUNT(*) FROM conferences WHERE {clause}"
    page = (
        f"SELECT {C_COLUMNS} FROM conferences WHERE {clause} "
        "ORDER BY date_created DESC, sid LIMIT ? OFFSET ?"
    )
    return count, page, tuple(values)


class ConferenceQueries(SqlStore):
    """The ``conferences`` and ``conference_participants`` tables."""

    async def claim_conference(self, record: ConferenceRecord) -> ConferenceRecord:
        """Insert ``record`` unless the name is held by an active conference; the holder."""
        values = conference_values(record)
        key = (record.account_sid, record.friendly_name)

        def unit() -> Unit[ConferenceRecord]:
            yield from change(C_INSERT_IF_FREE, values)
            row = yield from fetch_one(C_ACTIVE_BY_NAME, key)
            if row is None:  # ended between the two statements: ours is the one to insert
                yield from change(C_UPSERT, values)
                return record
            return to_conference(row)

        return await self.write_unit(unit)

    async def save_conference_rows(
        self, conferences: Sequence[ConferenceRecord], participants: Sequence[ParticipantRecord]
    ) -> None:
        """Upsert the rows as their owner last wrote them (one transaction)."""
        c_rows = [conference_values(c) for c in conferences]
        p_rows = [participant_values(p) for p in participants]

        def unit() -> Unit[None]:
            if c_rows:
                yield from execute_many(C_UPSERT, c_rows)
            if p_rows:
                yield from execute_many(P_UPSERT, p_rows)

        await self.write_unit(unit, idempotent=True)

    async def get_conference(self, sid: str) -> ConferenceRecord:
        row = await self.fetchone(C_BY_SID, (sid,))
        if row is None:
            raise NotFoundError(f"no conference {sid}")
        return to_conference(row)

    async def list_conferences(
        self, query: ConferenceQuery, page: int, page_size: int
    ) -> Page[ConferenceRecord]:
        count_sql, page_sql, values = conference_list(query)
        found, total = await self.read_unit(
            lambda: counted_page(count_sql, values, page_sql, page, page_size)
        )
        return Page([to_conference(r) for r in found], total)

    async def get_participant(self, conference_sid: str, call_sid: str) -> ParticipantRecord:
        row = await self.fetchone(P_BY_KEY, (conference_sid, call_sid))
        if row is None:
            raise NotFoundError(f"no participant {call_sid} in {conference_sid}")
        return to_participant(row)

    async def list_participants(
        self,
        conference_sid: str,
        status: str | None,
        page: int,
        page_size: int,
        *,
        muted: bool | None = None,
        hold: bool | None = None,
    ) -> Page[ParticipantRecord]:
        """In joining order; ``status`` (connected, completed), ``muted`` and ``hold`` filter."""
        where = "conference_sid = ?"
        values: list[Any] = [conference_sid]
        if status:
            where += " AND status = ?"
            values.append(status)
        for column, flag in (("muted", muted), ("hold", hold)):
            if flag is not None:
                where += f" AND {column} = ?"
                values.append(int(flag))
        count_sql = f"SELECT COUNT(*) FROM conference_participants WHERE {where}"
        page_sql = (
            f"SELECT {P_COLUMNS} FROM conference_participants WHERE {where} "
            "ORDER BY date_created, call_sid LIMIT ? OFFSET ?"
        )
        found, total = await self.read_unit(
            lambda: counted_page(count_sql, tuple(values), page_sql, page, page_size)
        )
        return Page([to_participant(r) for r in found], total)

    async def call_conferences(
        self, call_sid: str, limit: int = 20
    ) -> list[tuple[ConferenceRecord, ParticipantRecord]]:
        """The conferences ``call_sid`` took part in, newest first, each with its participant
        row (a call's page; the index of migration 0021)."""
        rows = await self.fetchall(
            f"SELECT {P_COLUMNS} FROM conference_participants WHERE call_sid = ? "
            "ORDER BY date_created DESC LIMIT ?",
            (call_sid, limit),
        )
        found = []
        for participant in map(to_participant, rows):
            row = await self.fetchone(C_BY_SID, (participant.conference_sid,))
            if row is not None:
                found.append((to_conference(row), participant))
        return found

    async def active_conferences(self, node_id: str) -> list[ConferenceRecord]:
        """The conferences ``node_id`` holds open (at start: what an earlier run left)."""
        rows = await self.fetchall(
            f"SELECT {C_COLUMNS} FROM conferences WHERE node_id = ? "
            "AND status IN ('init', 'in-progress')",
            (node_id,),
        )
        return [to_conference(r) for r in rows]
