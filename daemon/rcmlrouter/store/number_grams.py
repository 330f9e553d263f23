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

The same units run on both engines (:mod:`rcmlrouter.store.sql`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rcmlrouter.store import rows
from rcmlrouter.store.filters import NumberCursor, NumberQuery
from rcmlrouter.store.number_lists import other_filters
from rcmlrouter.store.records import IncomingNumber
from rcmlrouter.store.sql import Dialect, PatternSql, Unit, fetch, fetch_one

GRAM = 4
MAX_WILDCARDS = 2
MIN_SCAN = 1000  # below this many candidates the index is always used
DIGITS = "0123456789"


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
class Plan:
    """How a filter reads the index: the account's key and the grams of the chosen window.
    ``account_id`` None: the account never had a number (the answer is empty)."""

    account_id: int | None
    grams: list[str]


def plan_from(windows: list[list[str]], account_id: int, counts: dict[str, int]) -> Plan | None:
    grams = best_window(windows, counts)
    return None if grams is None else Plan(account_id, grams)


def _source(query: NumberQuery, plan: Plan, pattern_sql: PatternSql) -> tuple[str, list[Any]]:
    """FROM clause: the window's rows checked against the whole pattern, as ``c``; joined
    with the numbers (``n``) only when other filters need their columns."""
    assert query.phone_number
    check, check_values = pattern_sql(query.phone_number)
    candidates = (
        "SELECT DISTINCT g.phone_number, g.sid FROM number_grams g "
        f"WHERE g.account_id = ? AND g.gram IN ({_marks(plan.grams)}) "
        f"AND {check.replace('n.phone_number', 'g.phone_number')}"
    )
    values: list[Any] = [plan.account_id, *plan.grams, *check_values]
    extra, extra_values = other_filters(query)
    if not extra:
        return f"({candidates}) c", values
    join = f"JOIN incoming_phone_numbers n ON n.sid = c.sid AND {extra}"
    return f"({candidates}) c {join}", [*values, *extra_values]


@dataclass(frozen=True, slots=True)
class IndexedPage:
    """The SQL of a page read through the index: ``page`` gives (sid, total) rows."""

    page: str
    page_values: list[Any]
    count: str
    count_values: list[Any]


def indexed_page_sql(
    query: NumberQuery, plan: Plan, pattern_sql: PatternSql, page: int, page_size: int
) -> IndexedPage:
    source, values = _source(query, plan, pattern_sql)
    return IndexedPage(
        f"SELECT c.sid, COUNT(*) OVER () FROM {source} "
        "ORDER BY c.phone_number, c.sid LIMIT ? OFFSET ?",
        [*values, page_size, page * page_size],
        f"SELECT COUNT(*) FROM {source}",
        values,
    )


def keyset_sids_sql(
    query: NumberQuery,
    plan: Plan,
    pattern_sql: PatternSql,
    cursor: NumberCursor | None,
    limit: int,
) -> tuple[str, list[Any]]:
    """Sids of up to ``limit`` numbers after (``before``: just before, last first) ``cursor``."""
    source, values = _source(query, plan, pattern_sql)
    where, order = "", "ASC"
    if cursor is not None:
        where = f" WHERE (c.phone_number, c.sid) {'<' if cursor.before else '>'} (?, ?)"
        values = [*values, cursor.phone_number, cursor.sid]
        order = "DESC" if cursor.before else "ASC"
    sql = (
        f"SELECT c.sid FROM {source}{where} ORDER BY c.phone_number {order}, c.sid {order} LIMIT ?"
    )
    return sql, [*values, limit]


def _in_list_order(found: list[Any]) -> list[IncomingNumber]:
    """Full number rows sorted as lists are (phone number, sid)."""
    return [rows.to_number(tuple(r)) for r in sorted(found, key=lambda r: (r[3], r[0]))]


def index_plan(query: NumberQuery) -> Unit[Plan | None]:
    """The index plan of ``query``'s PhoneNumber filter; None: scan the account instead."""
    windows = pattern_windows(query.phone_number or "")
    if not windows:
        return None
    row = yield from fetch_one(ACCOUNT_ID_SQL, (query.account_sid,))
    if row is None:
        return Plan(None, [])
    sql, values = probe_sql(int(row[0]), query.account_sid, windows)
    found = yield from fetch(sql, values)
    return plan_from(windows, int(row[0]), {gram: int(total) for gram, total in found})


def indexed_page(
    query: NumberQuery, page: int, page_size: int, pattern_sql: PatternSql
) -> Unit[tuple[list[str], int] | None]:
    """(sids of the page, total) through the index; None: scan the account instead."""
    plan = yield from index_plan(query)
    if plan is None or plan.account_id is None:
        return None if plan is None else ([], 0)
    sql = indexed_page_sql(query, plan, pattern_sql, page, page_size)
    found = yield from fetch(sql.page, sql.page_values)
    if found:
        return [r[0] for r in found], int(found[0][1])
    if page == 0:
        return [], 0
    counted = yield from fetch_one(sql.count, sql.count_values)
    return [], int(counted[0]) if counted else 0


def indexed_numbers(
    query: NumberQuery, cursor: NumberCursor | None, limit: int, dialect: Dialect
) -> Unit[list[IncomingNumber] | None]:
    """Up to ``limit`` numbers after (or before) ``cursor``, ascending; None: scan instead."""
    plan = yield from index_plan(query)
    if plan is None or plan.account_id is None:
        return None if plan is None else []
    sql, values = keyset_sids_sql(query, plan, dialect.pattern_sql, cursor, limit)
    sids = [r[0] for r in (yield from fetch(sql, values))]
    if not sids:
        return []
    where, where_values = dialect.in_list("n.sid", sids)
    found = yield from fetch(f"{rows.NUMBER_SELECT} WHERE {where}", where_values)
    return _in_list_order(found)
