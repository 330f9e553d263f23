"""POST Calls on two daemons sharing one PostgreSQL database (the real server, a fresh schema):
an Idempotency-Key holds across nodes (one call), and calls a killed node left queued are
dialled by the survivor once it claims them (``cluster/work.py``), none twice.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from support.daemon import DaemonProcess
from support.pg import psql_value, schema_url
from support.sip_callee import SipCallee

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

FROM = "+15105555555"


def _env(schema: str, node_id: str, callee: SipCallee, cps: str) -> dict[str, str]:
    return {
        "RCMLROUTER_STORE_URL": schema_url(schema),
        "RCMLROUTER_CLUSTER_NODE_ID": node_id,
        "RCMLROUTER_CLUSTER_LEASE": "2",
        "RCMLROUTER_CLUSTER_VERSION_CHECK": "1",
        "RCMLROUTER_TRUNKS_CALLEE_URI": f"sip:127.0.0.1:{callee.port}",
        "RCMLROUTER_OUTBOUND_CPS": cps,
    }


def _pair(tmp_path: Path, schema: str, callee: SipCallee) -> tuple[DaemonProcess, DaemonProcess]:
    a = DaemonProcess(tmp_path / "a", **_env(schema, "node-a", callee, "1")).start()
    b = DaemonProcess(tmp_path / "b", **_env(schema, "node-b", callee, "50"))
    b.account_sid, b.auth_token = a.account_sid, a.auth_token
    b.start()
    a.create_number(PhoneNumber=FROM)
    return a, b


def _post(node: DaemonProcess, to: str, key: str | None = None) -> httpx.Response:
    url = f"http://127.0.0.1:{node.api_port}/2010-04-01/Accounts/{node.account_sid}/Calls.json"
    return httpx.post(
        url,
        data={"To": to, "From": FROM, "Twiml": "<Response><Hangup/></Response>"},
        headers={"Idempotency-Key": key} if key else {},
        auth=(node.account_sid, node.auth_token),
        timeout=10,
    )


def _statuses(schema: str) -> dict[str, str]:
    rows = psql_value(schema, "SELECT string_agg(sid || '=' || status, ',') FROM calls")
    return dict(item.split("=") for item in rows.split(",")) if rows else {}


def test_one_key_across_two_nodes_is_one_call(tmp_path: Path, schema: str) -> None:
    with SipCallee() as callee:
        a, b = _pair(tmp_path, schema, callee)
        try:
            first = _post(a, "+15550001001", "call-across-nodes")
            again = _post(b, "+15550001001", "call-across-nodes")
            assert first.status_code == again.status_code == 201, again.text
            assert again.content == first.content and again.headers["Idempotent-Replayed"]
            deadline = time.monotonic() + 10
            while _statuses(schema).get(first.json()["sid"]) != "completed":
                assert time.monotonic() < deadline, _statuses(schema)
                time.sleep(0.1)
            assert len(_statuses(schema)) == 1
            assert callee.calls() == {"+15550001001": callee.calls()["+15550001001"]}
            assert len(callee.calls()["+15550001001"]) == 1
        finally:
            a.stop()
            b.stop()


def test_a_killed_nodes_queued_calls_are_dialled_by_the_survivor(
    tmp_path: Path, schema: str
) -> None:
    with SipCallee() as callee:
        a, b = _pair(tmp_path, schema, callee)
        try:
            numbers = [f"+1555000200{i}" for i in range(5)]
            sids = [_post(a, number).json()["sid"] for number in numbers]  # A dials 1 a second
            a.kill()
            queued = [s for s, status in _statuses(schema).items() if status == "queued"]
            assert len(queued) >= 3, _statuses(schema)
            deadline = time.monotonic() + 20
            while any(_statuses(schema).get(sid) in ("queued", "initiated") for sid in sids):
                assert time.monotonic() < deadline, _statuses(schema)
                time.sleep(0.2)
            statuses = _statuses(schema)
            assert all(statuses[sid] == "completed" for sid in queued), statuses
            assert all(statuses[sid] in ("completed", "failed") for sid in sids), statuses
            dialled = callee.calls()
            assert all(len(dialled.get(n, ())) <= 1 for n in numbers), dialled  # never twice
            assert sum(1 for n in numbers if n in dialled) >= len(queued)
            owners = psql_value(
                schema,
                "SELECT string_agg(DISTINCT owner, ',') FROM calls WHERE sid IN ("
                + ",".join(f"'{sid}'" for sid in queued)
                + ")",
            )
            assert owners == "node-b"
            recovered = b.wait_log("calls.queued_recovered", timeout=1)
            assert recovered is not None and recovered["count"] == len(queued)
        finally:
            a.kill()
            b.stop()
