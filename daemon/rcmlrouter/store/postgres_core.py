"""The PostgreSQL connection pool underneath :class:`~rcmlrouter.store.postgres.PostgresStore`.

An asyncpg pool serves every unit of work; a unit is one function run on one pooled connection,
inside one transaction when it writes. Units are retried with backoff when the connection is lost
(server restart, ``pg_terminate_backend``, network), when the server refuses to connect, and on a
serialization failure or deadlock; a write is retried only when it cannot have committed
(the loss happened before COMMIT) or is idempotent. When retries run out the unit raises
:class:`~rcmlrouter.errors.StoreUnavailableError`; a command that takes longer than
``COMMAND_TIMEOUT`` raises it at once. Nothing waits forever.

SQL is written once with ``?`` placeholders, as for SQLite (``numbered`` turns them into
``$1…$n``). Migrations are ``migrations/postgres/NNNN_*.sql``, numbered like the SQLite files so
``schema_version`` means the same on both engines; they are applied at open in one transaction
under an advisory lock, so nodes starting together migrate once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from importlib import resources
from typing import Any, Self, TypeVar

import asyncpg
import structlog

from rcmlrouter.errors import ConflictError, StoreError, StoreUnavailableError
from rcmlrouter.store.base import ChangeListener
from rcmlrouter.store.sql import ChangeNotifier

log = structlog.get_logger()

Row = tuple[Any, ...]
T = TypeVar("T")
Work = Callable[[asyncpg.Connection], Awaitable[T]]

POOL_MIN, POOL_MAX = 1, 10
CONNECT_TIMEOUT = 5.0  # seconds to open one connection
COMMAND_TIMEOUT = 15.0  # seconds for one statement
ACQUIRE_TIMEOUT = 10.0  # seconds to wait for a pooled connection
RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0)  # backoff between attempts of one unit

# SQLSTATE classes: 08 connection exception, 57 operator intervention (57P01 admin shutdown,
# i.e. pg_terminate_backend; 57P03 cannot connect now), 53 insufficient resources.
_LOST_CLASSES = ("08", "57", "53")
_RETRY_STATES = ("40001", "40P01")  # serialization failure, deadlock: the transaction rolled back


def postgres_migration_scripts() -> list[tuple[int, str]]:
    """(version, sql) for every packaged PostgreSQL migration, in order."""
    folder = resources.files("rcmlrouter.store").joinpath("migrations").joinpath("postgres")
    found: list[tuple[int, str]] = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql") and entry.name[:4].isdigit():
            found.append((int(entry.name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """``?`` placeholders as ``$1, $2, …`` (the store's SQL has no ``?`` inside literals)."""
    parts = sql.split("?")
    out = [parts[0]]
    for index, part in enumerate(parts[1:], start=1):
        out.append(f"${index}{part}")
    return "".join(out)


class _Lost(Exception):
    """Internal: the connection failed; ``retry`` tells whether the unit may run again."""

    def __init__(self, cause: BaseException, retry: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.retry = retry


def is_connection_loss(exc: BaseException) -> bool:
    """True for errors that mean "the server is unreachable or the connection is gone"."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate or "")[:2] in _LOST_CLASSES
    if isinstance(exc, asyncpg.InterfaceError):
        return "closed" in str(exc)  # "connection is closed", "… was closed in the middle …"
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        return True  # the protocol state after a backend was killed mid-exchange
    return isinstance(exc, OSError | ConnectionError)


def translate(exc: BaseException) -> StoreError:
    """An asyncpg (or socket) failure as a StoreError subclass."""
    if isinstance(exc, asyncpg.UniqueViolationError | asyncpg.ExclusionViolationError):
        return ConflictError(str(exc))
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return ConflictError(str(exc))  # NOT NULL / foreign key / check: as SQLite reports them
    if isinstance(exc, TimeoutError):
        return StoreUnavailableError("database timed out")
    if is_connection_loss(exc):
        return StoreUnavailableError(f"database unavailable: {exc}")
    return StoreError(f"database error: {exc}")


class PostgresConnection(ChangeNotifier):
    """Pool, units of work with retries, migrations and change listeners."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._listeners: list[ChangeListener] = []

    @classmethod
    async def open(cls, url: str, *, node_id: str = "") -> Self:
        """Connect to ``postgresql://…`` (libpq URL; ``?options=-csearch_path%3DSCHEMA`` or
        ``?search_path=SCHEMA`` picks the schema, created when missing) and migrate.

        ``node_id`` (a cluster node) is the session setting ``rcmlrouter.node_id`` of every
        pooled connection: the default owner of the outbox events, call and message records
        this process writes (migration 0008)."""
        settings = {"rcmlrouter.node_id": node_id} if node_id else None
        try:
            pool = await asyncpg.create_pool(
                url,
                server_settings=settings,
                min_size=POOL_MIN,
                max_size=POOL_MAX,
                timeout=CONNECT_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT,
                max_inactive_connection_lifetime=300.0,
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise StoreUnavailableError(f"cannot open database: {exc}") from exc
        except ValueError as exc:  # a malformed URL
            raise StoreError(f"cannot open database: {exc}") from exc
        store = cls(pool)
        try:
            await store.migrate()
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self._pool.close(), CONNECT_TIMEOUT)
        except (TimeoutError, asyncpg.InterfaceError, OSError):
            self._pool.terminate()

    async def migrate(self) -> int:
        """Apply pending migrations; return the schema version."""

        async def apply(conn: asyncpg.Connection) -> int:
            # one migrator per schema at a time (nodes starting together)
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('rcmlrouter:' || "
                "current_setting('search_path')))"
            )
            await _ensure_schema(conn)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                "applied_at DOUBLE PRECISION NOT NULL)"
            )
            current = int(
                await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            )
            for version, script in postgres_migration_scripts():
                if version <= current:
                    continue
                await conn.execute(script)
                await conn.execute(
                    "INSERT INTO schema_version (version, applied_at) "
                    "VALUES ($1, EXTRACT(EPOCH FROM now()))",
                    version,
                )
                log.info("store.migrated", version=version, engine="postgresql")
                current = version
            return current

        return await self.write(apply, idempotent=True)

    # ---- units of work ---------------------------------------------------------------------

    async def read(self, work: Work[T]) -> T:
        """Run ``work`` on a pooled connection (no transaction); retried on connection loss."""
        return await self._retrying(work, write=False, idempotent=True)

    async def read_snapshot(self, work: Work[T]) -> T:
        """Run several reads in one read-only REPEATABLE READ transaction (one snapshot)."""

        async def unit(conn: asyncpg.Connection) -> T:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await work(conn)

        return await self._retrying(unit, write=False, idempotent=True)

    async def write(self, work: Work[T], *, idempotent: bool = False) -> T:
        """Run ``work`` in one transaction. Retried when the connection is lost before COMMIT
        (the server rolled the transaction back) or, for ``idempotent`` work, at any point."""
        return await self._retrying(work, write=True, idempotent=idempotent)

    async def _retrying(self, work: Work[T], *, write: bool, idempotent: bool) -> T:
        delays = iter(RETRY_DELAYS)
        while True:
            try:
                return await self._attempt(work, write=write, idempotent=idempotent)
            except _Lost as lost:
                delay = next(delays, None) if lost.retry else None
                if delay is None:
                    raise translate(lost.cause) from lost.cause
                log.warning("store.retry", error=str(lost.cause), delay=delay)
                await asyncio.sleep(delay)

    async def _attempt(self, work: Work[T], *, write: bool, idempotent: bool) -> T:
        committing = False
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                if not write:
                    return await work(conn)
                tx = conn.transaction()
                await tx.start()
                try:
                    result = await work(conn)
                except BaseException:
                    with contextlib.suppress(
                        asyncpg.PostgresError,
                        asyncpg.InterfaceError,
                        asyncpg.exceptions.InternalClientError,
                        OSError,
                    ):
                        await tx.rollback()
                    raise
                committing = True
                await tx.commit()
                return result
        except TimeoutError as exc:
            raise translate(exc) from exc
        except asyncpg.PostgresError as exc:
            if exc.sqlstate in _RETRY_STATES:
                raise _Lost(exc, retry=True) from exc
            if is_connection_loss(exc):
                raise _Lost(exc, retry=idempotent or not committing) from exc
            raise translate(exc) from exc
        except (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError, OSError) as exc:
            if is_connection_loss(exc):
                raise _Lost(exc, retry=idempotent or not committing) from exc
            raise translate(exc) from exc

    # ---- SQL with ``?`` placeholders ----------------------------------------------------------

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        query = numbered(sql)

        async def unit(conn: asyncpg.Connection) -> list[Row]:
            return [tuple(r) for r in await conn.fetch(query, *params)]

        return await self.read(unit)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        found = await self.fetchall(sql, params)
        return found[0] if found else None

    async def execute_many(
        self, sql: str, rows: Iterable[Sequence[Any]], *, idempotent: bool = False
    ) -> None:
        """Run ``sql`` for every row in one transaction."""
        query, values = numbered(sql), [tuple(r) for r in rows]

        async def unit(conn: asyncpg.Connection) -> None:
            await conn.executemany(query, values)

        await self.write(unit, idempotent=idempotent)


async def _ensure_schema(conn: asyncpg.Connection) -> None:
    """Create the first schema of ``search_path`` when it does not exist yet."""
    if await conn.fetchval("SELECT current_schema()") is not None:
        return
    path = str(await conn.fetchval("SELECT current_setting('search_path')"))
    names = [n.strip().strip('"') for n in path.split(",") if n.strip() not in ("", '"$user"')]
    if not names:
        raise StoreError("no schema to create tables in (search_path is empty)")
    quoted = await conn.fetchval("SELECT quote_ident($1)", names[0])
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
