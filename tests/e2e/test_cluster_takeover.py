"""kill -9 of the node holding undelivered callbacks: the other node finishes its work.

Node A takes three short calls and one long one while their StatusCallback receiver is down, so
A holds every event undelivered (and one call in progress). A is SIGKILLed and the receiver
comes up. After A's lease (2 s here) node B claims A's events, calls and messages: every call's
callbacks arrive in order (ringing, in-progress, completed; SequenceNumber 0, 1, 2), each event
once, the held call closed "completed" by B with the final callback it owed. (A redelivery of an
event whose 2xx raced the kill would be allowed; it is counted and printed.)
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from support.daemon import DaemonProcess
from support.pg import cluster_env, psql_value
from support.ports import free_port
from support.sipp import run_sipp, scenario, start_call
from support.webhooks import Reply, WebhookServer, rcml

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def test_a_killed_nodes_callbacks_are_delivered_by_the_survivor(
    tmp_path, schema: str, webhooks: WebhookServer
) -> None:
    a = DaemonProcess(tmp_path / "a", **cluster_env(schema, "node-a")).start()
    b = DaemonProcess(tmp_path / "b", **cluster_env(schema, "node-b"))
    b.account_sid, b.auth_token = a.account_sid, a.auth_token
    b.start()
    port = free_port()
    callback = f"http://127.0.0.1:{port}/status"  # nobody listens yet
    held = None
    receiver = None
    try:
        short = webhooks.route("/takeover/short", rcml("<Hangup/>"))
        long = webhooks.route("/takeover/long", rcml('<Pause length="30"/>'))
        a.create_number(PhoneNumber="62001", isSIP="true", VoiceUrl=short, StatusCallback=callback)
        a.create_number(PhoneNumber="62002", isSIP="true", VoiceUrl=long, StatusCallback=callback)
        for _ in range(3):
            result = run_sipp(scenario("uac_daemon_hangs_up.xml", tmp_path), a.sip_port,
                              service="62001", workdir=tmp_path)  # fmt: skip
            assert result.ok, result.errors[-2000:]
        held = start_call(scenario("uac_daemon_hangs_up.xml", tmp_path), a.sip_port,
                          service="62002", workdir=tmp_path)  # fmt: skip
        assert len(webhooks.wait_for("/takeover/long", 1)) == 1
        assert a.wait_log("call.completed", count=3) is not None
        time.sleep(0.5)  # the held call's in-progress checkpoint is committed
        pending = int(psql_value(schema, "SELECT COUNT(*) FROM callback_outbox"))
        assert pending >= 3 * 3 + 2  # nothing was delivered
        owners = psql_value(schema, "SELECT string_agg(DISTINCT owner, ',') FROM callback_outbox")
        assert owners == "node-a"
        a.kill()
        killed = time.monotonic()
        receiver = WebhookServer(port).start()
        receiver.route("/status", Reply("", content_type="text/plain"))
        events = receiver.wait_for("/status", 3 * 3 + 3, timeout=30)
        took = time.monotonic() - killed
        by_call: dict[str, list[tuple[int, str]]] = {}
        for event in events:
            by_call.setdefault(event.params["CallSid"], []).append(
                (int(event.params["SequenceNumber"]), event.params["CallStatus"])
            )
        assert len(by_call) == 4
        for sequence in by_call.values():
            assert sequence == [(0, "ringing"), (1, "in-progress"), (2, "completed")]
        time.sleep(1.0)  # nothing more comes
        counts = Counter(
            (e.params["CallSid"], e.params["SequenceNumber"]) for e in receiver.requests("/status")
        )
        repeated = {key: n for key, n in counts.items() if n > 1}
        print(f"taken over after {took:.1f}s; redelivered events: {len(repeated)} {repeated}")
        assert not repeated  # the receiver was down before the kill: no 2xx could race it
        assert b.wait_log("cluster.took_over") is not None
        assert b.logs("cluster.took_over")[0]["dead_nodes"] == ["node-a"]
        assert psql_value(schema, "SELECT COUNT(*) FROM callback_outbox") == "0"
        assert psql_value(schema, "SELECT COUNT(*) FROM calls WHERE end_time IS NULL") == "0"
        statuses = psql_value(schema, "SELECT string_agg(DISTINCT status, ',') FROM calls")
        assert statuses == "completed"
    finally:
        if held is not None and held.poll() is None:
            held.kill()
        if receiver is not None:
            receiver.stop()
        b.stop()
        a.kill()
