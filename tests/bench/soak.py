"""Endurance run: the real daemon at a steady 80 % of its maximum rate, one row per minute.

Run: .venv/bin/python tests/bench/soak.py [--minutes N] [--rate R] [--max-age S] [--probe]
     (``SOAK_MINUTES`` sets the default duration, 10 minutes)

The daemon runs at the shipped defaults (log level ``info``, JSON lines to a pipe) except
``[records] max_age`` (``--max-age``, 60 s): short, so that retention applies within the run and
the database must stop growing once it does.

SIPp (tests/bench/scenarios/uac_reject.xml) calls exact SIP numbers whose webhook
(tests/bench/bench_webhook.py, its own process) answers ``<Reject/>`` and that have a
StatusCallback (RINGING and the final status: two callbacks per call). Without ``--rate`` a
short ramp finds the maximum rate with callbacks first (12 s steps; a step passes as in
sip_bench.py and when the callback outbox is empty again within 5 s); the soak runs at 80 % of
it.

Per minute: achieved calls/s, failed calls, p50/p99/max INVITE → final response (SIPp
``-trace_rtt``), daemon RSS and its anonymous part (SQLite's mmap reads count as file RSS),
the Python heap (``sys.getallocatedblocks``, which excludes SQLite's page cache: that one grows
with the database up to ``PRAGMA cache_size``, 64 MiB), asyncio tasks, open descriptors,
outbox depth, cycle-collector pause time (sum and longest bucket), SQLite WAL and database
size, daemon CPU. The verdict line: failed calls, slopes over the second half of the run (RSS,
anon RSS, Python blocks per call, database and WAL size; SQLite's page cache fills and
retention starts during the first minutes), p99 of the first and last minute. Failed calls are
classified from SIPp's error file (the unexpected response's status, or a timeout) next to the
daemon's own counts (calls by outcome, webhook failures, callback attempts, store retries).

``--probe`` starts the daemon through tests/bench/daemon_probe.py and asks it for a report
(table sizes, gc type growth; with ``--tracemalloc N`` top allocation diffs) every minute and
once more 45 s after the load, when every transaction has expired; the reports are printed at
the end. tracemalloc is slow: use a low rate with it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from sip_bench import (
    REPO,
    Bench,
    BenchDaemon,
    WebhookServer,
    cpu_seconds,
    injection_file,
    parse_stat,
    rss_mib,
    sipp_args,
)

from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import IncomingNumber
from rcmlrouter.store.sqlite import SqliteStore

HERE = Path(__file__).resolve().parent
SOAK_BASE = 5_552_000_000  # SIP numbers: <Reject/> + StatusCallback
DIALED = 1000
RAMP = [200, 400, 600, 800, 1000, 1200, 1400, 1600, 2000]
DRAIN_SECONDS = 5.0
PROBE_QUIET = 45.0  # > 64*T1 (32 s, Timers H/J/L) + T4 (5 s, Timer I)
ENV = {
    "RCMLROUTER_CALLBACKS_RETRY_INITIAL": "1.0",
    "RCMLROUTER_CALLBACKS_RETRY_MAX": "30",
    "RCMLROUTER_SIP_DRAIN_TIMEOUT": "5",
}


# ---- daemon and its observation -----------------------------------------------------------------


class SoakDaemon(BenchDaemon):
    def __init__(
        self, workdir: Path, probe: bool, tracemalloc: int, stalls: bool = False, **env: str
    ) -> None:
        super().__init__(workdir, **env)
        if probe or stalls:
            self.command = (str(HERE / "daemon_probe.py"),)
            self.env["RCMLROUTER_DEBUG_TRACEMALLOC"] = str(tracemalloc)
            self.env["RCMLROUTER_PROBE_OUT"] = str(workdir / "probe.txt")
        if stalls:
            self.env["RCMLROUTER_DEBUG_STALLS"] = "1"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def scrape(self) -> dict[str, float]:
        """Every sample of /metrics, keyed by ``name{labels}``."""
        url = f"http://127.0.0.1:{self.api_port}/metrics"
        with urllib.request.urlopen(url, timeout=120) as response:  # probe reports are slow
            text = response.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                values[key] = float(value)
        return values

    def probe_report(self, collect: bool = False) -> None:
        os.kill(self.pid, signal.SIGUSR1 if collect else signal.SIGUSR2)


def run_queue_seconds(pid: int) -> float:
    """Seconds the daemon's threads waited, runnable, for a CPU (``schedstat``): a machine
    shared with other work shows here."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as stat:
            total += int(stat.read().split()[1])
    return total / 1e9


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def status_kib(pid: int, field_name: str) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return float(line.split()[1])
    return 0.0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def file_mib(path: Path) -> float:
    try:
        return path.stat().st_size / 2**20
    except FileNotFoundError:
        return 0.0


