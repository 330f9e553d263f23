"""POST Calls benchmark: calls placed through the Twilio API, answered by a SIPp UAS behind a
``[[trunks]]`` entry, three status callbacks each, next to a same-run baseline (the read API).
Run as a script (not collected by pytest):

    .venv/bin/python tests/bench/originate_bench.py [--calls 3000] [--concurrency 20]
        [--pacing-cps 200,400] [--rounds 3]

Throughput (one daemon, ``[outbound] cps`` far above what is offered, SQLite, log level
warning; the SIPp UAS answers 180 then 200 and takes our BYE; the document is ``Twiml``
``<Response><Hangup/></Response>``; ``StatusCallbackEvent`` ringing, answered, completed to
tests/bench/bench_webhook.py). An aiohttp client with ``--concurrency`` connections runs, for
``--calls`` requests each case:

  1. baseline  GET Accounts/{AC}/Calls/{CA}.json (the read API, one stored call)
  2. create    POST Calls.json: 201 queued, then dialled, answered, hung up, three callbacks
  3-4.         the baseline and POST Calls again at 4 connections (latency at a light load)
  5-6. open loop POST Calls offered at each ``--offered`` rate (a request started every 1/rate
               s, whatever the answers): the create latency at that rate, and whether the
               daemon completes the calls as fast as they are offered

Columns: requests/s answered; p50 / p99 of the request latency (for POSTs: the create latency,
request to 201); calls/s completed (calls created divided by the time from the first POST to
the last ``completed`` record); daemon CPU ms per request (from /proc).

Pacing (a second daemon per rate, ``[outbound] cps`` = the rate, a raw SIP callee recording the
arrival time of every INVITE): ``--pacing-cps`` calls per second for 8 s of calls created at
once; the measured rate is (INVITEs - 1) / (last - first arrival); the error is against the
configured rate. Every case checks that every call completed and every callback arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(HERE))

from message_api_bench import Request, Result, measure, median_result, percentile  # noqa: E402
from sip_bench import BenchDaemon, Helper, cpu_seconds  # noqa: E402

from support.sip_callee import SipCallee  # noqa: E402
from support.sipp_uas import SippUas  # noqa: E402

UAS = REPO / "tests" / "sip" / "scenarios" / "uas_answer.xml"
FROM = "+15105555555"
TO = "+15551230000"
TWIML = "<Response><Hangup/></Response>"
EVENTS = "ringing answered completed"


def completed_count(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        found = conn.execute(
            "SELECT COUNT(*) FROM calls WHERE direction = 'outbound-api' AND status = 'completed'"
        ).fetchone()
        return int(found[0])


def wait_completed(db: Path, expected: int, timeout: float = 180.0) -> float:
    started = time.monotonic()
    while completed_count(db) < expected and time.monotonic() - started < timeout:
        time.sleep(0.05)
    return time.monotonic() - started


class Bench:
    def __init__(self, daemon: BenchDaemon, webhook: Helper) -> None:
        self.daemon = daemon
        self.webhook = webhook
        self.base = f"http://127.0.0.1:{daemon.api_port}/2010-04-01/Accounts/{daemon.account_sid}"
        self.authorization = aiohttp.encode_basic_auth(daemon.account_sid, daemon.auth_token)
        self.created = 0
        self.offered: list[float] = [250.0, 500.0]

    async def post(self, session: aiohttp.ClientSession, _index: int = 0) -> int:
        data = {"To": TO, "From": FROM, "Twiml": TWIML, "StatusCallbackEvent": EVENTS,
                "StatusCallback": f"http://127.0.0.1:{self.webhook.port}/status"}  # fmt: skip
        async with session.post(
            f"{self.base}/Calls.json", data=data, headers={"Authorization": self.authorization}
        ) as resp:
            await resp.read()
            return resp.status

    async def case(
        self, name: str, request: Request, total: int, creates: bool, conns: int
    ) -> Result:
        pid = self.daemon.proc.pid if self.daemon.proc else 0
        cpu = cpu_seconds(pid)
        before = self.created
        wall_start = time.monotonic()
        how = open_loop(-conns) if conns <= 0 else measure
        elapsed, latencies = await how(request, total, conns)
        rate = None
        if creates:
            self.created += total
            await asyncio.to_thread(wait_completed, self.daemon.db, before + total)
            rate = total / (time.monotonic() - wall_start)
        cpu_ms = (cpu_seconds(pid) - cpu) * 1000 / total
        return Result(name, total, total / elapsed, statistics.median(latencies),
                      percentile(latencies, 0.99), cpu_ms, rate)  # fmt: skip


async def measure_open(request: Request, total: int, rate: float) -> tuple[float, list[float]]:
    """(elapsed s, latencies ms) for ``total`` requests started at ``rate`` per second."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(index: int) -> None:
            started = time.perf_counter()
            status = await request(session, index)
            latencies.append((time.perf_counter() - started) * 1000)
            if status >= 300:
                raise RuntimeError(f"unexpected HTTP {status}")

        loop = asyncio.get_running_loop()
        begin = loop.time()
        tasks = []
        for index in range(total):
            delay = begin + index / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(index)))
        await asyncio.gather(*tasks)
        return loop.time() - begin, latencies


