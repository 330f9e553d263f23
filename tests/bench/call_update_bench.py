"""Live call control benchmark: ``POST Calls/{CA}`` latency, the call on node A, the request on
node B (PostgreSQL NOTIFY to A and A's reply), next to same-run baselines. Run as a script
(not collected by pytest):

    .venv/bin/python tests/bench/call_update_bench.py [--updates 200] [--rounds 3]

Two real daemons (``rcmlrouter run``) on one fresh schema of the test PostgreSQL server; a SIPp
caller on node A in a ``<Pause length="20"/>`` (a new call each round). One client, sequential
requests (latency, not throughput), ``--updates`` of each case per round:

  1. read B     GET Calls/{CA}.json on node B (the read API: auth + one store read)
  2. redirect A POST Calls/{CA}.json Twiml=<Pause/> on node A (in-process: the local update)
  3. redirect B the same on node B: NOTIFY to A, A redirects the call, A's reply, B reads
  4. callback B POST StatusCallback=… on node B (A commits the call's record before answering)

The call must still be in progress after every update (each redirect restarts the pause), and
the round ends with Status=completed through B (SIPp must get the BYE). Columns: p50 / p99 /
max in ms, medians over the rounds; the ratio is p50 against the read baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from support.daemon import DaemonProcess  # noqa: E402
from support.pg import drop_schema, new_schema_name, schema_url  # noqa: E402
from support.sipp import run_sipp, scenario  # noqa: E402
from support.webhooks import Reply, WebhookServer, rcml  # noqa: E402

PAUSE = '<Response><Pause length="20"/></Response>'
CASES = ("read B", "redirect A", "redirect B", "callback B")


def env(schema: str, node: str) -> dict[str, str]:
    return {
        "RCMLROUTER_STORE_URL": schema_url(schema),
        "RCMLROUTER_CLUSTER_NODE_ID": node,
        "RCMLROUTER_LOG_LEVEL": "warning",
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def wait_answered(webhooks: WebhookServer, seen: set[str]) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for request in webhooks.requests("/bench/status"):
            sid = request.params["CallSid"]
            if request.params["CallStatus"] == "in-progress" and sid not in seen:
                seen.add(sid)
                return sid
        time.sleep(0.02)
    raise RuntimeError("the call was not answered")


def one_round(
    a: DaemonProcess, b: DaemonProcess, webhooks: WebhookServer, work: Path, n: int, seen: set[str]
) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {case: [] for case in CASES}
    moved = webhooks.url("/bench/moved")
    with ThreadPoolExecutor(1) as pool:
        caller = pool.submit(
            run_sipp, scenario("uac_daemon_hangs_up.xml", work), a.sip_port, service="7201",
            workdir=work,
        )  # fmt: skip
        sid = wait_answered(webhooks, seen)
        path = f"/2010-04-01/Accounts/{a.account_sid}/Calls/{sid}.json"
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{a.api_port}", auth=auth(a)) as on_a,
            httpx.Client(base_url=f"http://127.0.0.1:{b.api_port}", auth=auth(a)) as on_b,
        ):
            requests: dict[str, Callable[[], httpx.Response]] = {
                "read B": lambda: on_b.get(path),
                "redirect A": lambda: on_a.post(path, data={"Twiml": PAUSE}),
                "redirect B": lambda: on_b.post(path, data={"Twiml": PAUSE}),
                "callback B": lambda: on_b.post(path, data={"StatusCallback": moved}),
            }
            for _ in range(n):
                for case, send in requests.items():
                    started = time.perf_counter()
                    response = send()
                    timings[case].append(time.perf_counter() - started)
                    if response.status_code != 200 or response.json()["status"] != "in-progress":
                        raise RuntimeError(f"{case}: {response.status_code} {response.text}")
            end = on_b.post(path, data={"Status": "completed"})
            if end.json()["status"] != "completed":
                raise RuntimeError(f"hang-up: {end.text}")
        result = caller.result(timeout=30)
        if not result.ok:
            raise RuntimeError(f"SIPp: {result.errors[-2000:]}")
    return timings


def auth(node: DaemonProcess) -> tuple[str, str]:
    return (node.account_sid, node.auth_token)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    schema = new_schema_name()
    webhooks = WebhookServer().start()
    with tempfile.TemporaryDirectory(prefix="call-update-bench-") as tmp:
        work = Path(tmp)
        a = DaemonProcess(work / "a", **env(schema, "node-a")).start()
        b = DaemonProcess(work / "b", **env(schema, "node-b"))
        b.account_sid, b.auth_token = a.account_sid, a.auth_token
        b.start()
        try:
            voice = webhooks.route("/bench/voice", rcml('<Pause length="20"/>'))
            status = webhooks.route("/bench/status", Reply("", content_type="text/plain"))
            webhooks.route("/bench/moved", Reply("", content_type="text/plain"))
            a.create_number(PhoneNumber="7201", isSIP="true", VoiceUrl=voice, StatusCallback=status)
            time.sleep(0.5)
            seen: set[str] = set()
            rounds = [
                one_round(a, b, webhooks, work, args.updates, seen) for _ in range(args.rounds)
            ]
        finally:
            b.stop()
            a.stop()
            webhooks.stop()
            drop_schema(schema)
    report(rounds, args.updates)


def report(rounds: list[dict[str, list[float]]], n: int) -> None:
    print(f"POST Calls/{{CA}} latency, {n} sequential requests per case, {len(rounds)} rounds")
    print(f"{'case':<12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p50 vs read B':>14}")
    base = statistics.median(statistics.median(r["read B"]) for r in rounds)
    for case in CASES:
        p50 = statistics.median(statistics.median(r[case]) for r in rounds)
        p99 = statistics.median(percentile(r[case], 0.99) for r in rounds)
        worst = statistics.median(max(r[case]) for r in rounds)
        ms = (p50 * 1000, p99 * 1000, worst * 1000)
        print(f"{case:<12} {ms[0]:>8.2f} {ms[1]:>8.2f} {ms[2]:>8.2f} {p50 / base:>13.2f}x")


if __name__ == "__main__":
    main()
