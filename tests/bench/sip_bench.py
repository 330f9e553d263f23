"""End-to-end SIP benchmark: SIPp → rcmlrouter → webhook, next to a same-run baseline.

Run: .venv/bin/python tests/bench/sip_bench.py [--quick] [--no-profile] [--no-warning]

Scenarios (same run, same machine, everything on 127.0.0.1):
  1. baseline   SIPp against tests/bench/trivial_responder.py (uvloop, 100 + 486): the floor.
  2. reject     INVITE → exact SIP number → webhook ``<Reject/>`` → 603.
  3. regex      INVITE → regex SIP number (10,000 patterns, 1,000,000 exact numbers loaded)
                → ``<Hangup/>``: 200, ACK, daemon BYE.
  4. regex+cb   as 3 with a StatusCallback (RINGING, IN_PROGRESS, COMPLETED per call).
  5. held       10,000 concurrent calls held by ``<Pause length="60"/>``; daemon RSS.

Rate scenarios step the offered rate (SIPp ``-r``, ``-m rate*secs``) and stop at the first step
that fails: >= 0.1 % failed calls, or achieved calls/s < 90 % of offered. Latency is SIPp's
INVITE → final response time (``-trace_rtt``; SIPp's clock has ~1-4 ms granularity). CPU % comes
from /proc/PID/stat (100 % = one core), RSS from /proc/PID/status. The machine has few cores
and SIPp uses one of them: read the ratios to the baseline, not the absolute numbers.

The daemon runs at the shipped defaults (log level ``info``: one JSON ``call.completed`` line a
call, to a pipe). Scenarios 2 and 4 are then repeated at their best rate with log level
``warning`` (rows 2w, 4w: what the per-call line costs).

``--quick``: a few seconds per step, 10k exact + 1k regex numbers, 1k held calls.
The webhook server is tests/bench/bench_webhook.py in its own process. When py-spy is installed
the daemon is profiled (``py-spy record --format raw``) under scenarios 2 and 4.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "daemon"))

from rcmlrouter.store.ids import new_sid  # noqa: E402
from rcmlrouter.store.records import IncomingNumber  # noqa: E402
from rcmlrouter.store.sqlite import SqliteStore  # noqa: E402
from support.daemon import DaemonProcess  # noqa: E402
from support.ports import free_port  # noqa: E402

SCENARIOS = HERE / "scenarios"
CLK_TCK = os.sysconf("SC_CLK_TCK")
FAIL_RATIO = 0.001  # a step passes with < 0.1 % failed calls
SUSTAIN_RATIO = 0.90  # ... and achieved calls/s >= 90 % of offered

# Dialed-number families (see build_numbers)
EXACT_SIP_BASE = 5_550_000_000  # <Reject/> numbers, dialed as plain digits
HOLD_SIP_BASE = 5_551_000_000  # <Pause/> numbers
REGEX_HANGUP = (12, 7)  # ^9012[0-9]{7}$ → <Hangup/>
REGEX_CALLBACK = (13, 7)  # ^9013[0-9]{7}$ → <Hangup/> + StatusCallback


# ---- /proc sampling ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class CpuMeter:
    """CPU % (100 = one core) of several processes over one interval."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = time.monotonic()
        self.before = {name: cpu_seconds(pid) for name, pid in pids.items()}

    def percent(self) -> dict[str, float]:
        wall = time.monotonic() - self.start
        return {
            name: 100 * (cpu_seconds(pid) - self.before[name]) / wall
            for name, pid in self.pids.items()
        }

    def seconds(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) - self.before[name] for name, pid in self.pids.items()}


# ---- helper processes -------------------------------------------------------------------------


