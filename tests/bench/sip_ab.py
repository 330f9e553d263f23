"""A/B of the SIP call path: the working tree against a git revision, in the same run.

Run: .venv/bin/python tests/bench/sip_ab.py --before HEAD~1 [--scenario reject] \
         [--rates 600,900] [--rounds 3] [--secs 8]
     .venv/bin/python tests/bench/sip_ab.py --overload 1500 [--before REV]   # the curve

Both daemons (A = ``--before``, checked out in a temporary git worktree and run with it first
on PYTHONPATH; B = the working tree) run side by side on copies of one provisioned database
(100,000 exact + 1,000 regex numbers by default) with one webhook process; each round runs every
rate on A then B (the order alternates per round), so machine noise hits both. Printed per
variant and rate: medians over the rounds of achieved calls/s, daemon CPU ms/call, p50/p99
INVITE → final ms, and the failed calls summed; then B/A of CPU ms/call and p99.

``--old-records N``: the database starts with N finished calls (and N/10 notifications) two
days old, the backlog a daemon with ``[records] max_age`` prunes while the steps run
(``--env-a RCMLROUTER_RECORDS_MAX_AGE=0 --env RCMLROUTER_RECORDS_MAX_AGE=3600``: the p99 with
and without pruning).

``--overload MAX``: offered 0.5, 0.8, 1.0, 1.25, 1.5, 2.0 × MAX calls/s of exact → ``<Reject/>``
with SIPp accepting 503 as a final response (uac_reject_shed.xml): achieved = 603s per second,
shed = 503s per second, p99 over every final response. Without ``--before`` only the working
tree runs.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from sip_bench import (
    REPO,
    BenchDaemon,
    Load,
    Step,
    WebhookServer,
    dialed_sets,
    hotspots,
    provision,
    run_sipp,
    sipp_args,
)

from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import CallRecord, Notification
from rcmlrouter.store.sqlite import SqliteStore

SCENARIOS = {  # name → (SIPp scenario, dialed set)
    "reject": ("uac_reject.xml", "exact"),
    "regex": ("uac_hangup.xml", "regex"),
    "callbacks": ("uac_hangup.xml", "regex_cb"),
    "shed": ("uac_reject_shed.xml", "exact"),
}
OVERLOAD_FACTORS = (0.5, 0.8, 1.0, 1.25, 1.5, 2.0)
ENV = {
    "RCMLROUTER_LOG_LEVEL": "warning",
    "RCMLROUTER_CALLBACKS_RETRY_INITIAL": "1.0",
    "RCMLROUTER_CALLBACKS_RETRY_MAX": "30",
    "RCMLROUTER_SIP_DRAIN_TIMEOUT": "5",
}


@dataclass
class Variant:
    name: str
    daemon: BenchDaemon
    steps: dict[int, list[Step]] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        assert self.daemon.proc is not None
        return self.daemon.proc.pid


async def seed_old_records(db: Path, account_sid: str, count: int) -> None:
    """``count`` finished calls and ``count // 10`` notifications, two days old."""
    store = await SqliteStore.open(db)
    old = time.time() - 2 * 86400
    try:
        for start in range(0, count, 20_000):
            calls = [
                CallRecord(new_sid("CA"), account_sid, None, "bench", "5550000123", "inbound",
                           "no-answer", "exact", old + i * 1e-3, None, old + i * 1e-3, 0.0, 603,
                           urls=["http://127.0.0.1:9/voice/reject"])
                for i in range(start, min(count, start + 20_000))
            ]  # fmt: skip
            await store.write_journal(calls, [], [])
        notes = [
            Notification(new_sid("NO"), account_sid, None, 11200, "error", "HTTP 500", None, old)
            for _ in range(count // 10)
        ]
        await store.add_notifications(notes)
    finally:
        await store.close()


def worktree(rev: str, root: Path, name: str) -> Path:
    path = root / name
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), rev],
        check=True,
        capture_output=True,
    )
    return path


