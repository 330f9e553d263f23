"""A call cut by a crash ends at its process's last sign of life, not when someone noticed.

Two cases, each a real call (SIPp) answered and held by ``<Pause>``, the daemon running it
SIGKILLed about 2.5 s after the answer:

- cluster: node A dies; after A's lease node B closes the call. Its recorded ``end_time`` is A's
  last heartbeat (every 0.5 s at ``cluster.lease = 2``), so it lies within one heartbeat before
  the kill; ``duration`` and the final callback's ``CallDuration`` run from the answer to there
  (the take-over came 2-3 s later and used to be counted in);
- one SQLite node: restarted 2 s after the kill; the call ends at the previous run's last
  liveness stamp (every 1 s), not at the restart.
"""

from __future__ import annotations

import sqlite3
import time
from email.utils import parsedate_to_datetime

import pytest

from support.daemon import DaemonProcess
from support.pg import psql_value, schema_url
from support.sipp import scenario, start_call
from support.webhooks import Recorded, Reply, WebhookServer, rcml

pytestmark = [pytest.mark.e2e]

SLACK = 0.5  # s: a heartbeat delayed by a loaded machine


def _hold_a_call(node: DaemonProcess, webhooks: WebhookServer, number: str, workdir):  # type: ignore[no-untyped-def]
    """A call to ``number`` (created on ``node``) answered and held; its status route."""
    hold = webhooks.route(f"/cut/{number}", rcml('<Pause length="30"/>'))
    status = webhooks.route(f"/cut/{number}/status", Reply("", content_type="text/plain"))
    node.create_number(PhoneNumber=number, isSIP="true", VoiceUrl=hold, StatusCallback=status)
    held = start_call(scenario("uac_daemon_hangs_up.xml", workdir), node.sip_port,
                      service=number, workdir=workdir)  # fmt: skip
    [_, answered] = webhooks.wait_for(f"/cut/{number}/status", 2)
    assert answered.params["CallStatus"] == "in-progress"
    return held, f"/cut/{number}/status"


def _check(row: tuple[float, float, float, str], final: Recorded, cut: float, beat: float) -> None:
    answer, end, duration, status = row
    call = final.params
    print(f"cut {cut - answer:.2f}s after the answer; ended {end - answer:.2f}s after it "
          f"({cut - end:.2f}s before the kill); CallDuration {call['CallDuration']}")  # fmt: skip
    assert status == "completed" and call["CallStatus"] == "completed"
    assert cut - beat - SLACK <= end <= cut + 0.05  # the last sign of life, not the take-over
    assert duration == int(end - answer) and call["CallDuration"] == str(int(duration))
    assert int(cut - answer - beat - SLACK) <= int(duration) <= int(cut - answer)
    stamped = parsedate_to_datetime(call["Timestamp"]).timestamp()  # whole seconds
    assert end - 1 <= stamped <= end


@pytest.mark.postgres
def test_a_call_closed_by_a_survivor_ends_at_the_dead_nodes_last_heartbeat(
    tmp_path, schema: str, webhooks: WebhookServer
) -> None:
    env = {"RCMLROUTER_STORE_URL": schema_url(schema), "RCMLROUTER_CLUSTER_LEASE": "2"}
    a = DaemonProcess(tmp_path / "a", RCMLROUTER_CLUSTER_NODE_ID="cut-a", **env).start()
    b = DaemonProcess(tmp_path / "b", RCMLROUTER_CLUSTER_NODE_ID="cut-b", **env)
    b.account_sid, b.auth_token = a.account_sid, a.auth_token
    held = None
    try:
        b.start()
        held, route = _hold_a_call(a, webhooks, "66001", tmp_path)
        time.sleep(2.5)
        a.kill()
        cut = time.time()
        [*_, final] = webhooks.wait_for(route, 3, timeout=15)  # B took over after the lease
        assert b.wait_log("cluster.took_over") is not None
        [interrupted] = b.logs("calls.interrupted")
        assert interrupted["ended_at"] == {"heartbeat": 1}
        fields = psql_value(
            schema,
            "SELECT answer_time || ',' || end_time || ',' || duration || ',' || status "
            f"FROM calls WHERE sid = '{final.params['CallSid']}'",
        ).split(",")
        row = (float(fields[0]), float(fields[1]), float(fields[2]), fields[3])
        _check(row, final, cut, beat=0.5)  # heartbeat every lease/4
    finally:
        if held is not None:
            held.kill()
        b.stop()
        a.kill()


def test_a_restarted_node_ends_its_cut_call_at_its_last_liveness_stamp(
    tmp_path, webhooks: WebhookServer
) -> None:
    node = DaemonProcess(tmp_path / "one").start()
    held = None
    try:
        held, route = _hold_a_call(node, webhooks, "66002", tmp_path)
        time.sleep(2.5)
        node.kill()
        cut = time.time()
        time.sleep(2.0)  # the restart comes later: its time must not count
        node.start()
        [*_, final] = webhooks.wait_for(route, 3, timeout=15)
        assert node.logs("calls.interrupted")[-1]["ended_at"] == {"heartbeat": 1}
        with sqlite3.connect(node.db) as db:
            found = db.execute(
                "SELECT answer_time, end_time, duration, status FROM calls WHERE sid = ?",
                (final.params["CallSid"],),
            ).fetchone()
        _check(tuple(found), final, cut, beat=1.0)  # the SQLite stamp: every second
    finally:
        if held is not None:
            held.kill()
        node.stop()
