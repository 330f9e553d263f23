"""Live call control across two daemons on one PostgreSQL schema: a SIPp call lives on node A;
every update is sent to node B's API and reaches A through the command channel (NOTIFY with a
reply): redirects (their latency measured), a killed listener connection on A (reconnected),
a StatusCallback move, the hang-up, then 21220; and a killed owner."""

from __future__ import annotations

import asyncio
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.daemon import DaemonProcess
from support.pg import (
    cluster_env,
    psql_value,
    terminate_backends,
)
from support.sipp import run_sipp, scenario
from support.webhooks import Reply, WebhookServer, rcml

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

DIAL = "7101"
PAUSE = '<Response><Pause length="20"/></Response>'


def _post(node: DaemonProcess, client: httpx.Client, sid: str, **data: str) -> httpx.Response:
    url = (
        f"http://127.0.0.1:{node.api_port}/2010-04-01/Accounts/{node.account_sid}/Calls/{sid}.json"
    )
    return client.post(url, data=data)


def _health(node: DaemonProcess) -> dict[str, Any]:
    return dict(httpx.get(f"http://127.0.0.1:{node.api_port}/health", timeout=5).json())


def _listening_again(node: DaemonProcess) -> bool:
    commands = _health(node)["call_commands"]
    return bool(commands["reconnects"] == 1 and commands["listening"])


def test_updates_sent_to_node_b_reach_the_call_on_node_a(
    tmp_path: Path, schema: str, webhooks: WebhookServer
) -> None:
    a = DaemonProcess(tmp_path / "a", **cluster_env(schema, "node-a")).start()
    b = DaemonProcess(tmp_path / "b", **cluster_env(schema, "node-b"))
    b.account_sid, b.auth_token = a.account_sid, a.auth_token
    b.start()
    try:
        voice = webhooks.route("/cluster/voice", rcml('<Pause length="20"/>'))
        status = webhooks.route("/cluster/status", Reply("", content_type="text/plain"))
        moved = webhooks.route("/cluster/moved", Reply("", content_type="text/plain"))
        a.create_number(PhoneNumber=DIAL, isSIP="true", VoiceUrl=voice, StatusCallback=status)
        time.sleep(0.5)  # the number reaches A's snapshot (it was written through A)
        with ThreadPoolExecutor(1) as pool:
            caller = pool.submit(
                run_sipp,
                scenario("uac_daemon_hangs_up.xml", tmp_path),
                a.sip_port,
                service=DIAL,
                workdir=tmp_path,
            )
            [answered] = [
                r
                for r in webhooks.wait_for("/cluster/status", 2)
                if r.params["CallStatus"] == "in-progress"
            ]
            sid = answered.params["CallSid"]
            assert psql_value(schema, f"SELECT owner FROM calls WHERE sid = '{sid}'") == "node-a"
            with httpx.Client(auth=(a.account_sid, a.auth_token), timeout=15) as client:
                latencies = []
                for _ in range(40):
                    started = time.perf_counter()
                    response = _post(b, client, sid, Twiml=PAUSE)
                    latencies.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text
                    assert response.json()["status"] == "in-progress"
                # A's listener connection is killed: it reconnects, and updates reach it again
                assert asyncio.run(terminate_backends("rcmlrouter-ctl node-a")) == 1
                deadline = time.monotonic() + 10
                while not _listening_again(a):
                    assert time.monotonic() < deadline, "A's command channel did not come back"
                    time.sleep(0.05)
                again_redirected = _post(b, client, sid, Twiml=PAUSE)
                assert again_redirected.status_code == 200, again_redirected.text
                moved_to = _post(b, client, sid, StatusCallback=moved)
                assert moved_to.status_code == 200, moved_to.text
                hung_up = _post(b, client, sid, Status="completed")
                assert hung_up.status_code == 200, hung_up.text
                assert hung_up.json()["status"] == "completed"
                assert hung_up.json()["end_time"] is not None
                result = caller.result(timeout=30)
                assert result.ok, result.errors[-2000:]
                again = _post(b, client, sid, Status="completed")
                assert (again.status_code, again.json()["code"]) == (400, 21220)
        [final] = webhooks.wait_for("/cluster/moved", 1)
        assert (final.params["SequenceNumber"], final.params["CallStatus"]) == ("2", "completed")
        assert [r.params["CallStatus"] for r in webhooks.requests("/cluster/status")] == [
            "ringing",
            "in-progress",
        ]
        assert _health(a)["call_commands"]["served"] == 43
        metrics = httpx.get(f"http://127.0.0.1:{b.api_port}/metrics", timeout=5).text
        counted = 'rcmlrouter_call_updates_total{outcome="applied",route="remote"} 43.0'
        ordered = 'rcmlrouter_call_updates_total{route="remote",outcome="applied"} 43.0'
        assert counted in metrics or ordered in metrics, metrics[-3000:]
        latencies.sort()
        # issue 18: p99 < 100 ms; generous here (a loaded 2-core machine runs other tests):
        # tests/bench/call_update_bench.py measures it
        assert statistics.median(latencies) < 0.1, latencies
        assert latencies[-1] < 2.0, latencies
    finally:
        b.stop()
        a.stop()


def test_a_call_whose_node_died_is_never_a_hang(
    tmp_path: Path, schema: str, webhooks: WebhookServer
) -> None:
    a = DaemonProcess(tmp_path / "a", **cluster_env(schema, "node-a")).start()
    b = DaemonProcess(tmp_path / "b", **cluster_env(schema, "node-b"))
    b.account_sid, b.auth_token = a.account_sid, a.auth_token
    b.start()
    try:
        voice = webhooks.route("/dead/voice", rcml('<Pause length="20"/>'))
        status = webhooks.route("/dead/status", Reply("", content_type="text/plain"))
        a.create_number(PhoneNumber="7102", isSIP="true", VoiceUrl=voice, StatusCallback=status)
        time.sleep(0.5)
        with ThreadPoolExecutor(1) as pool:
            caller = pool.submit(
                run_sipp,
                scenario("uac_daemon_hangs_up.xml", tmp_path),
                a.sip_port,
                service="7102",
                workdir=tmp_path,
                timeout=5,
            )
            [answered] = [
                r
                for r in webhooks.wait_for("/dead/status", 2)
                if r.params["CallStatus"] == "in-progress"
            ]
            sid = answered.params["CallSid"]
            a.kill()
            caller.result(timeout=40)  # SIPp gives up on the dead node
        time.sleep(2.5)  # one lease: A is silent, or B has claimed and closed the call
        with httpx.Client(auth=(a.account_sid, a.auth_token), timeout=15) as client:
            started = time.monotonic()
            first = _post(b, client, sid, Status="completed")
            assert time.monotonic() - started < 4  # not the 8 s wait for a reply
            assert (first.status_code, first.json()["code"]) in ((503, 20503), (400, 21220))
            deadline = time.monotonic() + 10
            while (answer := _post(b, client, sid, Status="completed")).status_code != 400:
                assert time.monotonic() < deadline, answer.text
                time.sleep(0.2)
            assert answer.json()["code"] == 21220  # the survivor closed it
        final = webhooks.wait_for("/dead/status", 3)[-1]
        assert final.params["CallStatus"] == "completed"  # sent by node B
    finally:
        b.stop()
        a.kill()
