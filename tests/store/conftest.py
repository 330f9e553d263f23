"""Store fixtures: the same tests run on SQLite and on PostgreSQL.

``engine`` is parametrised over both engines. PostgreSQL runs in a fresh schema per test module
(``rcmltest_<hex>``, dropped at the end); each test starts from empty tables. The PostgreSQL
cases carry the ``postgres`` marker (``-m "not postgres"`` runs SQLite only).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from rcmlrouter.store.base import Store
from support.pg import SERVER_URL, drop_schema, new_schema_name, schema_url
from support.store_engines import Engine

TABLES = (
    "callback_outbox, notifications, messages, calls, inventory, incoming_phone_numbers, "
    "number_counts, number_grams, gram_counts, gram_accounts, account_tokens, applications, "
    "idempotency_keys, "
    "recordings, conferences, conference_participants, streams, "
    "accounts, organizations"
)


@pytest.fixture(scope="module")
def pg_schema() -> Iterator[str]:
    schema = new_schema_name()
    yield schema
    drop_schema(schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Engine]:
    if request.param == "sqlite":
        path = tmp_path / "store.db"
        yield Engine("sqlite", f"sqlite:///{path}", path=path)
        return
    schema = request.getfixturevalue("pg_schema")
    try:
        conn = await asyncpg.connect(SERVER_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL at {SERVER_URL} is not reachable ({exc}); deselect: -m 'not postgres'"
        )
    try:
        exists = await conn.fetchval(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 "
            "AND table_name = 'organizations'",
            schema,
        )
        if exists:  # every test starts from empty tables
            await conn.execute(f'SET search_path = "{schema}"')
            await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY")
    finally:
        await conn.close()
    yield Engine("postgres", schema_url(schema), schema=schema)


@pytest.fixture
async def store(engine: Engine) -> AsyncIterator[Store]:
    opened = await engine.open()
    yield opened
    await opened.close()
