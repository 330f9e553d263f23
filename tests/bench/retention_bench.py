"""What records retention costs the store: one batch's time by size, on SQLite and PostgreSQL,
and several PostgreSQL nodes pruning one backlog together.

Run: .venv/bin/python tests/bench/retention_bench.py [--rows 200000] [--nodes 3] [--no-postgres]

Each engine gets ``--rows`` finished calls (with URLs and callback parameters, ~0.6 KiB a row as
the daemon writes them); batches of 200 and 500 are timed (10 each, medians). Then the backlog
left is pruned to the end by one node, and a fresh backlog by ``--nodes`` stores on the same
PostgreSQL schema at once, each looping like ``retention.py`` (a batch, a 10 ms pause): rows a
second, and how many batches found the pruning lock taken (they skip instead of waiting).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "daemon"))
sys.path.insert(0, str(HERE.parents[1] / "tests"))

from rcmlrouter.store.base import Store  # noqa: E402
from rcmlrouter.store.postgres import PostgresStore  # noqa: E402
from rcmlrouter.store.records import CallRecord  # noqa: E402
from rcmlrouter.store.sqlite import SqliteStore  # noqa: E402
from support.pg import SERVER_URL, new_schema_name, schema_url  # noqa: E402

ACCOUNT = "AC" + "1" * 32
FAR_FUTURE = 1e12  # a cutoff every row is older than


async def fill(store: Store, rows: int) -> None:
    params = {"CallSid": "CA" + "0" * 32, "AccountSid": ACCOUNT, "From": "bench",
              "To": "5550000123", "ApiVersion": "2012-04-24", "Direction": "inbound",
              "CallTimestamp": "Sat, 05 Dec 2026 00:00:00 +0000"}  # fmt: skip
    for start in range(0, rows, 20_000):
        calls = [
            CallRecord(
                "CA" + secrets.token_hex(16), ACCOUNT, "PN" + "2" * 32, "bench", "5550000123",
                "inbound", "no-answer", "exact", 1000.0 + i * 0.002, None, 1000.01 + i * 0.002,
                0.0, 603, urls=["http://127.0.0.1:5000/voice/reject"],
                status_callback="http://127.0.0.1:5000/status", callback_params=params,
            )
            for i in range(start, min(rows, start + 20_000))
        ]  # fmt: skip
        await store.write_journal(calls, [], [])


async def batch_times(name: str, store: Store) -> None:
    for size in (200, 500):
        times = []
        for _ in range(10):
            started = time.perf_counter()
            await store.prune_records("calls", FAR_FUTURE, size)
            times.append(1000 * (time.perf_counter() - started))
        median = statistics.median(times)
        print(f"| {name} | {size} | {median:.1f} | {max(times):.1f} | {1000 * median / size:.1f} |")


async def prune_all(stores: list[Store]) -> tuple[int, int, float]:
    """(rows deleted, batches that found the lock taken, seconds), the stores all at once."""
    deleted = skipped = 0

    async def node(store: Store) -> None:
        nonlocal deleted, skipped
        while True:
            count = await store.prune_records("calls", FAR_FUTURE, 200)
            if count is None:
                skipped += 1
            else:
                deleted += count
                if count < 200:
                    return
            await asyncio.sleep(0.01)

    started = time.perf_counter()
    await asyncio.gather(*(node(store) for store in stores))
    return deleted, skipped, time.perf_counter() - started


async def main(args: argparse.Namespace) -> None:
    print("| engine | batch rows | median ms | max ms | µs a row |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = await SqliteStore.open(Path(tmp) / "bench.db")
        try:
            await fill(sqlite, args.rows)
            await batch_times("SQLite", sqlite)
            deleted, _, seconds = await prune_all([sqlite])
            sqlite_line = f"SQLite, one node: {deleted:,} rows in {seconds:.1f} s"
        finally:
            await sqlite.close()
    print(f"\n{sqlite_line} ({deleted / seconds:,.0f} rows/s)")
    if args.no_postgres:
        return
    schema = new_schema_name()
    first = await PostgresStore.open(schema_url(schema))
    try:
        await fill(first, args.rows)
        await batch_times("PostgreSQL", first)
        deleted, skipped, seconds = await prune_all([first])
        print(f"PostgreSQL, one node: {deleted:,} rows in {seconds:.1f} s "
              f"({deleted / seconds:,.0f} rows/s)")  # fmt: skip
        await fill(first, args.rows // 2)
        others = [await PostgresStore.open(schema_url(schema)) for _ in range(args.nodes - 1)]
        try:
            deleted, skipped, seconds = await prune_all([first, *others])
        finally:
            for store in others:
                await store.close()
        rate = deleted / seconds
        print(f"PostgreSQL, {args.nodes} nodes at once: {deleted:,} rows in {seconds:.1f} s "
              f"({rate:,.0f} rows/s), {skipped} batches found the lock taken")  # fmt: skip
    finally:
        await first.close()
        conn = await asyncpg.connect(SERVER_URL, timeout=5)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    asyncio.run(main(parser.parse_args()))
