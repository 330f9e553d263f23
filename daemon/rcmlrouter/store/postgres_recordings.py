"""``<Record>`` recordings on PostgreSQL (the SQL of :mod:`~rcmlrouter.store.sqlite_recordings`)."""

from __future__ import annotations

from rcmlrouter.errors import NotFoundError
from rcmlrouter.store.base import Page, Recording
from rcmlrouter.store.postgres_core import PostgresConnection
from rcmlrouter.store.sqlite_recordings import (
    RECORDING_BY_SID,
    RECORDING_INSERT,
    recording_list,
    recording_values,
    to_recording,
)


class RecordingQueries(PostgresConnection):
    """The ``recordings`` table."""

    async def add_recording(self, recording: Recording) -> None:
        await self.execute_many(RECORDING_INSERT, [recording_values(recording)], idempotent=False)

    async def get_recording(self, sid: str) -> Recording:
        row = await self.fetchone(RECORDING_BY_SID, (sid,))
        if row is None:
            raise NotFoundError(f"no recording {sid}")
        return to_recording(tuple(row))

    async def list_recordings(
        self, account_sid: str, call_sid: str | None, page: int, page_size: int
    ) -> Page[Recording]:
        count_sql, page_sql, values = recording_list(account_sid, call_sid)
        count = await self.fetchone(count_sql, values)
        found = await self.fetchall(page_sql, (*values, page_size, page * page_size))
        return Page([to_recording(tuple(r)) for r in found], int(count[0]) if count else 0)