def open_loop(
    rate: int | float,
) -> Callable[[Request, int, int], Awaitable[tuple[float, list[float]]]]:
    async def run(request: Request, total: int, _connections: int) -> tuple[float, list[float]]:
        return await measure_open(request, total, rate)

    return run


async def warm_up(bench: Bench) -> str:
    async with aiohttp.ClientSession() as session:
        for _ in range(49):
            await bench.post(session)
        async with session.post(
            f"{bench.base}/Calls.json",
            data={"To": TO, "From": FROM, "Twiml": TWIML},
            headers={"Authorization": bench.authorization},
        ) as resp:
            sid = str((await resp.json())["sid"])
    bench.created += 50
    await asyncio.to_thread(wait_completed, bench.daemon.db, bench.created)
    return sid


def cases(bench: Bench, sid: str, many: int) -> list[tuple[str, Request, bool, int]]:
    async def read(session: aiohttp.ClientSession, _i: int) -> int:
        url = f"{bench.base}/Calls/{sid}.json"
        async with session.get(url, headers={"Authorization": bench.authorization}) as resp:
            await resp.read()
            return resp.status

    return [
        ("baseline: GET Calls/{CA}.json", read, False, many),
        ("POST Calls → completed (3 callbacks)", bench.post, True, many),
        ("baseline at 4 connections", read, False, 4),
        ("POST Calls at 4 connections", bench.post, True, 4),
        *(
            (f"POST Calls offered at {rate:g}/s (open loop)", bench.post, True, -int(rate))
            for rate in bench.offered
        ),
    ]


async def run(bench: Bench, total: int, rounds: int, many: int) -> list[list[Result]]:
    sid = await warm_up(bench)
    per_case: list[list[Result]] = []
    for round_no in range(rounds):
        for index, (name, request, creates, conns) in enumerate(cases(bench, sid, many)):
            result = await bench.case(name, request, total, creates, conns)
            if round_no == 0:
                per_case.append([])
            per_case[index].append(result)
    return per_case


