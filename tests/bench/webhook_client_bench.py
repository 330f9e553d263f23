"""Webhook HTTP client: CPU per RCML fetch and per status callback, every candidate in one run.

    flock /work/coord/bench.lock .venv/bin/python tests/bench/webhook_client_bench.py \
        [--requests 4000] [--concurrency 50] [--rounds 5]

The candidates (a missing one is skipped): the daemon's hand-written keep-alive client, aiohttp
as configured before and aiohttp tuned for this job, and from the ``bench`` extra pyreqwest,
rnet, aiosonic and curl_cffi. niquests is measured when installed, but not by the extra: it
brings urllib3-future, which takes ``urllib3``'s place under requests (and so schemathesis);
install it in a separate virtualenv. One loopback server (httptools on
uvloop, canned answers) runs in its own process, so client and server do not share one CPU.

Every candidate does the same work per request: the webhook request is prepared by the daemon's
own code (form encoding and signature), sent, its status and content type checked, and its body
parsed as RCML (fetch) or discarded (callback). Rounds alternate the order of the candidates; the
table shows medians over the rounds of the client process's CPU time per request (all its
threads: the Rust clients run their own) and the request rate, with the ratio to the
hand-written client measured in the same run. A last row runs the daemon's own ``RcmlFetcher``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from collections.abc import Awaitable, Callable

import httptools
from bench_clients import CANDIDATES, Transport

from rcmlrouter.rcml.fetch import FetchTimeouts, RcmlFetcher
from rcmlrouter.rcml.parse import parse_rcml
from rcmlrouter.rcml.webhook_request import prepare_request

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
VOICE_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n"
    b"Date: Mon, 04 Nov 2013 12:14:11 GMT\r\nServer: bench\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
)
STATUS_ANSWER = (
    b"HTTP/1.1 204 No Content\r\nDate: Mon, 04 Nov 2013 12:14:11 GMT\r\nServer: bench\r\n\r\n"
)
TIMEOUTS = FetchTimeouts()


class _Served(asyncio.Protocol):
    """One server connection: parse requests with httptools, answer each from a canned reply."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.path = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.path = url

    def on_message_complete(self) -> None:
        assert self.transport is not None
        status = self.path.startswith(b"/status")
        self.transport.write(STATUS_ANSWER if status else VOICE_ANSWER)


def serve(port_queue: multiprocessing.Queue[int]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Served, "127.0.0.1", 0, backlog=1024)
        port_queue.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    import uvloop

    uvloop.run(main())


def fetch_with(transport: Transport, url: str) -> Callable[[], Awaitable[object]]:
    async def one() -> object:
        request = prepare_request(url, "POST", PARAMS, "token", TIMEOUTS, "rcmlrouter")
        status, content_type, body = await transport.send(
            request.method, str(request.url), request.headers, request.data, False
        )
        assert status == 200 and content_type == "text/xml", (status, content_type)
        return parse_rcml(body, url)

    return one


def callback_with(transport: Transport, url: str) -> Callable[[], Awaitable[object]]:
    async def one() -> object:
        request = prepare_request(url, "POST", PARAMS, "token", TIMEOUTS, "rcmlrouter")
        status, _, _ = await transport.send(
            request.method, str(request.url), request.headers, request.data, True
        )
        assert status == 204, status
        return status

    return one


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
    transports: dict[str, Transport] = {}
    skipped: list[str] = []
    for name, make in CANDIDATES.items():
        try:
            transports[name] = make(concurrency)
        except ImportError as exc:
            skipped.append(f"{name} ({exc.name} not installed)")
    variants: dict[tuple[str, str], Callable[[], Awaitable[object]]] = {}
    for name, transport in transports.items():
        variants[("fetch", name)] = fetch_with(transport, voice)
        variants[("callback", name)] = callback_with(transport, status)
    fetcher = RcmlFetcher(transports["hand-written keep-alive client"].client, TIMEOUTS)
    variants[("fetch", "RcmlFetcher (the daemon's path)")] = lambda: fetcher.fetch(
        voice, "POST", PARAMS, "token"
    )
    variants[("callback", "RcmlFetcher (the daemon's path)")] = lambda: fetcher.post_callback(
        status, "POST", PARAMS, "token"
    )
    for one in variants.values():
        await measure(300, concurrency, one)  # warm the pools up
    results: dict[tuple[str, str], list[tuple[float, float]]] = {key: [] for key in variants}
    for round_ in range(rounds):
        order = list(variants.items())
        if round_ % 2:
            order.reverse()
        for key, one in order:
            results[key].append(await measure(total, concurrency, one))
    for transport in transports.values():
        await transport.close()
    report(results, total, concurrency, rounds, skipped)


def report(
    results: dict[tuple[str, str], list[tuple[float, float]]],
    total: int,
    concurrency: int,
    rounds: int,
    skipped: list[str],
) -> None:
    print(f"{total} requests a round, {concurrency} concurrent, medians of {rounds} rounds")
    if skipped:
        print("skipped: " + ", ".join(skipped))
    print("\n| work | client | req/s | client CPU ms/request | CPU × hand-written |")
    print("|---|---|---:|---:|---:|")
    for kind in ("fetch", "callback"):
        base = statistics.median(
            cpu for _, cpu in results[(kind, "hand-written keep-alive client")]
        )
        rows = [(key[1], samples) for key, samples in results.items() if key[0] == kind]
        rows.sort(key=lambda row: statistics.median(cpu for _, cpu in row[1]))
        for name, samples in rows:
            rate = statistics.median(rate for rate, _ in samples)
            cpu = statistics.median(cpu for _, cpu in samples)
            low, high = min(c for _, c in samples), max(c for _, c in samples)
            print(
                f"| {kind} | {name} | {rate:,.0f} | {cpu:.3f} ({low:.3f}–{high:.3f}) "
                f"| {cpu / base:.2f}× |"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    port_queue: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(port_queue,), daemon=True)
    server.start()
    try:
        port = port_queue.get(timeout=10)
        import uvloop

        uvloop.run(run(port, args.requests, args.concurrency, args.rounds))
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
