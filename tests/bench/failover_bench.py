"""Failover benchmark: how long new calls wait on a node killed behind Kamailio.

Run: flock /work/coord/bench.lock .venv/bin/python tests/bench/failover_bench.py [--rounds 3]

Everything on 127.0.0.1: one throw-away PostgreSQL schema, two real daemons (A, B) and Kamailio
with config/kamailio/kamailio.cfg at its shipped timers (DS_PING_INTERVAL 2 s, FR_TIMER 2000 ms).
Each round sends INVITEs at ``--rate``/s to a number answering ``<Reject/>`` (every call's setup
timed), ``kill -9``s node B after 2 s, goes on for ``--after`` s, then restarts B and waits
until it takes calls again. Per setting of ``ds_ping_reply_codes`` (the old ``class=2;class=4``
as the same-run baseline, the shipped ``class=2``): the outage (kill -> the last call that
still waited on B was sent) and how many calls waited (setup >= 0.8 x FR_TIMER) or failed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.daemon import DaemonProcess
from support.invite_timer import Failover, InviteTimer, failover
from support.kamailio import KamailioProxy
from support.pg import drop_schema, new_schema_name, schema_url
from support.webhooks import WebhookServer, rcml

SETTINGS = {"old class=2;class=4": '"class=2;class=4"', "shipped class=2": '"class=2"'}
NUMBER = "65001"


def one_round(
    proxy: KamailioProxy, b: DaemonProcess, rate: float, after: float
) -> tuple[Failover, int]:
    timer = InviteTimer(proxy.port, NUMBER).start(rate)
    time.sleep(2.0)
    b.kill()
    killed = time.monotonic()
    time.sleep(after)
    calls = timer.stop(grace=proxy.fr_timer / 1000 * 3)
    late = sum(
        1 for c in calls if c.sent >= killed + 10 and (c.setup is None or c.setup >= 1.6)
    )  # started 10 s or more after the kill and still waited (the count)
    result = failover(calls, killed, slow=0.8 * proxy.fr_timer / 1000)
    b.start()
    time.sleep(proxy.ping_interval + 1.0)  # answered a probe: back in the set
    return result, late


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--after", type=float, default=20.0)
    args = parser.parse_args()
    schema = new_schema_name()
    workdir = Path(tempfile.mkdtemp(prefix="failover-bench-"))
    env = {
        "RCMLROUTER_STORE_URL": schema_url(schema),
        "RCMLROUTER_LOG_LEVEL": "warning",
        "RCMLROUTER_CLUSTER_LEASE": "2",
    }
    a = DaemonProcess(workdir / "a", RCMLROUTER_CLUSTER_NODE_ID="fo-a", **env)
    b = DaemonProcess(workdir / "b", RCMLROUTER_CLUSTER_NODE_ID="fo-b", **env)
    hooks = WebhookServer().start()
    try:
        a.start()
        b.account_sid, b.auth_token = a.account_sid, a.auth_token
        b.start()
        url = hooks.route("/bench/reject", rcml("<Reject/>"))
        a.create_number(PhoneNumber=NUMBER, isSIP="true", VoiceUrl=url)
        print(f"\n## Failover: kill -9 of one of two nodes, {args.rate:.0f} calls/s, "
              f"FR_TIMER 2000 ms, probes every 2 s, {args.rounds} rounds each\n")  # fmt: skip
        print("| ds_ping_reply_codes | outage s (median, max) | calls waited (median, max) "
              "| waited >= 10 s after the kill | failed |")  # fmt: skip
        print("|---|---|---|---|---|")
        for label, codes in SETTINGS.items():
            proxy = KamailioProxy(
                [a.sip_port, b.sip_port], workdir / f"kamailio-{len(label)}",
                children=2, fr_timer=2000, ping_interval=2,
                defines={"DS_PING_REPLY_CODES": codes},
            ).start()  # fmt: skip
            time.sleep(3.0)
            try:
                rounds = [one_round(proxy, b, args.rate, args.after) for _ in range(args.rounds)]
            finally:
                proxy.stop()
            outages = [r.outage for r, _ in rounds]
            waited = [r.waited for r, _ in rounds]
            late = sum(n for _, n in rounds)
            failed = sum(r.failed for r, _ in rounds)
            outage = f"{statistics.median(outages):.2f}, {max(outages):.2f}"
            waits = f"{statistics.median(waited):.0f}, {max(waited)}"
            print(f"| {label} | {outage} | {waits} | {late} | {failed} |")
    finally:
        b.kill()
        a.stop()
        hooks.stop()
        drop_schema(schema)


if __name__ == "__main__":
    main()
