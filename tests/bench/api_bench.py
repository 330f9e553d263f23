"""Provisioning API benchmark: run as a script, prints a table (not collected by pytest).

    .venv/bin/python tests/bench/api_bench.py [--numbers 100000] [--requests 400]

100,000 numbers in one account (inserted straight through the store), the API served on
127.0.0.1 with aiohttp's AppRunner (uvloop when installed), 10 concurrent aiohttp clients. A
trivial aiohttp handler served the same way is the same-run baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import phonenumbers
from aiohttp import web

from rcmlrouter.api import create_api_app
from rcmlrouter.store.filters import NumberQuery
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import Account, IncomingNumber, InventoryEntry
from rcmlrouter.store.sqlite import SqliteStore

CONCURRENCY = 10
Request = Callable[[aiohttp.ClientSession, int], Coroutine[Any, Any, int]]


def bulk_numbers(account: Account, count: int) -> list[IncomingNumber]:
    now = time.time()
    return [
        IncomingNumber(
            sid=new_sid("PN"),
            account_sid=account.sid,
            organization_sid=account.organization_sid,
            phone_number=f"+1212{i:07d}",
            friendly_name=f"bulk {i}",
            is_sip=False,
            number_type="local",
            beta=False,
            date_created=now,
            date_updated=now,
        )
        for i in range(count)
    ]


def inventory(count: int) -> list[InventoryEntry]:
    entries: list[InventoryEntry] = []
    candidate = 4_152_000_000
    while len(entries) < count:
        candidate += 1
        phone = f"+1{candidate}"
        if phonenumbers.is_valid_number(phonenumbers.parse(phone)):
            entries.append(InventoryEntry(phone, "US", "local"))
    return entries


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def measure(
    request: Request, total: int, concurrency: int = CONCURRENCY
) -> tuple[float, float, float]:
    """(median ms, p95 ms, requests/s) for ``total`` requests from ``concurrency`` clients."""
    latencies: list[float] = []
    counter = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await request(session, -1)  # warm up

        async def client() -> None:
            for index in counter:
                started = time.perf_counter()
                status = await request(session, index)
                latencies.append((time.perf_counter() - started) * 1000)
                if status >= 300:
                    raise RuntimeError(f"unexpected HTTP {status}")

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.95) - 1], total / elapsed


async def serve_forever(count: int, requests: int, conn: Connection) -> None:
    """Server process: fill the store, serve the API and the baseline, report, wait."""
    workdir = Path(tempfile.mkdtemp(prefix="rcmlrouter-bench-"))
    store = await SqliteStore.open(workdir / "bench.db")
    admin, token = await store.ensure_default_setup()
    started = time.perf_counter()
    await store.bulk_insert_numbers(bulk_numbers(admin, count))
    load_s = time.perf_counter() - started
    await store.import_inventory(inventory(2 * requests + 1))
    started = time.perf_counter()
    routes = [row async for row in store.iter_route_rows()]
    routes_s = time.perf_counter() - started
    api_runner, api = await serve(create_api_app(store))
    baseline_app = web.Application()
    baseline_app.router.add_get("/ping", _pong)
    base_runner, baseline = await serve(baseline_app)
    sample = (await store.list_numbers(NumberQuery(account_sid=admin.sid), 10, 1)).items[0].sid
    conn.send(
        {
            "api": api,
            "baseline": baseline,
            "account": admin.sid,
            "token": token,
            "sample": sample,
            "load_s": load_s,
            "routes_s": routes_s,
            "routes": len(routes),
        }
    )
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    await api_runner.cleanup()
    await base_runner.cleanup()
    await store.close()


def server_process(count: int, requests: int, conn: Connection) -> None:
    _install_uvloop()
    asyncio.run(serve_forever(count, requests, conn))


async def run_cases(info: dict[str, Any], count: int, requests: int) -> None:
    auth = aiohttp.BasicAuth(info["account"], info["token"])
    numbers_url = (
        f"{info['api']}/restcomm/2012-04-24/Accounts/{info['account']}/IncomingPhoneNumbers.json"
    )
    last_page = (count - 1) // 50
    fresh = iter(e.phone_number for e in inventory(2 * requests + 1))

    async def get(session: aiohttp.ClientSession, url: str, **params: Any) -> int:
        async with session.get(url, params=params, auth=auth) as resp:
            await resp.read()
            return resp.status

    async def create(session: aiohttp.ClientSession, _: int) -> int:
        data = {"PhoneNumber": next(fresh), "VoiceUrl": "http://127.0.0.1:9/voice.xml"}
        async with session.post(numbers_url, data=data, auth=auth) as resp:
            await resp.read()
            return resp.status

    async def ping(session: aiohttp.ClientSession, _: int) -> int:
        async with session.get(f"{info['baseline']}/ping") as resp:
            await resp.read()
            return resp.status

    read_url = numbers_url.replace(".json", f"/{info['sample']}.json")
    cases: list[tuple[str, Request]] = [
        ("baseline: trivial aiohttp handler", ping),
        ("list page 0 (PageSize 50)", lambda s, _: get(s, numbers_url)),
        (f"list last page ({last_page})", lambda s, _: get(s, numbers_url, Page=last_page)),
        ("list PhoneNumber=21200*12*", lambda s, _: get(s, numbers_url, PhoneNumber="21200*12*")),
        ("read one number", lambda s, _: get(s, read_url)),
        ("create (POST PhoneNumber)", create),
    ]
    print(
        f"{count} numbers bulk-inserted in {info['load_s']:.2f} s; {info['routes']} route rows "
        f"streamed in {info['routes_s']:.2f} s"
    )
    print(
        f"server in its own process; {CONCURRENCY} concurrent clients, {requests} requests/case\n"
    )
    print(f"| {'case':<36} | 1 client median ms | median ms | p95 ms |  req/s |")
    print(f"|{'-' * 38}|--------------------|-----------|--------|--------|")
    for name, case in cases:
        alone, _, _ = await measure(case, max(requests // 4, 20), concurrency=1)
        median, p95, rate = await measure(case, requests)
        print(f"| {name:<36} | {alone:18.2f} | {median:9.2f} | {p95:6.2f} | {rate:6.0f} |")


async def _pong(_: web.Request) -> web.Response:
    return web.Response(text="pong")


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    uvloop.install()


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--numbers", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=server_process, args=(args.numbers, args.requests, child))
    server.start()
    try:
        info = parent.recv()
        _install_uvloop()
        asyncio.run(run_cases(info, args.numbers, args.requests))
    finally:
        parent.send("stop")
        server.join(timeout=30)


if __name__ == "__main__":
    run()
