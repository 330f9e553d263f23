"""Webhook client cost: aiohttp against the keep-alive client, per request, in the same run.

    .venv/bin/python tests/bench/webhook_client_bench.py [--requests 20000] [--concurrency 50]

A loopback aiohttp server runs in its own process (so client and server do not share one CPU).
The same :class:`RcmlFetcher` (sign + request + parse) runs once on aiohttp's
``ClientSession`` (the baseline; also the bare ``session.post``) and once on
:class:`~rcmlrouter.rcml.keepalive.KeepAliveClient`, for RCML fetches and for status callbacks.
Rounds alternate the variants; the table shows medians of the rounds: requests per second and
the client process's CPU time per request (the figure that matters: the daemon's loop pays it).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from rcmlrouter.rcml.fetch import FetchTimeouts, RcmlFetcher, create_webhook_session
from rcmlrouter.rcml.keepalive import KeepAliveClient

BODY = (
    b"<Response><Gather numDigits='1' action='/menu'><Say>Press 1</Say></Gather>"
    b"<Redirect>/next</Redirect></Response>"
)
PARAMS = {
    "CallSid": "CA" + "0" * 32,
    "AccountSid": "AC" + "1" * 32,
    "From": "+15105550001",
    "To": "+15105555555",
    "CallStatus": "ringing",
    "ApiVersion": "2012-04-24",
    "Direction": "inbound",
}


def serve(port_queue: multiprocessing.Queue[int]) -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        if request.path == "/status":
            return web.Response(status=204)
        return web.Response(body=BODY, content_type="text/xml")

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/voice", handler)
        app.router.add_route("*", "/status", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


async def measure(
    total: int, concurrency: int, one: Callable[[], Awaitable[object]]
) -> tuple[float, float]:
    """Requests per second and client CPU milliseconds per request."""
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, used = time.perf_counter() - started, time.process_time() - cpu
    return total / wall, 1000 * used / total


async def run(port: int, total: int, concurrency: int, rounds: int) -> None:
    voice = f"http://127.0.0.1:{port}/voice"
    status = f"http://127.0.0.1:{port}/status"
    session = create_webhook_session(pool_size=concurrency)
    lane = KeepAliveClient(limit=concurrency)
    on_aiohttp = RcmlFetcher(session, FetchTimeouts())
    on_lane = RcmlFetcher(session, FetchTimeouts(), lane=lane)

    async def bare() -> None:
        async with session.post(voice, data=PARAMS) as response:
            await response.read()

    variants: dict[str, Callable[[], Awaitable[object]]] = {
        "bare aiohttp session.post": bare,
        "fetch on aiohttp (baseline)": lambda: on_aiohttp.fetch(voice, "POST", PARAMS, "token"),
        "fetch on keep-alive client": lambda: on_lane.fetch(voice, "POST", PARAMS, "token"),
        "callback on aiohttp (baseline)": lambda: on_aiohttp.post_callback(
            status, "POST", PARAMS, "token"
        ),
        "callback on keep-alive client": lambda: on_lane.post_callback(
            status, "POST", PARAMS, "token"
        ),
    }
    for one in variants.values():
        await measure(500, concurrency, one)  # warm the pools up
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for round_ in range(rounds):
        order = list(variants.items())
        if round_ % 2:
            order.reverse()
        for name, one in order:
            results[name].append(await measure(total, concurrency, one))
    await session.close()
    await lane.close()
    print(f"{total} requests a round, {concurrency} concurrent, medians of {rounds} rounds\n")
    print("| client | req/s | client CPU ms/request | CPU × baseline |")
    print("|---|---:|---:|---:|")
    baseline = {"fetch": 0.0, "callback": 0.0}
    for name, samples in results.items():
        rate = statistics.median(rate for rate, _ in samples)
        cpu = statistics.median(cpu for _, cpu in samples)
        kind = name.split()[0]
        if "baseline" in name:
            baseline[kind] = cpu
        ratio = f"{cpu / baseline[kind]:.2f}×" if baseline.get(kind) else ""
        print(f"| {name} | {rate:,.0f} | {cpu:.3f} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port_queue: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(port_queue,), daemon=True)
    server.start()
    try:
        port = port_queue.get(timeout=10)
        coroutine = run(port, args.requests, args.concurrency, args.rounds)
        try:
            import uvloop

            uvloop.run(coroutine)
        except ImportError:
            asyncio.run(coroutine)
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
