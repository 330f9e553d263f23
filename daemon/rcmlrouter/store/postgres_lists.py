# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
"""Listing numbers on PostgreSQL: the PhoneNumber pattern, counts and pages.

The WHERE clauses are the SQLite ones (:mod:`rcmlrouter.store.sqlite_lists`) with a regular
expression where SQLite uses GLOB; counts and pages follow the same plan (``number_counts`` for
unfiltered totals, the second half of a list read backwards, a window count when filtered).
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from rcmlrouter.store.base import NumberQuery
from rcmlrouter.store.postgres_core import numbered
from rcmlrouter.store.sqlite_lists import like_escape


def number_pattern_sql(pattern: str) -> tuple[str, list[Any]]:
    """SQL for a PhoneNumber filter: match anywhere, ``*`` = one digit, leading ``+`` optional."""
    pattern = pattern.removeprefix("+")
    like = "".join("_" if ch == "*" else like_escape(ch) for ch in pattern)
    sql = "n.phone_number LIKE ? ESCAPE '\\'"
    params: list[Any] = [f"%{like}%"]
    if "*" in pattern:
        regex = "".join("[0-9]" if ch == "*" else re.escape(ch) for ch in pattern)
        sql += " AND n.phone_number ~ ?"
        params.append(regex)
    return sql, params


async def unfiltered_total(conn: asyncpg.Connection, query: NumberQuery) -> int:
    sql = "SELECT COALESCE(SUM(total), 0) FROM number_counts WHERE account_sid = ?"
    values: list[Any] = [query.account_sid]
    if query.number_type is not None:
        sql += " AND number_type = ?"
        values.append(query.number_type)
    if not query.include_beta:
        sql += " AND beta = 0"
    return int(await conn.fetchval(numbered(sql), *values))


async def page_sids(
    conn: asyncpg.Connection,
    where: str,
    params: list[Any],
    offset: int,
    limit: int,
    total: int,
) -> list[str]:
    """Sids of one page; the second half of the list is read backwards from the end."""
    if offset >= total:
        return []
    order = "ASC"
    if offset > total // 2:
        order, limit = "DESC", min(limit, total - offset)
        offset = max(total - offset - limit, 0)
    found = await conn.fetch(
        numbered(
            f"SELECT n.sid FROM incoming_phone_numbers n WHERE {where} "
            f"ORDER BY n.phone_number {order}, n.sid {order} LIMIT ? OFFSET ?"
        ),
        *params,
        limit,
        offset,
    )
    return [row[0] for row in found]


async def filtered_page(
    conn: asyncpg.Connection, where: str, params: list[Any], page: int, page_size: int
) -> tuple[list[str], int]:
    found = await conn.fetch(
        numbered(
            f"SELECT n.sid, COUNT(*) OVER () FROM incoming_phone_numbers n WHERE {where} "
            "ORDER BY n.phone_number, n.sid LIMIT ? OFFSET ?"
        ),
        *params,
        page_size,
        page * page_size,
    )
    if found:
        return [row[0] for row in found], int(found[0][1])
    if page == 0:
        return [], 0
    counted = await conn.fetchval(
        numbered(f"SELECT COUNT(*) FROM incoming_phone_numbers n WHERE {where}"), *params
    )
    return [], int(counted)