class Helper:
    """A benchmark helper process (trivial responder or webhook server) on a free port."""

    def __init__(self, script: str, workdir: Path) -> None:
        self.port = free_port()
        self.log = (workdir / f"{script}.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / script), "--port", str(self.port)]
            + (["--uvloop"] if script == "trivial_responder.py" else []),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        time.sleep(0.8)
        if self.proc.poll() is not None:
            raise RuntimeError(f"{script} exited: {(workdir / f'{script}.log').read_text()}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


class WebhookServer(Helper):
    def __init__(self, workdir: Path) -> None:
        super().__init__("bench_webhook.py", workdir)
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(50):
            try:
                self.stats()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("webhook server did not start")

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.base}/stats", timeout=5) as response:
            return dict(json.loads(response.read()))

    def reset(self) -> None:
        urllib.request.urlopen(
            urllib.request.Request(f"{self.base}/reset", method="POST"), timeout=5
        )


class BenchDaemon(DaemonProcess):
    """DaemonProcess that stops parsing its log after ``ready``: at info level the bench
    process would otherwise burn a core on json.loads next to the daemon."""

    line_count = 0
    command: tuple[str, ...] = ("-m", "rcmlrouter", "run")  # after the interpreter

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        ready = False
        for line in proc.stdout:
            self.line_count += 1
            if not ready:
                self.raw.append(line.rstrip())
                try:
                    self.lines.append(json.loads(line))
                except ValueError:
                    continue
                ready = self.lines[-1].get("event") == "ready"
            elif '"error"' in line or '"critical"' in line or "Traceback" in line:
                self.raw.append(line.rstrip()[:2000])

    def start(self, timeout: float = 20.0) -> BenchDaemon:
        """Start and wait for the API to answer: at log level warning the daemon does not
        print its ``ready`` line (it is logged at info)."""
        self.proc = subprocess.Popen(
            [sys.executable, *self.command],
            env=self.env,
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                self.metric("rcmlrouter_calls_active")
                return self
            except OSError:
                time.sleep(0.2)
        self.kill()
        raise RuntimeError("daemon did not become ready:\n" + "\n".join(self.raw[-40:]))

    def metric(self, name: str) -> float | None:
        url = f"http://127.0.0.1:{self.api_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " ") or line.startswith(name + "{"):
                    return float(line.rsplit(" ", 1)[1])
        return None


# ---- provisioning -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    exact: int
    regex: int


def regex_patterns(count: int) -> Iterator[tuple[int, int, str]]:
    """``count`` distinct valid patterns ``^9PPP[0-9]{k}$`` (PPP 000.., k 4..13)."""
    for index in range(count):
        prefix, k = divmod(index, 10)
        yield prefix, k + 4, f"^9{prefix:03d}[0-9]{{{k + 4}}}$"


def number_rows(
    load: Load, account: str, org: str, webhook: WebhookServer, held: int
) -> Iterator[IncomingNumber]:
    now = time.time() - 3600
    seq = iter(range(10**9))

    def row(phone: str, *, sip: bool, url: str | None, cb: str | None = None) -> IncomingNumber:
        i = next(seq)
        return IncomingNumber(
            sid=new_sid("PN"),
            account_sid=account,
            organization_sid=org,
            phone_number=phone,
            friendly_name=phone[:64],
            is_sip=sip,
            number_type="sip" if sip else "local",
            beta=False,
            voice_url=url,
            status_callback=cb,
            date_created=now + i * 1e-6,
            date_updated=now + i * 1e-6,
        )

    for i in range(load.exact):  # provider numbers (+1 200 000 0000 ...), never dialed
        yield row(f"+1{2_000_000_000 + i}", sip=False, url=webhook.url("voice/reject"))
    for i in range(1000):
        yield row(str(EXACT_SIP_BASE + i), sip=True, url=webhook.url("voice/reject"))
    for i in range(max(held, 1000)):
        yield row(str(HOLD_SIP_BASE + i), sip=True, url=webhook.url("voice/pause"))
    for prefix, k, pattern in regex_patterns(load.regex):
        cb = webhook.url("status") if (prefix, k) == REGEX_CALLBACK else None
        yield row(pattern, sip=True, url=webhook.url("voice/hangup"), cb=cb)


async def provision(daemon: DaemonProcess, load: Load, webhook: WebhookServer, held: int) -> float:
    """Write the numbers straight into the daemon's SQLite file (before start); seconds taken."""
    started = time.monotonic()
    store = await SqliteStore.open(daemon.db)
    try:
        account = await store.get_account(daemon.account_sid)
        chunk: list[IncomingNumber] = []
        for number in number_rows(load, account.sid, account.organization_sid, webhook, held):
            chunk.append(number)
            if len(chunk) >= 50_000:
                await store.bulk_insert_numbers(chunk)
                chunk = []
        if chunk:
            await store.bulk_insert_numbers(chunk)
    finally:
        await store.close()
    return time.monotonic() - started


def injection_file(path: Path, numbers: Sequence[str]) -> Path:
    path.write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in numbers))
    return path


def dialed_sets(workdir: Path, rng: random.Random, held: int) -> dict[str, Path]:
    def regex_numbers(prefix: int, k: int) -> list[str]:
        return [f"9{prefix:03d}{rng.randrange(10**k):0{k}d}" for _ in range(10_000)]

    return {
        "exact": injection_file(
            workdir / "exact.csv", [str(EXACT_SIP_BASE + i) for i in range(1000)]
        ),
        "regex": injection_file(workdir / "regex.csv", regex_numbers(*REGEX_HANGUP)),
        "regex_cb": injection_file(workdir / "regex_cb.csv", regex_numbers(*REGEX_CALLBACK)),
        "held": injection_file(
            workdir / "held.csv", [str(HOLD_SIP_BASE + i) for i in range(max(held, 1000))]
        ),
    }


# ---- SIPp ---------------------------------------------------------------------------------------


@dataclass
class SippRun:
    returncode: int
    calls: int
    ok: int
    failed: int
    elapsed: float
    rtts: list[float]
    cpu: dict[str, float]
    cpu_seconds: dict[str, float]
    sipp_cpu: float
    tail: str

    @property
    def failed_ratio(self) -> float:
        return self.failed / self.calls if self.calls else 1.0

    def percentile(self, q: float) -> float:
        if not self.rtts:
            return float("nan")
        ordered = sorted(self.rtts)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def sipp_args(
    scenario: str,
    port: int,
    csv: Path,
    workdir: Path,
    *,
    calls: int,
    rate: float,
    limit: int,
    timeout: float,
    extra: Sequence[str] = (),
) -> list[str]:
    return [
        shutil.which("sipp") or "/usr/bin/sipp",
        f"127.0.0.1:{port}",
        "-sf", str(SCENARIOS / scenario),
        "-inf", str(csv),
        "-m", str(calls),
        "-r", str(rate),
        "-l", str(limit),
        "-i", "127.0.0.1",
        "-p", str(free_port()),
        "-mp", str(free_port()),
        "-t", "u1",
        "-nostdin",
        "-timer_resol", "1",
        "-recv_timeout", "10000",
        "-timeout", f"{int(timeout)}s",
        "-timeout_error",
        "-trace_stat", "-stf", str(workdir / "stat.csv"), "-fd", "1",
        "-trace_rtt", "-rtt_freq", "200",
        "-trace_err", "-error_file", str(workdir / "errors.log"),
        "-buff_size", str(4 * 1024 * 1024),
        *extra,
    ]  # fmt: skip


def run_sipp(args: list[str], workdir: Path, watch: dict[str, int], timeout: float) -> SippRun:
    for stale in workdir.glob("*_rtt.csv"):
        stale.unlink()
    for name in ("stat.csv", "errors.log"):
        (workdir / name).unlink(missing_ok=True)
    meter = CpuMeter(watch)
    started = time.monotonic()
    with (workdir / "sipp.out").open("w") as out:
        proc = subprocess.Popen(
            args, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    deadline = started + timeout + 30
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - started
    cpu, secs = meter.percent(), meter.seconds()
    calls, ok, failed = parse_stat(workdir / "stat.csv")
    rtts = parse_rtt(workdir)
    tail = (workdir / "errors.log").read_text(errors="replace")[-1500:] if failed else ""
    return SippRun(
        proc.returncode, calls, ok, failed, elapsed, rtts, cpu, secs,
        100 * (usage.ru_utime + usage.ru_stime) / elapsed, tail,
    )  # fmt: skip


def parse_stat(path: Path) -> tuple[int, int, int]:
    """(created, successful, failed) from the last line of SIPp's -trace_stat CSV."""
    if not path.exists():
        return 0, 0, 0
    lines = path.read_text().splitlines()
    header = lines[0].split(";")
    last = lines[-1].split(";")
    value = dict(zip(header, last, strict=False))
    return (
        int(value["OutgoingCall(C)"]),
        int(value["SuccessfulCall(C)"]),
        int(value["FailedCall(C)"]),
    )


def parse_rtt(workdir: Path) -> list[float]:
    rtts: list[float] = []
    for path in workdir.glob("*_rtt.csv"):
        for line in path.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 2:
                rtts.append(float(parts[1]))
    return rtts


# ---- scenarios ----------------------------------------------------------------------------------


@dataclass
class Step:
    rate: int
    run: SippRun
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def achieved(self) -> float:
        return self.run.ok / self.run.elapsed if self.run.elapsed else 0.0

    @property
    def passed(self) -> bool:
        return (
            self.run.calls > 0
            and self.run.failed_ratio < FAIL_RATIO
            and self.achieved >= SUSTAIN_RATIO * self.rate
        )


@dataclass
class Bench:
    args: argparse.Namespace
    workdir: Path
    secs: float
    rows: list[tuple[str, Step | None, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def step(
        self,
        name: str,
        scenario: str,
        port: int,
        csv: Path,
        rate: int,
        watch: dict[str, int],
        calls: int | None = None,
    ) -> Step:
        calls = calls or int(rate * self.secs)
        stepdir = self.workdir / f"{name}-{rate}"
        stepdir.mkdir(exist_ok=True)
        timeout = calls / rate + 40
        args = sipp_args(scenario, port, csv, stepdir, calls=calls, rate=rate,
                         limit=max(2000, rate * 4), timeout=timeout)  # fmt: skip
        run = run_sipp(args, stepdir, watch, timeout)
        step = Step(rate, run)
        print(
            f"  {name:<9} offered {rate:>5}/s: {run.ok}/{run.calls} ok, failed "
            f"{100 * run.failed_ratio:.3f} %, achieved {step.achieved:7.1f}/s, "
            f"p50 {run.percentile(0.5):.0f} ms p99 {run.percentile(0.99):.0f} ms, "
            + ", ".join(f"{k} {v:.0f} %" for k, v in run.cpu.items())
            + f", sipp {run.sipp_cpu:.0f} %"
            + (f", daemon RSS {rss_mib(watch['daemon']):.0f} MiB" if "daemon" in watch else "")
            + ("" if step.passed else "  << FAIL"),
            flush=True,
        )
        if run.tail:
            print("    " + run.tail.strip().replace("\n", "\n    ")[-800:], flush=True)
        return step

    def ramp(
        self,
        name: str,
        scenario: str,
        port: int,
        csv: Path,
        rates: Sequence[int],
        watch: dict[str, int],
        after: object = None,
    ) -> Step | None:
        """Step through ``rates``; the best passing step (None if the first fails)."""
        best = None
        for rate in rates:
            step = self.step(name, scenario, port, csv, rate, watch)
            if callable(after):
                after(step)
            if not step.passed:
                break
            best = step
            time.sleep(1.0)
        return best


def print_table(bench: Bench, baseline: Step | None) -> None:
    base_ms = per_call_ms(baseline, "responder") if baseline else None
    print()
    print(
        "| scenario | offered calls/s | achieved calls/s | failed % | p50 ms | p99 ms "
        "| server CPU % | webhook CPU % | SIPp CPU % | server CPU ms/call | × baseline | notes |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, step, note in bench.rows:
        if step is None:
            print(f"| {name} | - | - | - | - | - | - | - | - | - | - | {note} |")
            continue
        run = step.run
        server = "responder" if "responder" in run.cpu else "daemon"
        ms = per_call_ms(step, server)
        ratio = f"{ms / base_ms:.1f}×" if base_ms else "-"
        print(
            f"| {name} | {step.rate} | {step.achieved:.0f} | {100 * run.failed_ratio:.3f} "
            f"| {run.percentile(0.5):.0f} | {run.percentile(0.99):.0f} "
            f"| {run.cpu.get(server, 0):.0f} | {run.cpu.get('webhook', 0):.0f} "
            f"| {run.sipp_cpu:.0f} | {ms:.3f} | {ratio} | {note} |"
        )
    for line in bench.notes:
        print(f"- {line}")


def per_call_ms(step: Step, server: str) -> float:
    return 1000 * step.run.cpu_seconds.get(server, 0.0) / max(step.run.ok, 1)


# ---- profiling ----------------------------------------------------------------------------------


def profile(bench: Bench, name: str, scenario: str, port: int, csv: Path, rate: int,
            pid: int, watch: dict[str, int]) -> None:  # fmt: skip
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if bench.args.no_profile or not Path(spy).exists():
        print(f"  (no profile for {name}: py-spy not installed or --no-profile)")
        return
    out = bench.workdir / f"profile-{name}.txt"
    duration = 5 if bench.args.quick else 10
    spy_proc = subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--duration", str(duration), "--rate", "100", "--gil",
         "--format", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.5)
    calls = int(rate * (duration + 3))
    bench.step(f"prof-{name}", scenario, port, csv, rate, watch, calls=calls)
    spy_proc.wait(60)
    if out.exists():
        print(hotspots(out, name))


def hotspots(path: Path, name: str, top: int = 15) -> str:
    """Own (leaf frame, file:line) and total (function) sample shares from py-spy raw output."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [shorten(frame) for frame in stack.split(";")]
        own[frames[-1]] += count
        for function in {frame.rsplit(":", 1)[0] + ")" for frame in frames}:
            if not function.startswith(ROOT_FRAMES):
                total[function] += count
    lines = [f"\n### py-spy: {name} ({samples} non-idle samples, 100 Hz)", "", "own time:"]
    lines += [f"  {100 * c / samples:5.1f} %  {f}" for f, c in own.most_common(top)]
    lines += ["", "total time (function incl. callees):"]
    lines += [f"  {100 * c / samples:5.1f} %  {f}" for f, c in total.most_common(top)]
    return "\n".join(lines)


ROOT_FRAMES = (
    "<module>", "_run_module_as_main", "_run_code", "main (rcmlrouter/cli.py", "_run_async",
    "run (uvloop", "Runner.run", "Thread.run", "Thread._bootstrap",
)  # fmt: skip


def shorten(frame: str) -> str:
    for marker in ("/site-packages/", "/daemon/", "/lib/python3"):
        head, sep, tail = frame.partition(marker)
        if sep:
            function = head.split(" (", 1)[0]
            return (
                f"{function} ({tail.lstrip('/')}"
                if marker != "/lib/python3"
                else (f"{function} (stdlib/{tail.split('/', 1)[-1]}")
            )
    return frame


# ---- scenario 5: held calls -------------------------------------------------------------------


def held_calls(bench: Bench, daemon: BenchDaemon, csv: Path, webhook: WebhookServer) -> None:
    count = 1000 if bench.args.quick else 10_000
    rate = 200 if bench.args.quick else 500
    hold_ms = int((count / rate + 10) * 1000)
    stepdir = bench.workdir / "held"
    stepdir.mkdir(exist_ok=True)
    timeout = count / rate + hold_ms / 1000 + 60
    args = sipp_args("uac_hold.xml", daemon.sip_port, csv, stepdir, calls=count, rate=rate,
                     limit=count, timeout=timeout, extra=("-d", str(hold_ms)))  # fmt: skip
    rss_before = rss_mib(daemon.proc.pid)  # type: ignore[union-attr]
    peak = {"rss": rss_before, "active": 0.0}

    def sample() -> None:
        while not done:
            active = daemon.metric("rcmlrouter_calls_active") or 0.0
            rss = rss_mib(daemon.proc.pid)  # type: ignore[union-attr]
            if active >= peak["active"]:
                peak["active"], peak["rss_at_peak"] = active, rss
            peak["rss"] = max(peak["rss"], rss)
            time.sleep(0.5)

    done = False
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    run = run_sipp(args, stepdir, {"daemon": daemon.proc.pid, "webhook": webhook.pid}, timeout)  # type: ignore[union-attr]
    done = True
    sampler.join(5)
    time.sleep(2)
    rss_after = rss_mib(daemon.proc.pid)  # type: ignore[union-attr]
    step = Step(rate, run)
    print(
        f"  held: {run.ok}/{run.calls} ok, failed {run.failed}, peak active {peak['active']:.0f}, "
        f"RSS before {rss_before:.0f} MiB, at peak {peak.get('rss_at_peak', 0):.0f} MiB, "
        f"max {peak['rss']:.0f} MiB, after {rss_after:.0f} MiB",
        flush=True,
    )
    if run.tail:
        print("    " + run.tail.strip()[-800:])
    per_call = (peak.get("rss_at_peak", peak["rss"]) - rss_before) * 1024 / max(peak["active"], 1)
    verdict = "PASS" if peak["rss"] < 1024 and run.failed == 0 else "FAIL"
    bench.rows.append(
        (
            f"5. held x{count}",
            step,
            f"setup at {rate}/s (achieved column includes the {hold_ms // 1000} s hold); "
            f"peak {peak['active']:.0f} concurrent; RSS {rss_before:.0f} → "
            f"{peak.get('rss_at_peak', 0):.0f} MiB at peak (max {peak['rss']:.0f}, "
            f"{per_call:.1f} KiB/call), {rss_after:.0f} MiB after; < 1 GiB: {verdict}",
        )
    )


def warning_rows(
    bench: Bench,
    daemon: BenchDaemon,
    env: dict[str, str],
    csvs: dict[str, Path],
    webhook: WebhookServer,
    reject: Step | None,
    callback: Step | None,
) -> None:
    """Scenarios 2 and 4 again at their best rates with log level warning (daemon restarted on
    the same database): the difference to rows 2 and 4 is what the per-call log line costs."""
    quiet = BenchDaemon(daemon.workdir, **{**env, "RCMLROUTER_LOG_LEVEL": "warning"})
    quiet.account_sid, quiet.auth_token = daemon.account_sid, daemon.auth_token
    quiet.start(timeout=900)
    assert quiet.proc is not None
    watch = {"daemon": quiet.proc.pid, "webhook": webhook.pid}
    try:
        if reject is not None:
            print(f"\nlog level warning: scenario 2 at {reject.rate}/s (daemon restarted)")
            step = bench.step(
                "warning", "uac_reject.xml", quiet.sip_port, csvs["exact"], reject.rate, watch
            )
            bench.rows.append(("2w. as 2, log level warning", step, "no log line a call"))
        if callback is not None:
            print(f"\nlog level warning: scenario 4 at {callback.rate}/s (daemon restarted)")
            step = bench.step(
                "warning_cb", "uac_hangup.xml", quiet.sip_port, csvs["regex_cb"], callback.rate,
                watch,
            )  # fmt: skip
            bench.rows.append(("4w. as 4, log level warning", step, "no log line a call"))
    finally:
        quiet.stop(timeout=60)


# ---- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy runs")
    parser.add_argument(
        "--no-warning", action="store_true", help="skip the log-level=warning rows (2w, 4w)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--only", default="", help="comma list of reject,regex,callbacks,held (baseline always)"
    )
    args = parser.parse_args()
    chosen = {name.strip() for name in args.only.split(",") if name.strip()}

    def want(name: str) -> bool:
        return not chosen or name in chosen

    quick = args.quick
    load = Load(10_000, 1_000) if quick else Load(1_000_000, 10_000)
    held = 1000 if quick else 10_000
    secs = 3.0 if quick else 12.0
    workdir = Path(tempfile.mkdtemp(prefix="sip-bench-"))
    bench = Bench(args, workdir, secs)
    rng = random.Random(20240601)
    print(f"work directory {workdir}; {os.cpu_count()} CPUs; SIPp {shutil.which('sipp')}")
    print(f"steps of {secs:.0f} s; pass = failed < {100 * FAIL_RATIO} % and achieved >= "
          f"{int(100 * SUSTAIN_RATIO)} % of offered")  # fmt: skip
    csvs = dialed_sets(workdir, rng, held)
    base_rates = [1000, 2000] if quick else [1000, 2000, 3000, 4000, 5000]
    rates = [250, 500] if quick else [250, 500, 750, 1000, 1500, 2000, 2500, 3000]
    cb_rates = [150, 300] if quick else [150, 300, 450, 600, 900, 1200, 1500]

    print("\n1. baseline: trivial asyncio responder (uvloop, 100 + 486)")
    responder = Helper("trivial_responder.py", workdir)
    try:
        baseline = bench.ramp("baseline", "uac_busy.xml", responder.port, csvs["exact"],
                              base_rates, {"responder": responder.pid})  # fmt: skip
    finally:
        responder.stop()
    bench.rows.append(("1. baseline (trivial responder, 486)", baseline, "floor of Python cost"))

    webhook = WebhookServer(workdir)
    env = {
        "RCMLROUTER_LOG_LEVEL": "info",  # the shipped default
        "RCMLROUTER_CALLBACKS_RETRY_INITIAL": "1.0",
        "RCMLROUTER_CALLBACKS_RETRY_MAX": "30",
        "RCMLROUTER_SIP_DRAIN_TIMEOUT": "5",
        # the default range [20000, 30000) has 5,000 even ports: too few for 10k answered calls;
        # below the kernel's ephemeral range (32768-60999), which SIPp's and our sockets use
        "RCMLROUTER_MEDIA_RTP_PORT_MIN": "10000",
        "RCMLROUTER_MEDIA_RTP_PORT_MAX": "32768",
    }
    daemon = BenchDaemon(workdir / "daemon", **env)
    daemon.init()
    took = asyncio.run(provision(daemon, load, webhook, held))
    print(f"\nprovisioned {load.exact:,} exact + {load.regex:,} regex numbers in {took:.1f} s")
    started = time.monotonic()
    daemon.start(timeout=900)
    assert daemon.proc is not None
    pid = daemon.proc.pid
    idle_rss = rss_mib(pid)
    bench.notes.append(
        f"daemon ready in {time.monotonic() - started:.1f} s with {load.exact:,} exact + "
        f"{load.regex:,} regex numbers (+2,000 SIP exact); idle RSS {idle_rss:.0f} MiB"
    )
    print(bench.notes[-1])
    watch = {"daemon": pid, "webhook": webhook.pid}
    reject = callback = None
    try:
        if want("reject"):
            print("\n2. exact SIP number → <Reject/> → 603")
            reject = bench.ramp(
                "reject", "uac_reject.xml", daemon.sip_port, csvs["exact"], rates, watch
            )
            bench.rows.append(("2. exact → Reject (603)", reject, "target ≥ 1,500/s"))

        if want("regex"):
            print(f"\n3. regex number ({load.regex:,} patterns, {load.exact:,} exact) → Hangup")
            regex = bench.ramp(
                "regex", "uac_hangup.xml", daemon.sip_port, csvs["regex"], rates, watch
            )
            bench.rows.append(("3. regex → Hangup (200 + BYE)", regex, ""))

        print("\n4. as 3 with a StatusCallback (3 callbacks per call)")

        def check_callbacks(step: Step) -> None:
            expected = 3 * step.run.ok
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and webhook.stats().get("status", 0) < expected:
                time.sleep(0.25)
            got = webhook.stats().get("status", 0)
            lag = 30 - max(0.0, deadline - time.monotonic())
            step.extra["callbacks"] = f"{got}/{expected} callbacks, drained {lag:.1f} s after"
            print(f"    {step.extra['callbacks']}", flush=True)
            if got < expected:
                step.run.failed += (expected - got + 2) // 3  # count undelivered as failed
            webhook.reset()

        webhook.reset()
        if want("callbacks"):
            callback = bench.ramp(
                "regex_cb",
                "uac_hangup.xml",
                daemon.sip_port,
                csvs["regex_cb"],
                cb_rates,
                watch,
                after=check_callbacks,
            )
            bench.rows.append(
                ("4. regex → Hangup + StatusCallback", callback,
                 "target ≥ 600/s; " + (callback.extra.get("callbacks", "") if callback else ""))
            )  # fmt: skip

        print("\nprofiles (py-spy record --gil: the thread holding the GIL; SIPp at the best rate)")
        if want("reject"):
            profile(bench, "reject", "uac_reject.xml", daemon.sip_port, csvs["exact"],
                    reject.rate if reject else rates[0], pid, watch)  # fmt: skip
        if want("callbacks"):
            profile(bench, "regex_cb", "uac_hangup.xml", daemon.sip_port, csvs["regex_cb"],
                    callback.rate if callback else cb_rates[0], pid, watch)  # fmt: skip
        time.sleep(3)
        webhook.reset()

        if want("held"):
            # a fresh process: RSS then measures the held dialogs, not the allocator's
            # high-water mark from the overload steps above
            daemon.stop(timeout=60)
            fresh = BenchDaemon(workdir / "daemon", **env)
            fresh.account_sid, fresh.auth_token = daemon.account_sid, daemon.auth_token
            daemon = fresh
            daemon.start(timeout=900)
            assert daemon.proc is not None
            watch["daemon"] = daemon.proc.pid
            print(f"\n5. {held:,} concurrent held calls (<Pause length=60/>), daemon restarted")
            held_calls(bench, daemon, csvs["held"], webhook)
        errors = [line for line in daemon.raw if '"error"' in line or "Traceback" in line]
        if errors:
            bench.notes.append(f"daemon logged {len(errors)} error lines; first: {errors[0][:300]}")
    finally:
        daemon.stop(timeout=60)

    if not args.no_warning and (reject is not None or callback is not None):
        warning_rows(bench, daemon, env, csvs, webhook, reject, callback)
    webhook.stop()

    bench.notes.append(
        "CPU % is per process, 100 % = one core; the machine has "
        f"{os.cpu_count()} cores shared by SIPp, the daemon and the webhook server"
    )
    print("\n## SIP benchmark" + (" (--quick)" if quick else ""))
    print_table(bench, baseline)
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