def table(results: list[Result], connections: list[int]) -> str:
    base = results[0]
    lines = [
        "| case | connections | requests/s | p50 / p99 ms | calls/s completed "
        "| daemon CPU ms/request | CPU × baseline |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r, conns in zip(results, connections, strict=True):
        rate = f"{r.sent_per_second:,.0f}" if r.sent_per_second else "–"
        lines.append(
            f"| {r.name} | {conns or 'open'} | {r.per_second:,.0f} | "
            f"{r.p50:.1f} / {r.p99:.1f} | {rate} | "
            f"{r.cpu_ms:.3f} | {r.cpu_ms / base.cpu_ms:.1f}× |"
        )
    return "\n".join(lines)


def stats(webhook: Helper) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{webhook.port}/stats", timeout=5) as resp:
        return dict(json.loads(resp.read()))


def wait_callbacks(webhook: Helper, expected: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while (count := stats(webhook).get("status", 0)) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return count


def throughput(args: argparse.Namespace, workdir: Path) -> None:
    total_calls = 50 + (2 + len(args.offered.split(","))) * args.calls * args.rounds
    webhook = Helper("bench_webhook.py", workdir)
    trunk = SippUas(UAS, workdir, calls=total_calls, timeout=900, extra=("-max_socket", "5000"))
    with trunk:
        daemon = BenchDaemon(
            workdir / "daemon",
            RCMLROUTER_TRUNKS_LAB_URI=f"sip:127.0.0.1:{trunk.port}",
            RCMLROUTER_OUTBOUND_CPS="100000",
            RCMLROUTER_OUTBOUND_MAX_QUEUED="100000",
            RCMLROUTER_LOG_LEVEL="warning",
        )
        daemon.init()
        daemon.start()
        try:
            daemon.create_number(PhoneNumber=FROM)
            bench = Bench(daemon, webhook)
            bench.offered = [float(rate) for rate in args.offered.split(",")]
            per_case = asyncio.run(run(bench, args.calls, args.rounds, args.concurrency))
            callbacks = wait_callbacks(webhook, 3 * (total_calls - 1))
            code, logs = trunk.wait(30)
        finally:
            daemon.stop()
            webhook.stop()
    print(
        f"\nPOST Calls, {args.calls} requests a case, medians of {args.rounds} rounds "
        "(cases alternating)\n"
    )
    connections = [max(c[3], 0) for c in cases(bench, "", args.concurrency)]
    print(table([median_result(results) for results in per_case], connections))
    print(
        f"\ntrunk (SIPp UAS): exit {code} after {total_calls} calls"
        + ("" if code == 0 else f"\n{logs[-1500:]}")
        + f"; status callbacks received {callbacks} (expected {3 * (total_calls - 1)})"
    )


async def post_many(daemon: BenchDaemon, count: int, concurrency: int = 20) -> list[float]:
    base = f"http://127.0.0.1:{daemon.api_port}/2010-04-01/Accounts/{daemon.account_sid}"
    authorization = aiohttp.encode_basic_auth(daemon.account_sid, daemon.auth_token)
    data = {"To": TO, "From": FROM, "Twiml": TWIML}

    async def post(session: aiohttp.ClientSession, _i: int) -> int:
        async with session.post(
            f"{base}/Calls.json", data=data, headers={"Authorization": authorization}
        ) as resp:
            await resp.read()
            return resp.status

    _, latencies = await measure(post, count, concurrency)
    return latencies


def pacing(rate: float, seconds: float, workdir: Path) -> tuple[int, float, float]:
    """(INVITEs seen, measured calls/s, error %) for ``[outbound] cps`` = ``rate``."""
    count = int(rate * seconds)
    with SipCallee() as callee:
        daemon = BenchDaemon(
            workdir / f"pacing-{rate:g}",
            RCMLROUTER_TRUNKS_LAB_URI=f"sip:127.0.0.1:{callee.port}",
            RCMLROUTER_OUTBOUND_CPS=str(rate),
            RCMLROUTER_OUTBOUND_MAX_QUEUED="100000",
            RCMLROUTER_LOG_LEVEL="warning",
        )
        daemon.init()
        daemon.start()
        try:
            daemon.create_number(PhoneNumber=FROM)
            asyncio.run(post_many(daemon, count))
            wait_completed(daemon.db, count, timeout=seconds * 3 + 30)
        finally:
            daemon.stop()
        arrivals = sorted({i.call_id: i.at for i in callee.invites}.values())
    measured = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    return len(arrivals), measured, (measured - rate) / rate * 100


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=3000, help="requests per case")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--offered", default="250,500", help="open-loop calls/s, comma-separated")
    parser.add_argument("--pacing-cps", default="50,200,400")
    parser.add_argument("--pacing-seconds", type=float, default=8.0)
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="rcmlrouter-originate-"))
    if not args.skip_throughput:
        throughput(args, workdir)
    print(f"\nPacing: calls created at once, {args.pacing_seconds:g} s of calls each\n")
    print("| [outbound] cps | INVITEs | measured calls/s | error |")
    print("|---:|---:|---:|---:|")
    for rate in (float(r) for r in args.pacing_cps.split(",") if r):
        seen, measured, error = pacing(rate, args.pacing_seconds, workdir)
        print(f"| {rate:g} | {seen} | {measured:.2f} | {error:+.2f} % |")


if __name__ == "__main__":
    main()