def shed_count(step_dir: Path) -> int:
    """503 responses SIPp received in a step (its -trace_counts CSV, last row)."""
    for path in step_dir.glob("*_counts.csv"):
        lines = path.read_text().splitlines()
        header, last = lines[0].split(";"), lines[-1].split(";")
        return sum(int(v) for h, v in zip(header, last, strict=False) if "503" in h and v)
    return 0


def start_profile(pid: int, secs: float, root: Path) -> subprocess.Popen[bytes]:
    spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen(
        [str(spy), "record", "--pid", str(pid), "--duration", str(int(secs)), "--rate", "100",
         "--gil", "--format", "raw", "-o", str(root / "profile.txt")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def scrape(daemon: BenchDaemon) -> dict[str, float]:
    url = f"http://127.0.0.1:{daemon.api_port}/metrics"
    values = {}
    with urllib.request.urlopen(url, timeout=30) as response:
        for line in response.read().decode().splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                values[key] = float(value)
    return values


def quantile(before: dict[str, float], after: dict[str, float], prefix: str, q: float) -> str:
    """The bucket bound holding quantile ``q`` of a histogram's observations between scrapes."""
    buckets = []
    for key, value in after.items():
        if key.startswith(prefix + "_bucket{") and 'le="' in key:
            bound = key.rsplit('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(bound), value - before.get(key, 0.0)))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return "-"
    total = buckets[-1][1]
    for bound, count in buckets:
        if count >= q * total:
            return f"≤{1000 * bound:g}" if bound != float("inf") else ">max"
    return "-"


def metrics_note(before: dict[str, float], after: dict[str, float]) -> str:
    commit = "rcmlrouter_journal_commit_seconds"
    batch = 'rcmlrouter_store_batch_seconds{writer="journal"}'
    items = 'rcmlrouter_store_batch_items{writer="journal"}'

    def gc_delta(kind: str, g: int) -> float:
        key = f'rcmlrouter_gc_pause_seconds_{kind}{{generation="{g}"}}'
        return after.get(key, 0.0) - before.get(key, 0.0)

    gc = sum(gc_delta("sum", g) for g in range(3))

    def freed(g: int) -> float:
        key = f'rcmlrouter_gc_collected_objects_total{{generation="{g}"}}'
        return after.get(key, 0.0) - before.get(key, 0.0)

    per_generation = ", ".join(
        f"gen{g} {gc_delta('count', g):.0f}× {1000 * gc_delta('sum', g):.0f} ms "
        f"{freed(g):.0f} freed"
        for g in range(3)
    )
    n = after.get(commit + "_count", 0) - before.get(commit + "_count", 0)
    batches = after.get(batch.replace("{", "_count{"), 0) - before.get(
        batch.replace("{", "_count{"), 0
    )
    written = after.get(items.replace("{", "_sum{"), 0) - before.get(items.replace("{", "_sum{"), 0)
    pruned = sum(
        after.get(key, 0.0) - before.get(key, 0.0)
        for key in after
        if key.startswith("rcmlrouter_records_pruned_total{")
    )
    retention = (
        f"; records pruned {pruned:.0f}, batch p99 "
        f"{quantile(before, after, 'rcmlrouter_records_prune_batch_seconds', 0.99)} ms"
        if pruned
        else ""
    )
    return (
        f"commit wait p50 {quantile(before, after, commit, 0.5)} "
        f"p99 {quantile(before, after, commit, 0.99)} ms ({n:.0f}); journal batches "
        f"{batches:.0f} of {written / max(batches, 1):.1f} items, write p99 "
        f"{quantile(before, after, 'rcmlrouter_store_batch_seconds', 0.99)} ms; "
        f"GC pauses {1000 * gc:.0f} ms ({per_generation}); loop lag p99 "
        f"{quantile(before, after, 'rcmlrouter_loop_lag_seconds', 0.99)} p99.9 "
        f"{quantile(before, after, 'rcmlrouter_loop_lag_seconds', 0.999)} ms; webhook p99 "
        f"{quantile(before, after, 'rcmlrouter_webhook_seconds', 0.99)} ms{retention}"
    )


def step(variant: Variant, scenario: str, csv: Path, rate: int, secs: float, root: Path,
         webhook: WebhookServer) -> Step:  # fmt: skip
    calls = int(rate * secs)
    step_dir = root / f"{variant.name[0]}-{rate}"
    step_dir.mkdir(exist_ok=True)
    timeout = calls / rate + 40
    args = sipp_args(scenario, variant.daemon.sip_port, csv, step_dir, calls=calls, rate=rate,
                     limit=max(2000, rate * 4), timeout=timeout,
                     extra=("-trace_counts",))  # fmt: skip
    before = scrape(variant.daemon)
    run = run_sipp(args, step_dir, {"daemon": variant.pid, "webhook": webhook.pid}, timeout)
    note = metrics_note(before, scrape(variant.daemon))
    result = Step(rate, run, {"shed": str(shed_count(step_dir))})
    print(
        f"  {variant.name:<12} {rate:>5}/s: {run.ok}/{run.calls} ok, failed {run.failed}, "
        f"shed {result.extra['shed']}, achieved {result.achieved:7.1f}/s, "
        f"p50 {run.percentile(0.5):.0f} p99 {run.percentile(0.99):.0f} ms, "
        f"daemon {run.cpu['daemon']:.0f} % "
        f"{1000 * run.cpu_seconds['daemon'] / max(run.ok, 1):.3f} ms/call, "
        f"webhook {run.cpu['webhook']:.0f} %, sipp {run.sipp_cpu:.0f} %\n    {note}",
        flush=True,
    )
    if run.tail:
        print("    " + run.tail.strip().replace("\n", "\n    ")[-600:], flush=True)
    return result


def summarise(variant: Variant, rate: int, overload: bool, workdir: Path) -> dict[str, float]:
    steps = variant.steps[rate]
    ms = [1000 * s.run.cpu_seconds["daemon"] / max(s.run.ok, 1) for s in steps]
    row = {
        "achieved": statistics.median(s.achieved for s in steps),
        "ms": statistics.median(ms),
        "p50": statistics.median(s.run.percentile(0.5) for s in steps),
        "p99": statistics.median(s.run.percentile(0.99) for s in steps),
        "failed": sum(s.run.failed for s in steps),
        "calls": sum(s.run.calls for s in steps),
        "cpu": statistics.median(s.run.cpu["daemon"] for s in steps),
    }
    if overload:
        shed = [int(s.extra.get("shed", "0")) / s.run.elapsed for s in steps]
        row["shed"] = statistics.median(shed)
        row["achieved"] = statistics.median(
            (s.run.ok - int(s.extra.get("shed", "0"))) / s.run.elapsed for s in steps
        )
    return row


def report(variants: list[Variant], rates: list[int], overload: bool, workdir: Path) -> None:
    print("\n| variant | offered/s | achieved/s | shed 503/s | failed | p50 ms | p99 ms "
          "| daemon CPU % | CPU ms/call |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    table: dict[tuple[str, int], dict[str, float]] = {}
    for rate in rates:
        for variant in variants:
            row = summarise(variant, rate, overload, workdir)
            table[(variant.name, rate)] = row
            shed = f"{row['shed']:.0f}" if overload else "-"
            print(
                f"| {variant.name} | {rate} | {row['achieved']:.0f} | {shed} "
                f"| {row['failed']:.0f}/{row['calls']:.0f} | {row['p50']:.0f} | {row['p99']:.0f} "
                f"| {row['cpu']:.0f} | {row['ms']:.3f} |"
            )
    if len(variants) == 2:
        a, b = variants[0].name, variants[1].name
        for rate in rates:
            ra, rb = table[(a, rate)], table[(b, rate)]
            print(
                f"- {rate}/s: CPU ms/call B/A {rb['ms'] / ra['ms']:.2f}; "
                f"p99 {ra['p99']:.0f} → {rb['p99']:.0f} ms; "
                f"achieved {ra['achieved']:.0f} → {rb['achieved']:.0f}/s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--before", help="git revision for A (WORK: the work tree too; default: B only)"
    )
    parser.add_argument("--after", help="git revision for B (default: the work tree)")
    parser.add_argument("--scenario", default="reject", choices=sorted(SCENARIOS))
    parser.add_argument("--rates", default="600", help="comma list of offered calls/s")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--secs", type=float, default=8.0, help="seconds per step")
    parser.add_argument("--overload", type=int, default=0, help="MAX: run the overload curve")
    parser.add_argument("--exact", type=int, default=100_000, help="exact numbers loaded")
    parser.add_argument(
        "--old-records", type=int, default=0, help="finished calls two days old in the database"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy --gil on B in the last round's top step"
    )
    parser.add_argument("--env", action="append", default=[], help="B only: NAME=VALUE")
    parser.add_argument("--env-a", action="append", default=[], help="A only: NAME=VALUE")
    args = parser.parse_args()

    overload = args.overload > 0
    scenario = "shed" if overload else args.scenario
    rates = (
        [int(args.overload * f) for f in OVERLOAD_FACTORS]
        if overload
        else [int(r) for r in args.rates.split(",")]
    )
    root = Path(tempfile.mkdtemp(prefix="sip-ab-"))
    csvs = dialed_sets(root, __import__("random").Random(20240601), 1000)
    webhook = WebhookServer(root)
    variants: list[Variant] = []
    trees: list[Path] = []
    try:
        first = BenchDaemon(root / "B", **ENV).init()
        asyncio.run(provision(first, Load(args.exact, 1000), webhook, 1000))
        if args.old_records:
            asyncio.run(seed_old_records(first.db, first.account_sid, args.old_records))
        if args.before:
            tree = REPO if args.before == "WORK" else worktree(args.before, root, "before")
            if tree != REPO:
                trees.append(tree)
            a = BenchDaemon(root / "A", **{**ENV, **dict(e.split("=", 1) for e in args.env_a)})
            a.account_sid, a.auth_token = first.account_sid, first.auth_token
            shutil.copy(first.db, a.db)
            a.env["PYTHONPATH"] = str(tree / "daemon")
            variants.append(Variant(f"A {args.before}", a))
        first.env.update(dict(e.split("=", 1) for e in args.env))
        if args.after:
            trees.append(worktree(args.after, root, "after"))
            first.env["PYTHONPATH"] = str(trees[-1] / "daemon")
        variants.append(Variant(f"B {args.after}" if args.after else "B work tree", first))
        for variant in variants:
            variant.daemon.start(timeout=300)
        print(f"work directory {root}; scenario {scenario}; rates {rates}; "
              f"{args.rounds} rounds of {args.secs:.0f} s", flush=True)  # fmt: skip
        sipp_scenario, dialed = SCENARIOS[scenario]
        for round_no in range(args.rounds):
            order = variants if round_no % 2 == 0 else variants[::-1]
            for rate in rates:
                for variant in order:
                    spy = None
                    last = round_no == args.rounds - 1 and rate == rates[-1]
                    if args.profile and last and variant is variants[-1]:
                        spy = start_profile(variant.pid, args.secs, root)
                    result = step(variant, sipp_scenario, csvs[dialed], rate, args.secs, root,
                                  webhook)  # fmt: skip
                    variant.steps.setdefault(rate, []).append(result)
                    if spy is not None:
                        spy.wait(60)
                        print(hotspots(root / "profile.txt", f"{variant.name} at {rate}/s"))
                    time.sleep(2.0 if not overload else 4.0)
        report(variants, rates, overload, root)
    finally:
        for variant in variants:
            variant.daemon.stop(timeout=60)
        webhook.stop()
        for tree in trees:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                           check=False, capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
