"""Inbound MESSAGE benchmark: SIPp MESSAGE → rcmlrouter → SmsUrl, next to a same-run baseline.

Run: .venv/bin/python tests/bench/message_bench.py [--quick] [--rates 1000,2000,...]

  1. baseline  SIPp MESSAGE against tests/bench/trivial_responder.py (uvloop; 202 at once).
  2. message   MESSAGE → exact SIP number → stored (group commit) → 202 → SmsUrl fetched from
               tests/bench/bench_webhook.py (``<Response/>``) → record marked received.

Each rate step offers ``rate`` MESSAGEs/s for ``secs`` seconds (SIPp ``-r``, UDP). A step passes
with < 0.1 % failed (no 202) and achieved 202s/s >= 90 % of offered; for the daemon also every
accepted message must reach the webhook, and "processed/s" is accepted messages divided by the
time from the first MESSAGE to the last webhook request. The daemon logs at warning (a JSON line
per message at info costs ~10 %). CPU % from /proc (100 % = one core).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sip_bench import (
    BenchDaemon,
    Helper,
    SippRun,
    WebhookServer,
    run_sipp,
    sipp_args,
)

DIAL = "5559000001"


def step(
    name: str, port: int, csv: Path, workdir: Path, rate: int, secs: float, watch: dict[str, int]
) -> SippRun:
    calls = int(rate * secs)
    stepdir = workdir / f"{name}-{rate}"
    stepdir.mkdir()
    timeout = secs + 40
    args = sipp_args("uac_message.xml", port, csv, stepdir, calls=calls, rate=rate,
                     limit=max(2000, rate * 4), timeout=timeout)  # fmt: skip
    return run_sipp(args, stepdir, watch, timeout)


def wait_processed(webhook: WebhookServer, expected: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    got = 0
    while time.monotonic() < deadline:
        got = webhook.stats().get("voice/empty", 0)
        if got >= expected:
            return got
        time.sleep(0.05)
    return got


def describe(name: str, rate: int, run: SippRun, extra: str = "") -> str:
    achieved = run.ok / run.elapsed if run.elapsed else 0.0
    cpu = ", ".join(f"{k} {v:.0f} %" for k, v in run.cpu.items())
    return (
        f"  {name:<9} offered {rate:>5}/s: {run.ok}/{run.calls} 202, failed "
        f"{100 * run.failed_ratio:.3f} %, achieved {achieved:7.1f}/s, "
        f"p50 {run.percentile(0.5):.0f} ms p99 {run.percentile(0.99):.0f} ms, {cpu}, "
        f"sipp {run.sipp_cpu:.0f} %{extra}"
    )


def passed(run: SippRun, rate: int) -> bool:
    achieved = run.ok / run.elapsed if run.elapsed else 0.0
    return run.calls > 0 and run.failed_ratio < 0.001 and achieved >= 0.9 * rate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 s per step")
    parser.add_argument("--rates", default="1000,2000,3000,4000,5000,6000")
    args = parser.parse_args()
    secs = 3.0 if args.quick else 10.0
    rates = [int(r) for r in args.rates.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="message-bench-"))
    csv = workdir / "dial.csv"
    csv.write_text(f"SEQUENTIAL\n{DIAL};\n")
    rows: list[tuple[str, int, SippRun, str]] = []

    print("baseline: trivial responder (202 at once)", flush=True)
    trivial = Helper("trivial_responder.py", workdir)
    try:
        for rate in rates:
            run = step("baseline", trivial.port, csv, workdir, rate, secs, {"trivial": trivial.pid})
            print(describe("baseline", rate, run), flush=True)
            if not passed(run, rate):
                break
            rows.append(("baseline", rate, run, ""))
            time.sleep(1.0)
    finally:
        trivial.stop()

    print("daemon: MESSAGE → store → 202 → SmsUrl", flush=True)
    webhook = WebhookServer(workdir)
    daemon = BenchDaemon(workdir / "daemon", RCMLROUTER_LOG_LEVEL="warning")
    try:
        daemon.init()
        daemon.start()
        daemon.create_number(PhoneNumber=DIAL, isSIP="true", SmsUrl=webhook.url("voice/empty"))
        for rate in rates:
            webhook.reset()
            started = time.monotonic()
            watch = {"daemon": daemon.proc.pid, "webhook": webhook.pid}  # type: ignore[union-attr]
            run = step("message", daemon.sip_port, csv, workdir, rate, secs, watch)
            processed = wait_processed(webhook, run.ok)
            took = time.monotonic() - started
            extra = f", processed {processed}/{run.ok} ({processed / took:.0f}/s incl. drain)"
            print(describe("message", rate, run, extra), flush=True)
            if not passed(run, rate) or processed < run.ok:
                break
            rows.append(("message", rate, run, f"{processed / took:.0f}"))
            time.sleep(1.0)
    finally:
        daemon.stop()
        webhook.stop()

    print("\n| scenario | best passing rate (offered/s) | achieved 202/s | processed/s "
          "| p50 / p99 ms | CPU |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name in ("baseline", "message"):
        best = [row for row in rows if row[0] == name]
        if not best:
            print(f"| {name} | none passed | | | | |")
            continue
        _, rate, run, processed = best[-1]
        cpu = ", ".join(f"{k} {v:.0f} %" for k, v in run.cpu.items())
        print(
            f"| {name} | {rate} | {run.ok / run.elapsed:.0f} | {processed or '-'} | "
            f"{run.percentile(0.5):.0f} / {run.percentile(0.99):.0f} | {cpu} |"
        )
    print(f"\nwork directory: {workdir}")


if __name__ == "__main__":
    main()
