"""Console benchmark: run as a script, prints a table (not collected by pytest).

    .venv/bin/python tests/bench/console_bench.py [--numbers 100000] [--calls 1000000]

One account with 100,000 numbers and 1,000,000 call records (plus 100,000 messages and 50 calls
in progress), SQLite, the API with the console mounted served in its own process (uvloop when
installed). One signed-in client loads each page in turn; the same-run baselines are the API's
own list requests for the same data (numbers page 0; Calls page 0, which also counts).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from api_bench import _install_uvloop, bulk_numbers, serve
from prometheus_client import generate_latest

from rcmlrouter import metrics
from rcmlrouter.api import create_api_app
from rcmlrouter.callback_attempts import CallbackAttempts
from rcmlrouter.console import ConsoleSources, mount_console
from rcmlrouter.directory import Directory
from rcmlrouter.routing.table import RouteEntry, RoutingSnapshot
from rcmlrouter.store.filters import CallQuery, NumberQuery
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import Account, CallRecord, MessageRecord
from rcmlrouter.store.sqlite import SqliteStore

CHUNK = 20_000
START = 1_700_000_000.0  # 2023-11-14 22:13 UTC
SPACING = 2.5  # seconds between calls: 1,000,000 calls span about 29 days


def calls(account: Account, first: int, count: int, live: bool = False) -> list[CallRecord]:
    rng = random.Random(first)
    out = []
    for i in range(first, first + count):
        start = START + i * SPACING
        out.append(
            CallRecord(
                new_sid("CA"),
                account.sid,
                None,
                f"+1415{rng.randrange(10**7):07d}",
                f"+1212{rng.randrange(100_000):07d}",
                "inbound",
                "in-progress" if live else "completed",
                "exact",
                start,
                start + 1,
                None if live else start + 30,
                None if live else 29.0,
                None if live else 200,
                ["http://127.0.0.1:9/voice.xml"],
            )
        )
    return out


async def fill(
    store: SqliteStore, admin: Account, numbers: int, total_calls: int
) -> dict[str, float]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    await store.bulk_insert_numbers(bulk_numbers(admin, numbers))
    timings["numbers_s"] = time.perf_counter() - started
    started = time.perf_counter()
    for first in range(0, total_calls, CHUNK):
        await store.record_calls(calls(admin, first, min(CHUNK, total_calls - first)))
    await store.record_calls(calls(admin, total_calls, 50, live=True))
    timings["calls_s"] = time.perf_counter() - started
    messages = [
        MessageRecord(new_sid("SM"), admin.sid, None, "+14155550100", f"+1212{i % 100_000:07d}",
                      "hello", "inbound", "received", START + i * 25.0)
        for i in range(100_000)
    ]  # fmt: skip
    for first in range(0, len(messages), CHUNK):
        await store.record_messages(messages[first : first + CHUNK])
    return timings


def migration_seconds(path: Path) -> float:
    """Re-apply migration 0016 (drop and rebuild the widened indexes) on the full database."""
    script = (
        resources.files("rcmlrouter.store")
        .joinpath("migrations")
        .joinpath("0016_console_indexes.sql")
        .read_text()
    )
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    statements = [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX notifications_call")
        started = time.perf_counter()
        for statement in statements:
            db.execute(statement)
        return time.perf_counter() - started


async def serve_forever(numbers: int, total_calls: int, conn: Connection) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="rcmlrouter-console-bench-"))
    store = await SqliteStore.open(workdir / "bench.db")
    admin, token = await store.ensure_default_setup()
    timings = await fill(store, admin, numbers, total_calls)
    await store.close()
    timings["migration_s"] = migration_seconds(workdir / "bench.db")
    store = await SqliteStore.open(workdir / "bench.db")
    snapshot = RoutingSnapshot()
    snapshot.load([RouteEntry(*row) async for row in store.iter_route_rows()])
    directory = Directory(store)
    await directory.refresh_organizations()
    app = create_api_app(store)
    mount_console(
        app,
        ConsoleSources(
            snapshot, directory, CallbackAttempts(),
            lambda: {"status": "ok", "version": "bench", "calls": 50, "node_id": None},
            lambda: generate_latest(metrics.REGISTRY),
        ),
    )  # fmt: skip
    runner, url = await serve(app)
    middle = CallQuery(admin.sid, started_before=START + SPACING * total_calls / 2)
    sample_call = (await store.recent_calls(middle, None, 1))[0]
    number = (await store.list_numbers(NumberQuery(account_sid=admin.sid), numbers // 2, 1)).items[
        0
    ]
    info = {"url": url, "account": admin.sid, "token": token, "numbers": numbers}
    conn.send(
        {**info, "call": sample_call.sid, "to": sample_call.to, "number": number.sid, **timings}
    )
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    await runner.cleanup()
    await store.close()


def server_process(numbers: int, total_calls: int, conn: Connection) -> None:
    _install_uvloop()
    asyncio.run(serve_forever(numbers, total_calls, conn))


async def sign_in(session: aiohttp.ClientSession, info: dict[str, Any]) -> None:
    async with session.get(f"{info['url']}/console/signin") as page:
        text = await page.text()
    token = text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    form = {"csrf_token": token, "user": info["account"], "secret": info["token"]}
    async with session.post(f"{info['url']}/console/signin", data=form) as done:
        assert done.status == 200, done.status  # followed to the numbers page


async def timed(fetch: Callable[[], Awaitable[int]], rounds: int) -> tuple[float, float]:
    """(median ms, p95 ms) of ``rounds`` sequential loads, after one warm-up."""
    await fetch()
    latencies = []
    for _ in range(rounds):
        started = time.perf_counter()
        status = await fetch()
        latencies.append((time.perf_counter() - started) * 1000)
        if status >= 300:
            raise RuntimeError(f"unexpected HTTP {status}")
    latencies.sort()
    return statistics.median(latencies), latencies[max(0, int(len(latencies) * 0.95) - 1)]


async def run_cases(info: dict[str, Any], rounds: int) -> None:
    base, account = info["url"], info["account"]
    last = str((info["numbers"] - 1) // 50)
    auth = {"Authorization": aiohttp.encode_basic_auth(account, info["token"])}
    api = f"{base}/restcomm/2012-04-24/Accounts/{account}"
    day = time.strftime("%Y-%m-%d", time.gmtime(START + 10 * 86400))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await sign_in(session, info)

        def get(url: str, **kw: Any) -> Callable[[], Awaitable[int]]:
            async def fetch() -> int:
                async with session.get(url, **kw) as response:
                    await response.read()
                    return response.status

            return fetch

        def page(path: str, **params: str) -> Callable[[], Awaitable[int]]:
            return get(f"{base}/console/{path}", params=params)

        cases = [
            (
                "API: numbers page 0 (baseline)",
                get(f"{api}/IncomingPhoneNumbers.json", headers=auth),
            ),
            ("API: Calls page 0 (counts them all)", get(f"{api}/Calls.json", headers=auth)),
            ("console: numbers page 0", page("numbers")),
            ("console: numbers, last page", page("numbers", Page=last)),
            ("console: numbers PhoneNumber=21200*12*", page("numbers", PhoneNumber="21200*12*")),
            ("console: a number", page(f"numbers/{info['number']}")),
            ("console: which number answers", page("explain", dialed="2120012345")),
            ("console: live calls (50)", page("live")),
            ("console: call log", page("calls")),
            ("console: call log To=<one number>", page("calls", To=info["to"])),
            ("console: call log To=<no call>", page("calls", To="+19999999999")),
            ("console: call log StartTime=<a day>", page("calls", StartTime=day)),
            ("console: a call", page(f"calls/{info['call']}")),
            ("console: messages", page("messages")),
            ("console: messages To=<one number>", page("messages", To="+12120000042")),
            ("console: health", page("health")),
            ("console: accounts", page("accounts")),
        ]
        results = [(name, *await timed(fetch, rounds)) for name, fetch in cases]
    baseline = results[0][1]
    print(f"| {'page':<42} | median ms | p95 ms | x baseline |")
    print(f"|{'-' * 44}|----------:|-------:|-----------:|")
    for name, median, p95 in results:
        print(f"| {name:<42} | {median:9.1f} | {p95:6.1f} | {median / baseline:9.1f}x |")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--numbers", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=server_process, args=(args.numbers, args.calls, theirs))
    server.start()
    while not ours.poll(1.0):
        if not server.is_alive():
            raise SystemExit(f"the server process died (exit code {server.exitcode})")
    info = ours.recv()
    print(
        f"{args.numbers:,} numbers in {info['numbers_s']:.1f} s; {args.calls:,} calls + 50 live in "
        f"{info['calls_s']:.1f} s; migration 0016 re-applied on them in {info['migration_s']:.1f} s"
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"server in its own process; one signed-in client, {args.rounds} loads per page; "
          f"load average {load}\n")  # fmt: skip
    try:
        asyncio.run(run_cases(info, args.rounds))
    finally:
        ours.send("stop")
        server.join(60)


if __name__ == "__main__":
    run()
