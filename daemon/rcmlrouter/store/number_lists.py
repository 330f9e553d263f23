# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
"""Listing numbers and searching the inventory, for both engines: filters, counts, pages.

Unfiltered totals come from ``number_counts`` and pages in the second half of the list are read
backwards, so the skipped prefix stays short. Filtered lists (PhoneNumber, FriendlyName) count
with a window function over the same scan that finds the page. A PhoneNumber pattern is the only
SQL that differs: SQLite checks ``*`` with GLOB, PostgreSQL with a regular expression.
"""

from __future__ import annotations

import re
from typing import Any

from rcmlrouter.store import rows
from rcmlrouter.store.filters import InventoryQuery, NumberCursor, NumberQuery
from rcmlrouter.store.sql import PatternSql, Unit, fetch, fetch_one


def like_escape(text: str) -> str:
    """Escape LIKE metacharacters (``\\`` is the ESCAPE character)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(pattern: str) -> tuple[str, list[Any]]:
    like = "".join("_" if ch == "*" else like_escape(ch) for ch in pattern)
    return "n.phone_number LIKE ? ESCAPE '\\'", [f"%{like}%"]


def glob_pattern_sql(pattern: str) -> tuple[str, list[Any]]:
    """SQLite SQL for a PhoneNumber filter: match anywhere, ``*`` = one digit, leading ``+``
    optional (LIKE narrows, GLOB checks the digits)."""
    pattern = pattern.removeprefix("+")
    sql, params = _like(pattern)
    if "*" in pattern:
        glob = "".join(
            "[0-9]" if ch == "*" else (f"[{ch}]" if ch in "[]?" else ch) for ch in pattern
        )
        sql += " AND n.phone_number GLOB ?"
        params.append(f"*{glob}*")
    return sql, params


def regex_pattern_sql(pattern: str) -> tuple[str, list[Any]]:
    """:func:`glob_pattern_sql` for PostgreSQL (a regular expression checks the digits)."""
    pattern = pattern.removeprefix("+")
    sql, params = _like(pattern)
    if "*" in pattern:
        regex = "".join("[0-9]" if ch == "*" else re.escape(ch) for ch in pattern)
        sql += " AND n.phone_number ~ ?"
        params.append(regex)
    return sql, params


def other_filters(query: NumberQuery) -> tuple[str, list[Any]]:
    """The filters of a number list besides account and PhoneNumber ('' when none)."""
    clauses: list[str] = []
    values: list[Any] = []
    if query.number_type is not None:
        clauses.append("n.number_type = ?")
        values.append(query.number_type)
    if query.friendly_name is not None:
        clauses.append("n.friendly_name = ?")
        values.append(query.friendly_name)
    if not query.include_beta:
        clauses.append("n.beta = 0")
    return " AND ".join(clauses), values


def number_where(query: NumberQuery, pattern_sql: PatternSql) -> tuple[str, list[Any]]:
    clauses, params = ["n.account_sid = ?"], [query.account_sid]
    others, other_values = other_filters(query)
    if others:
        clauses.append(others)
        params.extend(other_values)
    if query.phone_number:
        sql, extra = pattern_sql(query.phone_number)
        clauses.append(sql)
        params.extend(extra)
    return " AND ".join(clauses), params


def inventory_where(
    query: InventoryQuery, now: float, pattern_sql: PatternSql
) -> tuple[str, list[Any]]:
    clauses = ["assigned_sid IS NULL", "available_at <= ?"]
    params: list[Any] = [now]
    for column, wanted in (("iso_country", query.iso_country), ("number_type", query.number_type)):
        if wanted is not None:
            clauses.append(f"{column} = ?")
            params.append(wanted)
    if query.area_code:
        clauses.append("phone_number LIKE ?")
        params.append(f"+1{query.area_code}%")
    if query.contains:
        sql, extra = pattern_sql(query.contains)
        clauses.append(sql.replace("n.", ""))
        params.extend(extra)
    for column, value in (("region", query.region), ("postal_code", query.postal_code)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    for column, flag in (
        ("voice", query.voice),
        ("sms", query.sms),
        ("mms", query.mms),
        ("fax", query.fax),
    ):
        if flag is not None:
            clauses.append(f"{column} = ?")
            params.append(int(flag))
    if not query.include_beta:
        clauses.append("beta = 0")
    return " AND ".join(clauses), params


def unfiltered_total(query: NumberQuery) -> Unit[int]:
    sql = "SELECT COALESCE(SUM(total), 0) FROM number_counts WHERE account_sid = ?"
    values: list[Any] = [query.account_sid]
    if query.number_type is not None:
        sql += " AND number_type = ?"
        values.append(query.number_type)
    if not query.include_beta:
        sql += " AND beta = 0"
    row = yield from fetch_one(sql, values)
    return int(row[0]) if row else 0


def page_sids(
    where: str, params: list[Any], offset: int, limit: int, total: int
) -> Unit[list[str]]:
    """Sids of one page; the second half of the list is read backwards from the end."""
    if offset >= total:
        return []
    order = "ASC"
    if offset > total // 2:
        order, limit = "DESC", min(limit, total - offset)
        offset = max(total - offset - limit, 0)
    found = yield from fetch(
        f"SELECT n.sid FROM incoming_phone_numbers n WHERE {where} "
        f"ORDER BY n.phone_number {order}, n.sid {order} LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [row[0] for row in found]


def filtered_page(
    where: str, params: list[Any], page: int, page_size: int
) -> Unit[tuple[list[str], int]]:
    """(sids of the page, total) of a filtered list."""
    found = yield from fetch(
        f"SELECT n.sid, COUNT(*) OVER () FROM incoming_phone_numbers n WHERE {where} "
        "ORDER BY n.phone_number, n.sid LIMIT ? OFFSET ?",
        [*params, page_size, page * page_size],
    )
    if found:
        return [row[0] for row in found], int(found[0][1])
    if page == 0:
        return [], 0
    counted = yield from fetch_one(
        f"SELECT COUNT(*) FROM incoming_phone_numbers n WHERE {where}", params
    )
    return [], int(counted[0]) if counted else 0


def keyset_sql(
    where: str, params: list[Any], cursor: NumberCursor | None, limit: int
) -> tuple[str, list[Any]]:
    """Up to ``limit`` full number rows after (or, ``before``, just before) ``cursor``.

    Rows of a ``before`` page come last-first; the caller reverses them. Row values compare
    (phone_number, sid) in list order.
    """
    order, values = "ASC", list(params)
    if cursor is not None:
        where += f" AND (n.phone_number, n.sid) {'<' if cursor.before else '>'} (?, ?)"
        values += [cursor.phone_number, cursor.sid]
        order = "DESC" if cursor.before else "ASC"
    sql = (
        f"{rows.NUMBER_SELECT} WHERE {where} ORDER BY n.phone_number {order}, n.sid {order} LIMIT ?"
    )
    return sql, [*values, limit]
