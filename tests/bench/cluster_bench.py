"""Cluster benchmark: change propagation between two nodes, and calls/s behind Kamailio.

Run: .venv/bin/python tests/bench/cluster_bench.py [--changes 1000] [--calls 3000]

Everything on 127.0.0.1, one throw-away PostgreSQL schema (the test server), two real daemons
(node A, node B) and Kamailio (config/kamailio/kamailio.cfg):

1. propagation: ``--changes`` times, create a number through A's API and poll B's ``/health``
   until its snapshot version includes it (B applied it to its routing snapshot). Reported:
   p50 / p99 / max of API write on A -> visible on B, and of B's own commit -> applied delay.
2. calls/s: SIPp INVITEs to a number whose webhook answers ``<Reject/>`` (603), ``--calls``
   calls with 100 in flight: first straight to node A (one worker), then to Kamailio in front
   of A and B (two workers), same run. CPU per call = CPU seconds of the daemons (and Kamailio)
   divided by calls; 100 % = one core. SIPp and the webhook server share the machine's cores,
   so read the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.daemon import DaemonProcess
from support.kamailio import KamailioProxy
from support.pg import drop_schema, new_schema_name, schema_url
from support.sipp import run_sipp, scenario
from support.webhooks import WebhookServer, rcml

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def family(pid: int) -> list[int]:
    """``pid`` and its children (Kamailio forks its workers)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [pid, *(int(p) for p in out.stdout.split())]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def propagation(a: DaemonProcess, b: DaemonProcess, changes: int) -> None:
    health = httpx.Client(base_url=f"http://127.0.0.1:{b.api_port}", timeout=5)
    write_to_b: list[float] = []
    commit_to_applied: list[float] = []
    with a.api() as api:
        for i in range(changes):
            before = health.get("/health").json()["snapshot_version"]
            started = time.perf_counter()
            response = api.post(
                "/IncomingPhoneNumbers.json",
                data={"PhoneNumber": f"9{i:06d}", "isSIP": "true", "VoiceUrl": "http://x/"},
            )
            assert response.status_code in (200, 201), response.text
            while (found := health.get("/health").json())["snapshot_version"] <= before:
                pass
            write_to_b.append((time.perf_counter() - started) * 1000)
            if found["last_change_delay_ms"] is not None:
                commit_to_applied.append(float(found["last_change_delay_ms"]))
    health.close()
    print(f"\n## Propagation: {changes} numbers created on A, seen in B's snapshot\n")
    print("| measure | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|")
    for name, values in (
        ("API write on A -> applied on B (polled via B /health)", write_to_b),
        ("commit -> applied on B (B's own clock)", commit_to_applied),
    ):
        print(
            f"| {name} | {statistics.median(values):.1f} | {percentile(values, 0.99):.1f} "
            f"| {max(values):.1f} |"
        )


def call_rate(
    label: str, port: int, pids: list[int], calls: int, workdir: Path
) -> tuple[float, float]:
    file = scenario("uac_refused.xml.in", workdir, code="603")
    cpu_before = cpu_seconds(pids)
    started = time.perf_counter()
    result = run_sipp(
        file, port, service="64001", workdir=workdir, calls=calls, rate=2000, limit=100,
        timeout=120,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pids) - cpu_before
    failed = 0 if result.ok else result.stdout.count("Failed")
    rate = calls / elapsed
    per_call = cpu / calls * 1000
    print(f"| {label} | {calls} | {elapsed:.1f} | {rate:.0f} | {per_call:.2f} | "
          f"{'ok' if result.ok else f'rc={result.returncode} {failed}'} |")  # fmt: skip
    return rate, per_call


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    schema = new_schema_name()
    workdir = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    env = {"RCMLROUTER_STORE_URL": schema_url(schema), "RCMLROUTER_LOG_LEVEL": "warning"}
    a = DaemonProcess(workdir / "a", RCMLROUTER_CLUSTER_NODE_ID="bench-a", **env)
    b = DaemonProcess(workdir / "b", RCMLROUTER_CLUSTER_NODE_ID="bench-b", **env)
    hooks = WebhookServer().start()
    proxy = None
    try:
        a.start()
        b.account_sid, b.auth_token = a.account_sid, a.auth_token
        b.start()
        propagation(a, b, args.changes)
        url = hooks.route("/bench/reject", rcml("<Reject/>"))
        a.create_number(PhoneNumber="64001", isSIP="true", VoiceUrl=url)
        time.sleep(0.5)
        proxy = KamailioProxy([a.sip_port, b.sip_port], workdir / "kamailio", children=2)
        proxy.start()
        time.sleep(1.5)  # both nodes answered a probe
        assert a.proc is not None and b.proc is not None and proxy.proc is not None
        print(f"\n## Calls/s: INVITE -> webhook <Reject/> -> 603, {args.calls} calls, "
              "100 in flight\n")  # fmt: skip
        print("| setup | calls | seconds | calls/s | CPU ms per call | result |")
        print("|---|---|---|---|---|---|")
        one, _ = call_rate("one worker, direct", a.sip_port, [a.proc.pid], args.calls, workdir)
        pids = [a.proc.pid, b.proc.pid, *family(proxy.proc.pid)]
        two, _ = call_rate("two workers behind Kamailio", proxy.port, pids, args.calls, workdir)
        print(f"\nratio two/one: {two / one:.2f} (os.cpu_count() = {os.cpu_count()})")
    finally:
        if proxy is not None:
            proxy.stop()
        b.stop()
        a.stop()
        hooks.stop()
        drop_schema(schema)


if __name__ == "__main__":
    main()
