"""Media stream rows (migration 0022), for both engines: upserts in the order they were made
(a stream's row at start, then its update), a call's streams for its page, and the streams a
crash left ``in-progress`` ended with their calls."""

# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Final

from rcmlrouter.store.sql import SqlStore, Unit, change, execute_many
from rcmlrouter.store.stream_records import StreamRecord

_FIELDS: Final = [f.name for f in dataclasses.fields(StreamRecord)]
STREAM_COLUMNS: Final = ", ".join(_FIELDS)
_KEPT: Final = frozenset({"sid", "date_created"})  # an update keeps when the stream began
STREAM_UPSERT: Final = (
    f"INSERT INTO streams ({STREAM_COLUMNS}) VALUES ({', '.join('?' for _ in _FIELDS)}) "
    "ON CONFLICT (sid) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _FIELDS if name not in _KEPT)
)


def to_stream(row: Sequence[Any]) -> StreamRecord:
    values = dict(zip(_FIELDS, row, strict=True))
    values["date_created"] = float(values["date_created"])
    values["date_updated"] = float(values["date_updated"])
    if values["error_code"] is not None:
        values["error_code"] = int(values["error_code"])
    return StreamRecord(**values)


class StreamQueries(SqlStore):
    """The ``streams`` table."""

    async def save_streams(self, records: Sequence[StreamRecord]) -> None:
        """Upsert ``records`` in their order, in one transaction (a later row of the same
        stream is its update)."""
        values = [dataclasses.astuple(r) for r in records]

        def unit() -> Unit[None]:
            if values:
                yield from execute_many(STREAM_UPSERT, values)

        await self.write_unit(unit, idempotent=True)

    async def end_streams(self, call_sids: Sequence[str]) -> int:
        """The streams of ``call_sids`` still ``in-progress`` (their node stopped with the
        calls: ``calls/recovery.py`` closed them) are ``stopped`` at their call's end (or when
        last written, if later: a call cut at its answer ends at it); how many."""
        if not call_sids:
            return 0
        in_calls, values = self.dialect.in_list("call_sid", list(call_sids))
        sql = (
            "UPDATE streams SET status = 'stopped', date_updated = COALESCE((SELECT CASE "
            "WHEN c.end_time > streams.date_updated THEN c.end_time ELSE streams.date_updated END "
            "FROM calls c WHERE c.sid = streams.call_sid), date_updated) "
            f"WHERE {in_calls} AND status = 'in-progress'"
        )
        return await self.write_unit(lambda: change(sql, values), idempotent=True)

    async def call_streams(self, call_sid: str, limit: int = 50) -> list[StreamRecord]:
        """The streams of ``call_sid``, in the order they began (a call's page)."""
        rows = await self.fetchall(
            f"SELECT {STREAM_COLUMNS} FROM streams WHERE call_sid = ? "
            "ORDER BY date_created, sid LIMIT ?",
            (call_sid, limit),
        )
        return [to_stream(r) for r in rows]
