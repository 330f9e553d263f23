# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
"""Idempotency-Key records (``api/idempotency.py``), for both engines.

A create that honours an ``Idempotency-Key`` starts its unit of work with
:func:`claim_idempotency_key` and writes its resource only when the claim succeeded, so the key
and the resource commit together or not at all. The claim is one ``INSERT … ON CONFLICT DO
UPDATE … WHERE`` on the ``(account_sid, idem_key)`` primary key:

- no record: inserted, the key is ours;
- an expired record (older than ``ttl``): replaced, the key is ours again;
- a live record: nothing changes, and the unit reads it (the first answer) and creates nothing.

Concurrent claims of one key serialise on the primary key: on SQLite the write transactions
themselves are serial; on PostgreSQL the second ``INSERT`` waits for the first transaction and,
once it committed, finds its row (READ COMMITTED: the following ``SELECT`` sees it). Either way
exactly one transaction creates the resource.
"""

from __future__ import annotations

from rcmlrouter.store import rows
from rcmlrouter.store.records import IdempotencyRecord
from rcmlrouter.store.sql import SqlStore, Unit, change, fetch_one

_NAMES = rows.IDEMPOTENCY_COLUMNS.split(", ")
IDEMPOTENCY_CLAIM = (
    f"INSERT INTO idempotency_keys ({rows.IDEMPOTENCY_COLUMNS}) "
    f"VALUES ({', '.join('?' for _ in _NAMES)}) "
    "ON CONFLICT (account_sid, idem_key) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _NAMES[2:])
    + " WHERE idempotency_keys.created_at < ?"
)
IDEMPOTENCY_SELECT = (
    f"SELECT {rows.IDEMPOTENCY_COLUMNS} FROM idempotency_keys "
    "WHERE account_sid = ? AND idem_key = ?"
)


def claim_idempotency_key(record: IdempotencyRecord, ttl: float) -> Unit[IdempotencyRecord | None]:
    """Claim ``record``'s key (None: the caller creates its resource in the same unit), or the
    live record already holding it (the caller creates nothing). Records older than ``ttl``
    seconds (from ``record.created_at``) are expired."""
    values = (*rows.idempotency_values(record), record.created_at - ttl)
    if (yield from change(IDEMPOTENCY_CLAIM, values)) == 1:
        return None
    row = yield from fetch_one(IDEMPOTENCY_SELECT, (record.account_sid, record.key))
    if row is None:  # cannot happen: the conflicting row is committed and never deleted live
        raise AssertionError(f"idempotency key {record.key!r} conflicted but is not there")
    return rows.to_idempotency(row)


class IdempotencyQueries(SqlStore):
    """The ``idempotency_keys`` table."""

    async def get_idempotency_record(
        self, account_sid: str, key: str, since: float
    ) -> IdempotencyRecord | None:
        """The record of ``key`` created at or after ``since`` (an older one has expired)."""
        row = await self.fetchone(
            f"{IDEMPOTENCY_SELECT} AND created_at >= ?", (account_sid, key, since)
        )
        return rows.to_idempotency(row) if row is not None else None

    async def prune_idempotency_records(self, before: float) -> int:
        """Delete the records created before ``before``; how many (index on created_at)."""

        def unit() -> Unit[int]:
            return (
                yield from change("DELETE FROM idempotency_keys WHERE created_at < ?", (before,))
            )

        return await self.write_unit(unit, idempotent=True)
