"""POST Messages benchmark: messages created through the Twilio API and sent to a SIPp gateway,
next to a same-run baseline (the read API). Run as a script (not collected by pytest):

    .venv/bin/python tests/bench/message_api_bench.py [--messages 4000] [--concurrency 20]

One real daemon (``rcmlrouter run``, SQLite, log level warning), its ``[sms] gateway`` a SIPp
UAS answering 202 (tests/messaging/scenarios/uas_message_202.xml), status callbacks to
tests/bench/bench_webhook.py. An aiohttp client with ``--concurrency`` connections runs, for
``--messages`` requests each case:

  1. baseline  GET Accounts/{AC}/Messages/{SM}.json (the read API, one stored message)
  2. create    POST Messages.json (To, From, Body): 201, then sent through the gateway
  3. + key     the same with a fresh Idempotency-Key per request
  4. + status  the same with a StatusCallback (two callbacks a message: sending, sent)
  5. replay    POST with an Idempotency-Key already used (the stored first answer)
  6-7.         the baseline and POST Messages again at 4 connections (latency at a light load)

Columns: requests/s answered; p50 / p99 of the request latency (for POSTs: the create latency,
request to 201); sent/s (messages created divided by the time from the first POST to the last
``sent`` record); daemon CPU ms per request (from /proc). The gateway's and the webhook's
counts are checked: every message reached the gateway, every callback arrived. Rounds run every
case in turn; the table shows the medians.
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
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(HERE))

from sip_bench import BenchDaemon, Helper, cpu_seconds  # noqa: E402

from support.sipp_uas import SippUas  # noqa: E402

UAS = REPO / "tests" / "messaging" / "scenarios" / "uas_message_202.xml"
BODY = "Hello from rcmlrouter"
FROM = "+15105555555"
Request = Callable[[aiohttp.ClientSession, int], Coroutine[Any, Any, int]]


@dataclass
class Result:
    name: str
    requests: int
    per_second: float
    p50: float
    p99: float
    cpu_ms: float
    sent_per_second: float | None = None


async def measure(request: Request, total: int, concurrency: int) -> tuple[float, list[float]]:
    """(elapsed s, latencies ms) for ``total`` requests from ``concurrency`` connections."""
    latencies: list[float] = []
    counter = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for index in counter:
                started = time.perf_counter()
                status = await request(session, index)
                latencies.append((time.perf_counter() - started) * 1000)
                if status >= 300:
                    raise RuntimeError(f"unexpected HTTP {status}")

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def sent_count(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM messages WHERE status = 'sent'").fetchone()[0]
        )


def wait_sent(db: Path, expected: int, timeout: float = 120.0) -> float:
    """Seconds until ``expected`` messages are sent (polling the SQLite file read-only)."""
    started = time.monotonic()
    while sent_count(db) < expected and time.monotonic() - started < timeout:
        time.sleep(0.05)
    return time.monotonic() - started


class Bench:
    def __init__(self, daemon: BenchDaemon, webhook: Helper, concurrency: int) -> None:
        self.daemon = daemon
        self.webhook = webhook
        self.concurrency = concurrency
        self.base = f"http://127.0.0.1:{daemon.api_port}/2010-04-01/Accounts/{daemon.account_sid}"
        self.authorization = aiohttp.encode_basic_auth(daemon.account_sid, daemon.auth_token)
        self.sent = 0  # messages created so far (each is sent)

    async def post(self, session: aiohttp.ClientSession, key: str | None, callback: bool) -> int:
        data = {"To": "+15551230000", "From": FROM, "Body": BODY}
        if callback:
            data["StatusCallback"] = f"http://127.0.0.1:{self.webhook.port}/status"
        headers = {"Idempotency-Key": key} if key else {}
        async with session.post(
            f"{self.base}/Messages.json",
            data=data,
            headers={**headers, "Authorization": self.authorization},
        ) as resp:
            await resp.read()
            return resp.status

    async def case(
        self, name: str, request: Request, total: int, creates: bool, connections: int
    ) -> Result:
        pid = self.daemon.proc.pid if self.daemon.proc else 0
        cpu = cpu_seconds(pid)
        before = self.sent
        wall_start = time.monotonic()
        elapsed, latencies = await measure(request, total, connections)
        sent_rate = None
        if creates:
            self.sent += total
            await asyncio.to_thread(wait_sent, self.daemon.db, before + total)
            sent_rate = total / (time.monotonic() - wall_start)
        cpu_ms = (cpu_seconds(pid) - cpu) * 1000 / total
        return Result(name, total, total / elapsed, statistics.median(latencies),
                      percentile(latencies, 0.99), cpu_ms, sent_rate)  # fmt: skip


async def warm_up(bench: Bench) -> str:
    """Fifty messages sent, and the one the read case reads (also the replayed key's)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(50):
            await bench.post(session, None, False)
        async with session.post(
            f"{bench.base}/Messages.json",
            data={"To": "+15551230000", "From": FROM, "Body": BODY},
            headers={"Idempotency-Key": "replayed", "Authorization": bench.authorization},
        ) as resp:
            sid = str((await resp.json())["sid"])
    bench.sent += 51
    await asyncio.to_thread(wait_sent, bench.daemon.db, bench.sent)
    return sid


def cases(bench: Bench, sid: str, round_no: int) -> list[tuple[str, Request, bool, int]]:
    """(name, request, creates messages, connections)."""

    async def read(session: aiohttp.ClientSession, _i: int) -> int:
        url = f"{bench.base}/Messages/{sid}.json"
        async with session.get(url, headers={"Authorization": bench.authorization}) as resp:
            await resp.read()
            return resp.status

    run_id = f"{time.time():.0f}-{round_no}"
    many, few = bench.concurrency, 4
    return [
        ("baseline: GET Messages/{SM}.json", read, False, many),
        ("POST Messages → sent", lambda s, i: bench.post(s, None, False), True, many),
        ("  + Idempotency-Key", lambda s, i: bench.post(s, f"{run_id}-{i}", False), True, many),
        ("  + StatusCallback (2 callbacks)", lambda s, i: bench.post(s, None, True), True, many),
        ("replay of a used Idempotency-Key", lambda s, i: bench.post(s, "replayed", False),
         False, many),
        (f"baseline at {few} connections", read, False, few),
        (f"POST Messages at {few} connections", lambda s, i: bench.post(s, None, False), True,
         few),
    ]  # fmt: skip


async def run(bench: Bench, total: int, rounds: int) -> list[list[Result]]:
    """Every case once a round, rounds alternating; the results per case."""
    sid = await warm_up(bench)
    per_case: list[list[Result]] = []
    for round_no in range(rounds):
        for index, (name, request, creates, connections) in enumerate(cases(bench, sid, round_no)):
            result = await bench.case(name, request, total, creates, connections)
            if round_no == 0:
                per_case.append([])
            per_case[index].append(result)
    return per_case


def median_result(results: list[Result]) -> Result:
    def mid(values: list[float]) -> float:
        return statistics.median(values)

    sent = [r.sent_per_second for r in results if r.sent_per_second]
    first = results[0]
    return Result(
        first.name,
        first.requests,
        mid([r.per_second for r in results]),
        mid([r.p50 for r in results]),
        mid([r.p99 for r in results]),
        mid([r.cpu_ms for r in results]),
        mid(sent) if sent else None,
    )


def table(results: list[Result], connections: list[int]) -> str:
    base = results[0]
    lines = [
        "| case | connections | requests/s | p50 / p99 ms | sent/s | daemon CPU ms/request "
        "| CPU × baseline |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r, conns in zip(results, connections, strict=True):
        sent = f"{r.sent_per_second:,.0f}" if r.sent_per_second else "–"
        lines.append(
            f"| {r.name} | {conns} | {r.per_second:,.0f} | {r.p50:.1f} / {r.p99:.1f} | {sent} | "
            f"{r.cpu_ms:.3f} | {r.cpu_ms / base.cpu_ms:.1f}× |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=4000, help="requests per case")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="medians of this many rounds")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="rcmlrouter-msgapi-"))
    total_sent = 51 + 4 * args.messages * args.rounds
    expected_callbacks = 2 * args.messages * args.rounds
    webhook = Helper("bench_webhook.py", workdir)
    uas = SippUas(UAS, workdir, calls=total_sent, timeout=900)
    with uas:
        daemon = BenchDaemon(
            workdir / "daemon",
            RCMLROUTER_SMS_GATEWAY=f"sip:127.0.0.1:{uas.port}",
            RCMLROUTER_LOG_LEVEL="warning",
        )
        daemon.init()
        daemon.start()
        try:
            daemon.create_number(PhoneNumber=FROM)
            bench = Bench(daemon, webhook, args.concurrency)
            per_case = asyncio.run(run(bench, args.messages, args.rounds))
            code, logs = uas.wait(30)
            statuses = webhook_count(webhook, expected_callbacks)
        finally:
            daemon.stop()
            webhook.stop()
    connections = [c[3] for c in cases(bench, "", 0)]
    print(
        f"\nPOST Messages, {args.messages} requests a case, medians of {args.rounds} rounds "
        f"(cases alternating)\n"
    )
    print(table([median_result(results) for results in per_case], connections))
    print(
        f"\ngateway (SIPp UAS): exit {code} after {total_sent} MESSAGEs"
        + ("" if code == 0 else f"\n{logs[-1500:]}")
        + f"; status callbacks received {statuses} (expected {expected_callbacks})"
    )


def webhook_count(webhook: Helper, expected: int, timeout: float = 30.0) -> int:
    """Status callbacks the webhook received, once ``expected`` arrived (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        url = f"http://127.0.0.1:{webhook.port}/stats"
        with urllib.request.urlopen(url, timeout=5) as resp:
            count = int(json.loads(resp.read()).get("status", 0))
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.1)


if __name__ == "__main__":
    main()
