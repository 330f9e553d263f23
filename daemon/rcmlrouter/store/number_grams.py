# ruff: noqa: S608  (SQL is assembled from constant fragments; values are bound)
"""``PhoneNumber=…*…`` list filters through the gram index (migration 0010, both engines).

``number_grams`` holds every 4-character substring of every number under its account. A filter
(match anywhere, ``*`` = one digit) is planned in three steps:

1. windows: every 4-character slice of the pattern without letters (SQLite's LIKE ignores ASCII
   case, the index does not) and with at most two ``*``; a ``*`` expands to the ten digits, so a
   window is a set of grams, one of which any matching number contains;
2. probe: one query reads the index row count of every gram of the windows (``gram_counts``)
   and the account's number count;
3. read: the window with the fewest rows gives the candidates, the whole pattern (the engine's
   usual LIKE + GLOB or regex) is checked on them; the other filters (type, FriendlyName, Beta)
   join the numbers table. A pattern without a window, or whose best window holds more than a
   quarter of the account, returns None: the caller scans the account as before.

The same SQL runs on both engines (``?`` placeholders; PostgreSQL numbers them).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from rcmlrouter.store.base import NumberQuery
from rcmlrouter.store.postgres_core import numbered

GRAM = 4
MAX_WILDCARDS = 2
MIN_SCAN = 1000  # below this many candidates the index is always used
DIGITS = "0123456789"

PatternSql = Callable[[str], tuple[str, list[Any]]]


def pattern_windows(pattern: str) -> list[list[str]]:
    """The usable windows of a PhoneNumber filter, each as its list of grams."""
    body = pattern.removeprefix("+")
    windows: list[list[str]] = []
    seen: set[str] = set()
    for start in range(len(body) - GRAM + 1):
        window = body[start : start + GRAM]
        if window in seen or any(ch.isascii() and ch.isalpha() for ch in window):
            continue
        if window.count("*") > MAX_WILDCARDS:
            continue
        seen.add(window)
        windows.append(_expand(window))
    return windows


def _expand(window: str) -> list[str]:
    grams = [""]
    for ch in window:
        grams = [g + d for g in grams for d in DIGITS] if ch == "*" else [g + ch for g in grams]
    return grams


def _marks(values: list[str]) -> str:
    return ", ".join("?" for _ in values)


ACCOUNT_ID_SQL = "SELECT id FROM gram_accounts WHERE account_sid = ?"


def probe_sql(account_id: int, account_sid: str, windows: list[list[str]]) -> tuple[str, list[Any]]:
    """Rows (gram, index rows) of the account for every gram of ``windows``, and ('', the
    account's number count)."""
    grams = sorted({g for window in windows for g in window})
    sql = (
        f"SELECT gram, total FROM gram_counts WHERE account_id = ? AND gram IN ({_marks(grams)}) "
        "UNION ALL SELECT '', COALESCE(SUM(total), 0) FROM number_counts WHERE account_sid = ?"
    )
    return sql, [account_id, *grams, account_sid]


def best_window(windows: list[list[str]], counts: dict[str, int]) -> list[str] | None:
    """The window with the fewest index rows; None when scanning the account is cheaper (the
    window holds more than a quarter of the account's numbers, and more than ``MIN_SCAN``)."""
    if not windows:
        return None
    ranked = min((sum(counts.get(g, 0) for g in window), i) for i, window in enumerate(windows))
    if ranked[0] > max(MIN_SCAN, counts.get("", 0) // 4):
        return None
    return windows[ranked[1]]


@dataclass(frozen=True, slots=True)
class IndexedPage:
    """The SQL of a page read through the index: ``page`` gives (sid, total) rows."""

    page: str
    page_values: list[Any]
    count: str
    count_values: list[Any]


def indexed_page_sql(
    query: NumberQuery,
    account_id: int,
    grams: list[str],
    pattern_sql: PatternSql,
    page: int,
    page_size: int,
) -> IndexedPage:
    assert query.phone_number
    check, check_values = pattern_sql(query.phone_number)
    candidates = (
        "SELECT DISTINCT g.phone_number, g.sid FROM number_grams g "
        f"WHERE g.account_id = ? AND g.gram IN ({_marks(grams)}) "
        f"AND {check.replace('n.phone_number', 'g.phone_number')}"
    )
    values: list[Any] = [account_id, *grams, *check_values]
    extra, extra_values = _other_filters(query)
    if extra:
        source = f"({candidates}) c JOIN incoming_phone_numbers n ON n.sid = c.sid WHERE {extra}"
        values += extra_values
    else:
        source = f"({candidates}) c"
    return IndexedPage(
        f"SELECT c.sid, COUNT(*) OVER () FROM {source} "
        "ORDER BY c.phone_number, c.sid LIMIT ? OFFSET ?",
        [*values, page_size, page * page_size],
        f"SELECT COUNT(*) FROM {source}",
        values,
    )


def _other_filters(query: NumberQuery) -> tuple[str, list[Any]]:
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


def sqlite_indexed_page(
    db: sqlite3.Connection, query: NumberQuery, page: int, page_size: int, pattern_sql: PatternSql
) -> tuple[list[str], int] | None:
    """(sids of the page, total) through the index; None: scan the account instead."""
    windows = pattern_windows(query.phone_number or "")
    if not windows:
        return None
    row = db.execute(ACCOUNT_ID_SQL, (query.account_sid,)).fetchone()
    if row is None:  # the account never had a number
        return [], 0
    account_id = int(row[0])
    sql, values = probe_sql(account_id, query.account_sid, windows)
    counts = {gram: int(total) for gram, total in db.execute(sql, values).fetchall()}
    grams = best_window(windows, counts)
    if grams is None:
        return None
    plan = indexed_page_sql(query, account_id, grams, pattern_sql, page, page_size)
    found = db.execute(plan.page, plan.page_values).fetchall()
    if found:
        return [r[0] for r in found], int(found[0][1])
    if page == 0:
        return [], 0
    return [], int(db.execute(plan.count, plan.count_values).fetchone()[0])


async def postgres_indexed_page(
    conn: asyncpg.Connection,
    query: NumberQuery,
    page: int,
    page_size: int,
    pattern_sql: PatternSql,
) -> tuple[list[str], int] | None:
    """:func:`sqlite_indexed_page` on PostgreSQL."""
    windows = pattern_windows(query.phone_number or "")
    if not windows:
        return None
    account_id = await conn.fetchval(numbered(ACCOUNT_ID_SQL), query.account_sid)
    if account_id is None:
        return [], 0
    sql, values = probe_sql(int(account_id), query.account_sid, windows)
    found = await conn.fetch(numbered(sql), *values)
    grams = best_window(windows, {r[0]: int(r[1]) for r in found})
    if grams is None:
        return None
    plan = indexed_page_sql(query, int(account_id), grams, pattern_sql, page, page_size)
    found = await conn.fetch(numbered(plan.page), *plan.page_values)
    if found:
        return [r[0] for r in found], int(found[0][1])
    if page == 0:
        return [], 0
    return [], int(await conn.fetchval(numbered(plan.count), *plan.count_values))
