"""Units of work written once for both SQL engines.

A unit of work is a generator: it yields :class:`Step` s (SQL with ``?`` placeholders and its
values) and is sent back each step's result: the rows, the number of rows changed, or nothing
for a batch. The engine drives it: SQLite on its database thread in one hop, inside
``BEGIN … COMMIT``; PostgreSQL on a pooled connection (placeholders numbered), retried whole on
connection loss. So the order of steps in a unit, its checks and its row mapping are written
once (``queries_*``); each engine keeps its transactions, error translation and the few SQL
fragments that differ (:class:`Dialect`).

    def unit() -> Unit[int]:
        row = yield from fetch_one("SELECT COUNT(*) FROM calls WHERE account_sid = ?", [sid])
        return int(row[0]) if row else 0

    total = await store.read_unit(unit)
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar

import structlog

from rcmlrouter.store.base import ChangeListener
from rcmlrouter.store.records import NumberChange

log = structlog.get_logger()

Row = tuple[Any, ...]
T = TypeVar("T")
StepKind = Literal["rows", "count", "many"]


class Step(NamedTuple):  # a tuple: a unit makes one per statement, on the hot paths too
    """One statement of a unit: ``rows`` answers the rows, ``count`` the number of rows changed,
    ``many`` runs ``sql`` once per row of ``params`` and answers None."""

    sql: str
    params: Sequence[Any]
    kind: StepKind = "rows"


Unit = Generator[Step, Any, T]
Work = Callable[[], Unit[T]]  # makes a fresh unit per attempt (PostgreSQL retries)


def fetch(sql: str, params: Sequence[Any] = ()) -> Unit[list[Row]]:
    found: list[Row] = yield Step(sql, params)
    return found


def fetch_one(sql: str, params: Sequence[Any] = ()) -> Unit[Row | None]:
    found = yield from fetch(sql, params)
    return found[0] if found else None


def change(sql: str, params: Sequence[Any] = ()) -> Unit[int]:
    """Run an INSERT, UPDATE or DELETE; the number of rows it changed."""
    changed: int = yield Step(sql, params, "count")
    return changed


def execute_many(sql: str, rows: Sequence[Sequence[Any]]) -> Unit[None]:
    yield Step(sql, rows, "many")


def counted_page(
    count_sql: str, values: Sequence[Any], page_sql: str, page: int, page_size: int
) -> Unit[tuple[list[Row], int]]:
    """(rows of page ``page``, total): ``page_sql`` takes ``values`` then LIMIT and OFFSET."""
    row = yield from fetch_one(count_sql, values)
    found = yield from fetch(page_sql, [*values, page_size, page * page_size])
    return found, int(row[0]) if row else 0


PatternSql = Callable[[str], tuple[str, list[Any]]]


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs in the SQL text of the two engines."""

    name: str
    pattern_sql: PatternSql  # a PhoneNumber filter on ``n.phone_number`` (GLOB or regex)
    in_list: Callable[[str, Sequence[Any]], tuple[str, list[Any]]]  # ``expr`` IN values
    for_update: str  # suffix that locks the rows a read-then-write unit reads
    setup_lock: str | None  # statement serialising default setup across processes
    skip_locked: str = ""  # suffix that locks the rows read, passing over rows others hold
    # a statement answering one boolean row: whether this transaction may prune records now
    # (one pruner per database at a time; None: always, the engine has one writer)
    prune_lock: str | None = None


class ChangeNotifier:
    """Listeners of the changes to numbers made through one store object (both engines)."""

    _listeners: list[ChangeListener]

    def add_change_listener(self, callback: ChangeListener) -> None:
        """Call ``callback`` after every committed change to a number (made by this process)."""
        self._listeners.append(callback)

    def notify(self, changes: Iterable[NumberChange]) -> None:
        for change in changes:
            for listener in self._listeners:
                try:
                    listener(change)
                except Exception:  # a listener must not break the writer
                    log.exception("store.listener_failed", sid=change.sid)


class SqlStore(abc.ABC):
    """What the engine-neutral queries need from an engine."""

    dialect: ClassVar[Dialect]

    @abc.abstractmethod
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    @abc.abstractmethod
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    @abc.abstractmethod
    async def read_unit(self, work: Work[T]) -> T:
        """Run a unit of reads on one snapshot."""

    @abc.abstractmethod
    async def write_unit(self, work: Work[T], *, idempotent: bool = False) -> T:
        """Run a unit in one write transaction; ``idempotent`` units may be retried after a
        connection loss at any point (others only when they cannot have committed)."""

    @abc.abstractmethod
    def notify(self, changes: Iterable[NumberChange]) -> None: ...
