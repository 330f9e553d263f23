"""<Dial> benchmark: bridged calls/s and concurrent bridges, next to a same-run SIPp → SIPp
baseline.

Run: .venv/bin/python tests/bench/dial_bench.py [--secs 8] [--rates 50,100,200]
     [--concurrent 1000]

Everything on 127.0.0.1. The callee is SIPp's built-in UAS (``-sn uas``: 180, 200 with SDP,
ACK, BYE). The caller is SIPp's built-in UAC (``-sn uac``: INVITE with SDP, 200, ACK, BYE after
``-d`` ms):
  1. baseline  UAC → UAS directly, at the highest rate: what SIPp alone sustains here.
  2. bridged   UAC → rcmlrouter (``<Dial><Sip>`` the UAS, one webhook fetch per call) → UAS,
               short calls (100 ms), the offered rate stepped up until a step fails (>= 0.1 %
               failed calls or < 90 % of the offered rate achieved).
  3. held      N bridges held 40 s at once (two dialogs, four transactions' worth of state
               each); the daemon's RSS with N bridges up, and per bridge.
CPU % is per process (100 % = one core); the machine is small and shared: read the ratio to
the baseline. Helpers (BenchDaemon, run_sipp, CpuMeter, rss_mib) come from sip_bench.py.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sip_bench import BenchDaemon, SippRun, free_port, rss_mib, run_sipp  # noqa: E402

from support.webhooks import WebhookServer, rcml  # noqa: E402

SIPP = shutil.which("sipp") or "/usr/bin/sipp"


def uas(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [SIPP, "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_port()),
         "-t", "u1", "-nostdin", "-timer_resol", "1",
         "-buff_size", str(4 * 1024 * 1024)],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.5)
    return proc, port


def uac(
    target: int, workdir: Path, service: str, *, calls: int, rate: int, hold_ms: int
) -> list[str]:
    return [
        SIPP, f"127.0.0.1:{target}", "-sn", "uac", "-s", service,
        "-m", str(calls), "-r", str(rate), "-l", str(max(calls, 1000)), "-d", str(hold_ms),
        "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(free_port()), "-t", "u1",
        "-nostdin", "-timer_resol", "1", "-recv_timeout", "10000",
        "-timeout", f"{int(calls / rate + hold_ms / 1000 + 40)}s", "-timeout_error",
        "-trace_stat", "-stf", str(workdir / "stat.csv"), "-fd", "1",
        "-trace_err", "-error_file", str(workdir / "errors.log"),
        "-buff_size", str(4 * 1024 * 1024),
    ]  # fmt: skip


def step(name: str, args: list[str], workdir: Path, watch: dict[str, int]) -> SippRun:
    workdir.mkdir(exist_ok=True)
    run = run_sipp(args, workdir, watch, float(args[args.index("-timeout") + 1][:-1]))
    print(
        f"  {name:<22} {run.ok:>6}/{run.calls:<6} ok  {run.ok / run.elapsed:7.1f} calls/s  "
        + ", ".join(f"{k} {v:.0f} %" for k, v in run.cpu.items())
        + f", sipp uac {run.sipp_cpu:.0f} %",
        flush=True,
    )
    if run.tail:
        print("    " + run.tail.strip()[-600:].replace("\n", "\n    "), flush=True)
    return run


def held(
    daemon: BenchDaemon, port: int, workdir: Path, service: str, count: int
) -> tuple[float, float, float]:
    """Hold ``count`` bridges; (RSS before, RSS with them up, bridges seen)."""
    before = rss_mib(daemon.proc.pid)  # type: ignore[union-attr]
    rate = min(200, count)
    args = uac(port, workdir, service, calls=count, rate=rate, hold_ms=40_000)
    workdir.mkdir(exist_ok=True)
    proc = subprocess.Popen(args, cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)  # fmt: skip
    peak_rss, peak_calls = before, 0.0
    deadline = time.monotonic() + count / rate + 30
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(1)
        active = daemon.metric("rcmlrouter_calls_active") or 0.0
        rss = rss_mib(daemon.proc.pid)  # type: ignore[union-attr]
        if active >= peak_calls:
            peak_calls, peak_rss = active, rss
        if active >= count:
            break
    proc.terminate()
    proc.wait(30)
    return before, peak_rss, peak_calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--secs", type=float, default=8.0)
    parser.add_argument("--rates", default="50,100,200")
    parser.add_argument("--concurrent", type=int, default=1000)
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    root = Path(tempfile.mkdtemp(prefix="dial-bench-"))
    callee, callee_port = uas(root)
    webhooks = WebhookServer().start()
    daemon = BenchDaemon(
        root / "daemon",
        RCMLROUTER_LOG_LEVEL="warning",
        RCMLROUTER_SIP_MAX_CALLS="40000",
        RCMLROUTER_SIP_MAX_TRANSACTIONS="40000",
    )
    try:
        daemon.init()
        daemon.start()
        pid = daemon.proc.pid  # type: ignore[union-attr]
        url = webhooks.route(
            "/dial", rcml(f"<Dial><Sip>sip:callee@127.0.0.1:{callee_port}</Sip></Dial>")
        )
        daemon.create_number(PhoneNumber="7000", isSIP="true", VoiceUrl=url)
        print(f"dial bench: {args.secs:g} s per step; workdir {root}", flush=True)
        top = max(rates)
        base = step(
            f"baseline sipp→sipp {top}/s",
            uac(callee_port, root / "base", "callee", calls=int(top * args.secs), rate=top,
                hold_ms=100),
            root / "base", {"sipp uas": callee.pid},
        )  # fmt: skip
        rows: list[tuple[int, SippRun]] = []
        for rate in rates:
            run = step(
                f"bridged {rate}/s",
                uac(daemon.sip_port, root / f"b{rate}", "7000", calls=int(rate * args.secs),
                    rate=rate, hold_ms=100),
                root / f"b{rate}", {"daemon": pid, "sipp uas": callee.pid},
            )  # fmt: skip
            rows.append((rate, run))
            if (
                run.calls == 0
                or run.failed / run.calls >= 0.001
                or run.ok / run.elapsed < 0.9 * rate
            ):
                break
            time.sleep(1)
        before, peak, bridges = held(daemon, daemon.sip_port, root / "held", "7000",
                                     args.concurrent)  # fmt: skip
        print_table(base, top, rows, (before, peak, bridges, args.concurrent))
    finally:
        daemon.stop(60)
        webhooks.stop()
        callee.terminate()
        callee.wait(10)


def print_table(
    base: SippRun,
    top: int,
    rows: list[tuple[int, SippRun]],
    held_result: tuple[float, float, float, int],
) -> None:
    print()
    print("| scenario | offered | ok / calls | calls/s | daemon CPU | SIPp UAS CPU |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| baseline SIPp → SIPp | {top}/s | {base.ok}/{base.calls} | "
          f"{base.ok / base.elapsed:.0f} | – | {base.cpu.get('sipp uas', 0):.0f} % |")  # fmt: skip
    for rate, run in rows:
        ok = run.calls and run.failed / run.calls < 0.001 and run.ok / run.elapsed >= 0.9 * rate
        daemon_cpu, uas_cpu = run.cpu.get("daemon", 0), run.cpu.get("sipp uas", 0)
        print(f"| bridged `<Dial><Sip>` | {rate}/s | {run.ok}/{run.calls} | "
              f"{run.ok / run.elapsed:.0f}{'' if ok else ' (fail)'} | "
              f"{daemon_cpu:.0f} % | {uas_cpu:.0f} % |")  # fmt: skip
    before, peak, bridges, wanted = held_result
    per = (peak - before) * 1024 / bridges if bridges else 0.0
    print(f"| held bridges | {wanted} | {bridges:.0f} up | – | RSS {before:.0f} → {peak:.0f} MiB "
          f"({per:.1f} KiB/bridge) | – |")  # fmt: skip


if __name__ == "__main__":
    main()