def gc_totals(metrics: dict[str, float]) -> tuple[float, float]:
    """(pause seconds of all generations, gen-2 collections) since the daemon started."""
    pause = sum(metrics.get(f'rcmlrouter_gc_pause_seconds_sum{{generation="{g}"}}', 0.0)
                for g in range(3))  # fmt: skip
    full = metrics.get('rcmlrouter_gc_pause_seconds_count{generation="2"}', 0.0)
    return pause, full


def longest_bucket(before: dict[str, float], after: dict[str, float]) -> str:
    """The smallest bucket bound that holds every pause between two scrapes ("≤ 50 ms")."""
    worst = 0.0
    for key, value in after.items():
        if not key.startswith("rcmlrouter_gc_pause_seconds_bucket"):
            continue
        below = key.rsplit('le="', 1)[1].rstrip('"}')
        key_count = f"rcmlrouter_gc_pause_seconds_count{{{key.split('{', 1)[1].split(',')[0]}}}"
        total_new = after.get(key_count, 0.0) - before.get(key_count, 0.0)
        new_below = value - before.get(key, 0.0)
        if total_new > new_below and below != "+Inf":
            worst = max(worst, float(below))  # some new pause was longer than this bound
    return "-" if worst == 0.0 else f">{worst * 1000:g}"


# ---- provisioning -------------------------------------------------------------------------------


async def provision(daemon: SoakDaemon, webhook: WebhookServer, background: int) -> None:
    """``background`` provider numbers (never dialed) + the dialed SIP numbers, straight into
    the daemon's SQLite file before it starts."""
    store = await SqliteStore.open(daemon.db)
    try:
        account = await store.get_account(daemon.account_sid)
        now = time.time() - 3600

        def row(i: int, phone: str, sip: bool, callback: str | None) -> IncomingNumber:
            return IncomingNumber(
                sid=new_sid("PN"),
                account_sid=account.sid,
                organization_sid=account.organization_sid,
                phone_number=phone,
                friendly_name=phone,
                is_sip=sip,
                number_type="sip" if sip else "local",
                beta=False,
                voice_url=webhook.url("voice/reject"),
                status_callback=callback,
                date_created=now + i * 1e-6,
                date_updated=now + i * 1e-6,
            )

        rows = [row(i, f"+1{2_000_000_000 + i}", False, None) for i in range(background)]
        rows += [
            row(background + i, str(SOAK_BASE + i), True, webhook.url("status"))
            for i in range(DIALED)
        ]
        for start in range(0, len(rows), 50_000):
            await store.bulk_insert_numbers(rows[start : start + 50_000])
    finally:
        await store.close()


# ---- finding the rate ---------------------------------------------------------------------------


