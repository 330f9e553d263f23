# ruff: noqa: S608  (SQL is assembled from constant fragments; values are bound)
"""Retention (``[records] max_age``): the oldest records deleted in small batches, for both
engines. ``retention.py`` drives these units; here is what may go.

A record still owed work is never deleted: an unfinished call (no end time), an inbound
message not processed yet (``accepted``) or an outbound one still being sent (``queued`` /
``sending``, unless older than ``stale_before``: the leftovers of a crash), and any call,
message or recording with an undelivered event in the callback outbox (events are filed under
the call's, message's or recording's sid). A media stream's row goes with its call: once the
call's row is gone.

Many nodes may prune one PostgreSQL database: a batch runs only while its transaction holds
the database's pruning lock (``pg_try_advisory_xact_lock``, never waited for: a node that does
not get it skips the round) and locks its rows ``FOR UPDATE SKIP LOCKED``, so two batches never
contend for, or delete, the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from rcmlrouter.store.records import PrunedKind
from rcmlrouter.store.sql import SqlStore, Unit, change, fetch_one

_NO_EVENTS = "NOT EXISTS (SELECT 1 FROM callback_outbox o WHERE o.call_sid = r.sid)"
# (the table, the condition on ``r`` with its ``?`` values in order: cutoff[, stale_before])
_PRUNABLE: dict[str, tuple[str, str]] = {
    "calls": ("calls", f"r.end_time < ? AND {_NO_EVENTS} ORDER BY r.end_time"),
    "messages": (
        "messages",
        "r.date_created < ? AND r.status <> 'accepted' "
        "AND (r.status NOT IN ('queued', 'sending') OR r.date_created < ?) "
        f"AND {_NO_EVENTS} ORDER BY r.date_created",
    ),
    "notifications": ("notifications", "r.date_created < ? ORDER BY r.date_created"),
    "recordings": ("recordings", f"r.date_created < ? AND {_NO_EVENTS} ORDER BY r.date_created"),
    # a media stream goes with its call: once the call's row is gone (a stream ends before
    # its call, so an old call's streams are old too)
    "streams": (
        "streams",
        "r.date_updated < ? AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.sid = r.call_sid) "
        "ORDER BY r.date_updated",
    ),
}


class RetentionQueries(SqlStore):
    """Deleting old records, a batch at a time."""

    async def prune_records(
        self, kind: PrunedKind, cutoff: float, limit: int, *, stale_before: float = 0.0
    ) -> int | None:
        """Delete up to ``limit`` of the oldest ``kind`` records older than ``cutoff`` and owed
        nothing; how many, or None when another node is pruning (PostgreSQL)."""
        table, condition = _PRUNABLE[kind]
        values = [cutoff, stale_before] if kind == "messages" else [cutoff]
        sql = (
            f"DELETE FROM {table} WHERE sid IN (SELECT r.sid FROM {table} r WHERE {condition} "
            f"LIMIT ?{self.dialect.skip_locked})"
        )

        def unit() -> Unit[int | None]:
            if not (yield from self._may_prune()):
                return None
            return (yield from change(sql, [*values, limit]))

        return await self.write_unit(unit, idempotent=True)

    async def old_recordings(self, cutoff: float, limit: int) -> list[tuple[str, str]]:
        """``(account_sid, sid)`` of up to ``limit`` of the oldest recordings older than
        ``cutoff`` and owed nothing: the files to remove before :meth:`delete_recordings`."""
        _, condition = _PRUNABLE["recordings"]
        found = await self.fetchall(
            f"SELECT r.account_sid, r.sid FROM recordings r WHERE {condition} LIMIT ?",
            (cutoff, limit),
        )
        return [(str(account), str(sid)) for account, sid in found]

    async def delete_recordings(self, sids: Sequence[str], cutoff: float) -> int | None:
        """Delete the recordings ``sids`` that are still older than ``cutoff``; how many, or
        None when another node is pruning (PostgreSQL)."""
        if not sids:
            return 0
        in_sids, values = self.dialect.in_list("sid", list(sids))
        sql = f"DELETE FROM recordings WHERE {in_sids} AND date_created < ?"

        def unit() -> Unit[int | None]:
            if not (yield from self._may_prune()):
                return None
            return (yield from change(sql, [*values, cutoff]))

        return await self.write_unit(unit, idempotent=True)

    def _may_prune(self) -> Unit[bool]:
        """Take the database's pruning lock for this transaction, if the engine has one."""
        lock = self.dialect.prune_lock
        if lock is None:
            return True
        row = yield from fetch_one(lock)
        return bool(row and row[0])
