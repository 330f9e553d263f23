"""Throw-away PostgreSQL schemas on the test server (127.0.0.1:5432, database ``test``).

Every test module (and every e2e daemon) gets its own schema ``rcmltest_<hex>``; the store URL
selects it with ``?options=-csearch_path%3D<schema>`` (the libpq form, which psql understands
too), and the store creates it when missing. ``RCMLROUTER_TEST_PG`` overrides the server URL.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess

import asyncpg

SERVER_URL = os.environ.get("RCMLROUTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def new_schema_name() -> str:
    return f"rcmltest_{secrets.token_hex(6)}"


def schema_url(schema: str, **params: str) -> str:
    """The store URL for ``schema`` (extra query parameters are server settings)."""
    extra = "".join(f"&{key}={value}" for key, value in params.items())
    return f"{SERVER_URL}?options=-csearch_path%3D{schema}{extra}"


async def _execute(sql: str) -> None:
    conn = await asyncpg.connect(SERVER_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def drop_schema(schema: str) -> None:
    """Drop ``schema`` and everything in it (runs its own event loop: call from sync code)."""
    asyncio.run(_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


async def terminate_backends(application_name: str) -> int:
    """pg_terminate_backend every connection with ``application_name``; how many."""
    conn = await asyncpg.connect(SERVER_URL, timeout=5)
    try:
        return int(
            await conn.fetchval(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1 AND pid <> pg_backend_pid()",
                application_name,
            )
        )
    finally:
        await conn.close()


def psql_value(schema: str, sql: str) -> str:
    """One value from a separate psql connection (synchronous; usable inside callbacks)."""
    out = subprocess.run(
        ["psql", "-X", "-qtA", schema_url(schema), "-c", sql],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return out.stdout.strip()


def cluster_env(schema: str, node_id: str) -> dict[str, str]:
    """A cluster node's environment: the store in ``schema``, a 2 s lease, version checks each
    second (what the many-node e2e tests share)."""
    return {
        "RCMLROUTER_STORE_URL": schema_url(schema),
        "RCMLROUTER_CLUSTER_NODE_ID": node_id,
        "RCMLROUTER_CLUSTER_LEASE": "2",
        "RCMLROUTER_CLUSTER_VERSION_CHECK": "1",
    }