def drained(daemon: SoakDaemon, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if daemon.scrape().get("rcmlrouter_callbacks_pending", 0.0) == 0.0:
            return True
        time.sleep(0.25)
    return False


def find_rate(bench: Bench, daemon: SoakDaemon, csv: Path, watch: dict[str, int]) -> int:
    """The best passing offered rate of a ramp (with one bisection step after the first
    failure); a step also fails when the callback outbox does not drain."""

    def passes(rate: int) -> bool:
        step = bench.step("ramp", "uac_reject.xml", daemon.sip_port, csv, rate, watch)
        ok = step.passed and drained(daemon, DRAIN_SECONDS)
        if step.passed and not ok:
            print(f"    outbox not empty {DRAIN_SECONDS:.0f} s after the step  << FAIL")
        drained(daemon, 60)
        time.sleep(1.0)
        return ok

    best = 0
    for rate in RAMP:
        if not passes(rate):
            middle = (best + rate) // 2
            if best and middle - best >= 25 and passes(middle):
                best = middle
            break
        best = rate
    return best


# ---- the soak -----------------------------------------------------------------------------------


@dataclass
class Minute:
    index: int
    ok: int
    failed: int
    seconds: float
    rtts: list[float]
    rss: float
    anon: float
    blocks: float
    values: dict[str, str] = field(default_factory=dict)

    def percentile(self, q: float) -> float:
        if not self.rtts:
            return float("nan")
        ordered = sorted(self.rtts)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class RttReader:
    """Reads SIPp's ``*_rtt.csv`` as it grows; samples bucketed by minute of SIPp's clock."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.offset = 0
        self.partial = ""
        self.minutes: dict[int, list[float]] = {}

    def poll(self) -> None:
        files = list(self.workdir.glob("*_rtt.csv"))
        if not files:
            return
        with files[0].open() as handle:
            handle.seek(self.offset)
            chunk = handle.read()
            self.offset = handle.tell()
        lines = (self.partial + chunk).split("\n")
        self.partial = lines.pop()
        for line in lines:
            parts = line.split(";")
            if len(parts) >= 2 and parts[0][:1].isdigit():
                minute = int(float(parts[0]) // 60_000)
                self.minutes.setdefault(minute, []).append(float(parts[1]))


HEADER = (
    "| min | calls/s | failed | p50 ms | p99 ms | max ms | RSS MiB | anon MiB | Py blocks k "
    "| tasks | fds | outbox | GC ms | GC gen2 | GC longest ms | WAL MiB | DB MiB | CPU % "
    "| waited for CPU s |"
)


def soak(daemon: SoakDaemon, csv: Path, workdir: Path, rate: int, minutes: float,
         probe: bool) -> list[Minute]:  # fmt: skip
    stepdir = workdir / "soak"
    stepdir.mkdir(exist_ok=True)
    duration = minutes * 60
    calls = int(rate * duration)
    args = sipp_args("uac_reject.xml", daemon.sip_port, csv, stepdir, calls=calls, rate=rate,
                     limit=max(2000, rate * 4), timeout=duration + 40)  # fmt: skip
    if probe:
        daemon.probe_report()  # baseline
    rtt = RttReader(stepdir)
    out = (stepdir / "sipp.out").open("w")
    sipp = subprocess.Popen(args, cwd=stepdir, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)  # fmt: skip
    started = time.monotonic()
    print(HEADER + "\n|" + "---:|" * (HEADER.count("|") - 1), flush=True)
    rows: list[Minute] = []
    before = daemon.scrape()
    cpu_before = cpu_seconds(daemon.pid)
    waited_before = run_queue_seconds(daemon.pid)
    done_ok = done_failed = 0
    index = 0
    try:
        while index < int(minutes + 0.999):
            boundary = started + 60 * (index + 1) + 2.0  # + flush lag of SIPp's files
            while time.monotonic() < boundary and sipp.poll() is None:
                rtt.poll()
                time.sleep(0.5)
            rtt.poll()
            after = daemon.scrape()
            _, ok, failed = parse_stat(stepdir / "stat.csv")
            cpu_now = cpu_seconds(daemon.pid)
            pid = daemon.pid
            seconds = min(60.0, duration - 60 * index)  # the last minute may be partial
            row = Minute(
                index + 1, ok - done_ok, failed - done_failed, seconds, rtt.minutes.get(index, []),
                rss_mib(pid), status_kib(pid, "RssAnon") / 1024,
                after.get("rcmlrouter_python_allocated_blocks", 0.0),
            )  # fmt: skip
            done_ok, done_failed = ok, failed
            pause_before, full_before = gc_totals(before)
            pause_after, full_after = gc_totals(after)
            row.values = {
                "tasks": f"{after.get('rcmlrouter_asyncio_tasks', 0):.0f}",
                "fds": str(open_fds(pid)),
                "outbox": f"{after.get('rcmlrouter_callbacks_pending', 0):.0f}",
                "gc_ms": f"{1000 * (pause_after - pause_before):.0f}",
                "gen2": f"{full_after - full_before:.0f}",
                "gc_longest": longest_bucket(before, after),
                "wal": f"{file_mib(daemon.db.with_name(daemon.db.name + '-wal')):.1f}",
                "db": f"{file_mib(daemon.db):.1f}",
                "cpu": f"{100 * (cpu_now - cpu_before) / 60:.0f}",
                "waited": f"{run_queue_seconds(pid) - waited_before:.1f}",
            }
            waited_before = run_queue_seconds(pid)
            before, cpu_before = after, cpu_now
            rows.append(row)
            v = row.values
            print(
                f"| {row.index} | {row.ok / row.seconds:.0f} | {row.failed} "
                f"| {row.percentile(0.5):.0f} | {row.percentile(0.99):.0f} "
                f"| {max(row.rtts, default=float('nan')):.0f} | {row.rss:.0f} | {row.anon:.0f} "
                f"| {row.blocks / 1000:.0f} | {v['tasks']} | {v['fds']} | {v['outbox']} "
                f"| {v['gc_ms']} | {v['gen2']} | {v['gc_longest']} | {v['wal']} | {v['db']} "
                f"| {v['cpu']} | {v['waited']} |",
                flush=True,
            )
            if probe:
                daemon.probe_report()
            index += 1
            if sipp.poll() is not None:
                break
    finally:
        if sipp.poll() is None:
            sipp.terminate()
        try:
            sipp.wait(60)
        except subprocess.TimeoutExpired:
            sipp.kill()
            sipp.wait(10)
        out.close()
    return rows


FAILURE_KINDS = (  # (pattern in SIPp's error file, what it means)
    (re.compile(r"received 'SIP/2\.0 (\d{3})"), "response {0}"),
    (re.compile(r"receive timeout"), "no final response within -recv_timeout"),
    (re.compile(r"UDP retransmission timeout"), "INVITE unanswered after SIPp's retransmissions"),
    (re.compile(r"unexpected (BYE|CANCEL)"), "unexpected {0}"),
    (re.compile(r"Aborting"), "other abort"),
)


def classify_failures(errors: Path) -> collections.Counter[str]:
    """Why SIPp failed calls (its -trace_err file): one count per aborted call."""
    found: collections.Counter[str] = collections.Counter()
    if not errors.exists():
        return found
    for line in errors.read_text(errors="replace").splitlines():
        if "Aborting" not in line and "aborting" not in line:
            continue  # e.g. "Dead call … (successful), received …": a late retransmission
        for pattern, label in FAILURE_KINDS:
            match = pattern.search(line)
            if match:
                found[label.format(*match.groups())] += 1
                break
    return found


def failure_seconds(errors: Path) -> list[tuple[str, int]]:
    """Failed calls per wall-clock second (SIPp's error file): bursts follow a stall."""
    found: collections.Counter[str] = collections.Counter()
    if errors.exists():
        for match in re.finditer(r"\d{4}-\d\d-\d\d\t(\d\d:\d\d:\d\d)\.\d+\t[\d.]+: Abort",
                                 errors.read_text(errors="replace")):  # fmt: skip
            found[match.group(1)] += 1
    return sorted(found.items())


def daemon_counts(metrics: dict[str, float]) -> str:
    """The daemon's view of the run: calls by outcome, webhook failures, callback attempts."""
    parts = []
    for key, value in sorted(metrics.items()):
        name = key.split("{", 1)[0]
        if value and name in (
            "rcmlrouter_calls_total",
            "rcmlrouter_webhook_failures_total",
            "rcmlrouter_callbacks_failed_attempts_total",
            "rcmlrouter_callbacks_expired_total",
            "rcmlrouter_callbacks_sent_total",
            "rcmlrouter_records_pruned_total",
            "rcmlrouter_sip_rejected_overload_total",
        ):
            parts.append(f"{key.removeprefix('rcmlrouter_')} {value:.0f}")
    return "; ".join(parts)


def slope_per_minute(values: list[tuple[float, float]]) -> float:
    """Least-squares slope of (minute, value) pairs."""
    if len(values) < 2:
        return float("nan")
    n = len(values)
    mean_x = sum(x for x, _ in values) / n
    mean_y = sum(y for _, y in values) / n
    var = sum((x - mean_x) ** 2 for x, _ in values)
    return sum((x - mean_x) * (y - mean_y) for x, y in values) / var if var else float("nan")


def gc_summary(metrics: dict[str, float]) -> str:
    parts = []
    for generation in range(3):
        label = f'{{generation="{generation}"}}'
        count = metrics.get(f"rcmlrouter_gc_pause_seconds_count{label}", 0.0)
        total = metrics.get(f"rcmlrouter_gc_pause_seconds_sum{label}", 0.0)
        longest = metrics.get(f"rcmlrouter_gc_pause_max_seconds{label}", 0.0)
        freed = metrics.get(f"rcmlrouter_gc_collected_objects_total{label}", 0.0)
        parts.append(
            f"gen{generation} {count:.0f} collections, {1000 * total:.0f} ms, longest "
            f"{1000 * longest:.0f} ms, {freed:.0f} objects freed"
        )
    return "cycle collector since start: " + "; ".join(parts)


def verdict(rows: list[Minute], rate: int) -> str:
    # the second half: SQLite's page cache (64 MiB) fills during the first minutes, a one-off
    # rise the slope must not read as a leak (10-min soak: flat from minute 4)
    after_warmup = rows[len(rows) // 2 :] if len(rows) >= 4 else rows
    db = slope_per_minute([(r.index, float(r.values["db"])) for r in after_warmup])
    wal = slope_per_minute([(r.index, float(r.values["wal"])) for r in after_warmup])
    rss = slope_per_minute([(r.index, r.rss) for r in after_warmup])
    anon = slope_per_minute([(r.index, r.anon) for r in after_warmup])
    blocks = slope_per_minute([(r.index, r.blocks) for r in after_warmup])
    per_call = blocks / (rate * 60) if rate else float("nan")
    failed = sum(r.failed for r in rows)
    waited = sum(float(r.values["waited"]) for r in rows)
    seconds = sum(r.seconds for r in rows)
    first, last = rows[0].percentile(0.99), rows[-1].percentile(0.99)
    flat = abs(anon) < 1.0 and per_call < 0.05
    store_flat = abs(db) < 1.0 and abs(wal) < 1.0
    steady = last <= 2 * first + 10
    status = "PASS" if failed == 0 and flat and store_flat and steady else "FAIL"
    return (
        f"verdict {status}: {sum(r.ok for r in rows)} calls at {rate}/s over {len(rows)} min, "
        f"{failed} failed; over the second half RSS {rss:+.2f} MiB/min, "
        f"anon RSS {anon:+.2f} MiB/min, "
        f"Python heap {blocks / 1000:+.1f}k blocks/min ({per_call:+.3f} blocks/call), "
        f"database {db:+.2f} MiB/min, WAL {wal:+.2f} MiB/min; "
        f"p99 first minute {first:.0f} ms, last minute {last:.0f} ms; the daemon waited "
        f"{waited:.0f} s for a CPU while runnable ({100 * waited / seconds:.0f} % of the run: "
        "other work on the machine)"
    )


# ---- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=float(os.environ.get("SOAK_MINUTES", "10")),
        help="soak duration (default $SOAK_MINUTES or 10)",
    )
    parser.add_argument("--rate", type=int, help="calls/s (default: 80 %% of a measured maximum)")
    parser.add_argument("--ramp-seconds", type=float, default=12.0, help="length of a ramp step")
    parser.add_argument(
        "--numbers", type=int, default=100_000, help="provider numbers loaded (never dialed)"
    )
    parser.add_argument("--probe", action="store_true", help="probe reports every minute")
    parser.add_argument(
        "--tracemalloc", type=int, default=0, help="with --probe: tracemalloc frames (slow)"
    )
    parser.add_argument(
        "--max-age", type=float, default=60.0, help="[records] max_age in seconds (default 60)"
    )
    parser.add_argument("--log-level", default="info", help="daemon log level (default info)")
    parser.add_argument(
        "--stalls",
        action="store_true",
        help="log event-loop stalls, overload changes and long GC pauses (daemon_probe.py)",
    )
    parser.add_argument(
        "--code", help="run the daemon of this git revision (a temporary worktree; default: here)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    revision = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    print(f"work directory {workdir}; {os.cpu_count()} CPUs; SIPp {shutil.which('sipp')}; "
          f"code at {revision}; load average {load_average()}; "
          f"daemon log level {args.log_level}, records.max_age {args.max_age:g} s")  # fmt: skip
    webhook = WebhookServer(workdir)
    env = {
        **ENV,
        "RCMLROUTER_LOG_LEVEL": args.log_level,
        "RCMLROUTER_RECORDS_MAX_AGE": f"{args.max_age:g}",
    }
    tree = None
    if args.code:
        tree = workdir / "code"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree),
                        args.code], check=True, capture_output=True)  # fmt: skip
        env["PYTHONPATH"] = str(tree / "daemon")
        print(f"daemon code: {args.code} in {tree}")
    daemon = SoakDaemon(workdir / "daemon", args.probe, args.tracemalloc, args.stalls, **env)
    daemon.init()
    asyncio.run(provision(daemon, webhook, args.numbers))
    csv = injection_file(workdir / "dialed.csv", [str(SOAK_BASE + i) for i in range(DIALED)])
    daemon.start(timeout=300)
    watch = {"daemon": daemon.pid, "webhook": webhook.pid}
    print(
        f"daemon pid {daemon.pid} ready, {args.numbers:,} + {DIALED} numbers, "
        f"RSS {rss_mib(daemon.pid):.0f} MiB, database {file_mib(daemon.db):.1f} MiB",
        flush=True,
    )
    try:
        rate = args.rate
        if rate is None:
            print(f"\nramp ({args.ramp_seconds:.0f} s steps, exact → Reject + StatusCallback)")
            bench = Bench(args, workdir, args.ramp_seconds)
            maximum = find_rate(bench, daemon, csv, watch)
            if not maximum:
                raise SystemExit("the first ramp step failed: no rate to soak at")
            rate = max(1, int(0.8 * maximum))
            print(f"maximum {maximum}/s with callbacks; soaking at 80 %: {rate}/s")
        wal = daemon.db.with_name(daemon.db.name + "-wal")
        print(f"database {file_mib(daemon.db):.1f} MiB, WAL {file_mib(wal):.1f} MiB before the "
              f"soak (with {args.numbers:,} + {DIALED} numbers)")  # fmt: skip
        print(f"\n## soak: {rate} calls/s for {args.minutes:g} min (exact → Reject + callback)")
        rows = soak(daemon, csv, workdir, rate, args.minutes, args.probe)
        print(f"load average at the end {load_average()}")
        if rows:
            print(verdict(rows, rate))
            metrics = daemon.scrape()
            print(gc_summary(metrics))
            failures = classify_failures(workdir / "soak" / "errors.log")
            print("failed calls by SIPp's error file: " + (
                ", ".join(f"{label} {n}" for label, n in failures.most_common()) or "none"
            ))  # fmt: skip
            print("daemon counts: " + daemon_counts(metrics))
            bursts = failure_seconds(workdir / "soak" / "errors.log")
            if bursts:
                print("failed calls by second: " + ", ".join(f"{t} {n}" for t, n in bursts[:40]))
        stalls = workdir / "daemon" / "probe.txt.stalls"
        if args.stalls and stalls.exists():
            lines = stalls.read_text().splitlines()
            print(f"\n## stalls ({len(lines)} lines; the first 60)\n" + "\n".join(lines[:60]))
        errors = [line for line in daemon.raw if '"error"' in line or "Traceback" in line]
        if errors:
            print(f"daemon logged {len(errors)} error lines; first: {errors[0][:300]}")
        if args.probe:
            print(f"probe: last report {PROBE_QUIET:.0f} s after the load (transactions expired)")
            time.sleep(PROBE_QUIET)
            daemon.probe_report(collect=True)
            daemon.scrape()  # returns once the report is written
            time.sleep(1)
            print("\n## probe reports\n" + (daemon.workdir / "probe.txt").read_text())
    finally:
        proc = daemon.proc
        try:
            daemon.stop(timeout=60)
        except subprocess.TimeoutExpired:
            print("daemon did not stop within 60 s: killed")
            if proc is not None:
                proc.kill()
                proc.wait(10)
        webhook.stop()
        if tree is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                           check=False, capture_output=True)  # fmt: skip
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "daemon"))
    main()
