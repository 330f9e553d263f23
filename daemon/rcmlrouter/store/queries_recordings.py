"""``<Record>`` recordings, for both engines."""

# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
from __future__ import annotations

import dataclasses
from typing import Any, Final

from rcmlrouter.errors import NotFoundError
from rcmlrouter.store.filters import Page
from rcmlrouter.store.records import Recording
from rcmlrouter.store.sql import SqlStore, change, counted_page

RECORDING_COLUMNS: Final = ", ".join(f.name for f in dataclasses.fields(Recording))
RECORDING_INSERT: Final = (
    f"INSERT INTO recordings ({RECORDING_COLUMNS}) "
    f"VALUES ({', '.join('?' for _ in dataclasses.fields(Recording))})"
)
RECORDING_BY_SID: Final = f"SELECT {RECORDING_COLUMNS} FROM recordings WHERE sid = ?"


def recording_values(recording: Recording) -> tuple[Any, ...]:
    return dataclasses.astuple(recording)


def to_recording(row: tuple[Any, ...]) -> Recording:
    sid, account, call, duration, created, status, source, channels = row
    return Recording(
        sid, account, call, float(duration), float(created), status, source, int(channels)
    )


def recording_list(account_sid: str, call_sid: str | None) -> tuple[str, str, tuple[Any, ...]]:
    """(count SQL, page SQL, values) of an account's recordings, newest first; the page SQL
    takes LIMIT and OFFSET after the values."""
    where, values = "account_sid = ?", [account_sid]
    if call_sid is not None:
        where += " AND call_sid = ?"
        values.append(call_sid)
    count = f"SELECT COUNT(*) FROM recordings WHERE {where}"
    page = (
        f"SELECT {RECORDING_COLUMNS} FROM recordings WHERE {where} "
        "ORDER BY date_created DESC, sid LIMIT ? OFFSET ?"
    )
    return count, page, tuple(values)


class RecordingQueries(SqlStore):
    """The ``recordings`` table."""

    async def add_recording(self, recording: Recording) -> None:
        values = recording_values(recording)
        await self.write_unit(lambda: change(RECORDING_INSERT, values))

    async def get_recording(self, sid: str) -> Recording:
        row = await self.fetchone(RECORDING_BY_SID, (sid,))
        if row is None:
            raise NotFoundError(f"no recording {sid}")
        return to_recording(row)

    async def list_recordings(
        self, account_sid: str, call_sid: str | None, page: int, page_size: int
    ) -> Page[Recording]:
        """Newest first (one read snapshot)."""
        count_sql, page_sql, values = recording_list(account_sid, call_sid)
        found, total = await self.read_unit(
            lambda: counted_page(count_sql, values, page_sql, page, page_size)
        )
        return Page([to_recording(r) for r in found], total)
