"""POST Messages on two daemons sharing one PostgreSQL database (the real server, a fresh
schema): the Idempotency-Key holds across nodes (node A then node B: one message; twenty
concurrent duplicates spread over both nodes: one message), and a killed node's unsent messages
are sent by the survivor as the same requests.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from support.daemon import DaemonProcess
from support.pg import psql_value, schema_url
from support.sip_gateway import Arrival, MessageGateway

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

FROM = "+15105555555"
TO = "+15551230000"


def _env(schema: str, node_id: str, gateway: str) -> dict[str, str]:
    return {
        "RCMLROUTER_STORE_URL": schema_url(schema),
        "RCMLROUTER_CLUSTER_NODE_ID": node_id,
        "RCMLROUTER_CLUSTER_LEASE": "2",
        "RCMLROUTER_CLUSTER_VERSION_CHECK": "1",
        "RCMLROUTER_SMS_GATEWAY": gateway,
    }


def _pair(tmp_path: Path, schema: str, gateway: str) -> tuple[DaemonProcess, DaemonProcess]:
    a = DaemonProcess(tmp_path / "a", **_env(schema, "node-a", gateway)).start()
    b = DaemonProcess(tmp_path / "b", **_env(schema, "node-b", gateway))
    b.account_sid, b.auth_token = a.account_sid, a.auth_token
    b.start()
    a.create_number(PhoneNumber=FROM)
    return a, b


def _post(node: DaemonProcess, body: str, key: str | None = None) -> httpx.Response:
    url = f"http://127.0.0.1:{node.api_port}/2010-04-01/Accounts/{node.account_sid}/Messages.json"
    headers = {"Idempotency-Key": key} if key else {}
    return httpx.post(
        url,
        data={"To": TO, "From": FROM, "Body": body},
        headers=headers,
        auth=(node.account_sid, node.auth_token),
        timeout=10,
    )


def _count(schema: str, body: str) -> int:
    return int(psql_value(schema, f"SELECT COUNT(*) FROM messages WHERE body = '{body}'"))


def _wait_sent(schema: str, count: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        sent = int(psql_value(schema, "SELECT COUNT(*) FROM messages WHERE status = 'sent'"))
        if sent >= count or time.monotonic() > deadline:
            return sent
        time.sleep(0.1)


def test_one_key_across_two_nodes_is_one_message(tmp_path: Path, schema: str) -> None:
    with MessageGateway() as gateway:
        a, b = _pair(tmp_path, schema, gateway.uri)
        try:
            first = _post(a, "once across nodes", "cross-node-1")
            again = _post(b, "once across nodes", "cross-node-1")
            assert first.status_code == again.status_code == 201, again.text
            assert again.content == first.content and again.headers["Idempotent-Replayed"]
            other = _post(b, "changed on node B", "cross-node-1")
            assert (other.status_code, other.json()["code"]) == (422, 20422)

            # twenty duplicates at once, alternating nodes
            with ThreadPoolExecutor(20) as pool:
                answers = list(
                    pool.map(lambda i: _post((a, b)[i % 2], "burst", "cross-node-2"), range(20))
                )
            assert {r.status_code for r in answers} == {201}
            assert len({r.json()["sid"] for r in answers}) == 1
            assert _count(schema, "once across nodes") == _count(schema, "burst") == 1
            assert _wait_sent(schema, 2) == 2
            time.sleep(0.3)
            bodies = gateway.bodies()
            assert len(bodies["once across nodes"]) == len(bodies["burst"]) == 1
            keys = psql_value(schema, "SELECT COUNT(*) FROM idempotency_keys")
            assert keys == "2"
        finally:
            a.stop()
            b.stop()


def test_a_killed_nodes_unsent_messages_are_sent_by_the_survivor(
    tmp_path: Path, schema: str
) -> None:
    # the gateway never answers node A in time (A is killed first); node B at once: B's
    # resend of the stored request is what gets each message through
    slow: list[int] = []

    def delay(arrival: Arrival) -> float:
        return 30.0 if arrival.source[1] in slow else 0.0

    with MessageGateway(delay=delay) as gateway:
        a, b = _pair(tmp_path, schema, gateway.uri)
        slow.append(a.sip_port)
        try:
            sids = [_post(a, f"taken over {i}").json()["sid"] for i in range(5)]
            assert len(gateway.wait_for(5, timeout=5)) == 5  # all five sent once by A
            owners = psql_value(schema, "SELECT string_agg(DISTINCT owner, ',') FROM messages")
            assert owners == "node-a"
            a.kill()
            assert _wait_sent(schema, 5, timeout=20) == 5  # B claimed them after A's lease
            assert psql_value(schema, "SELECT string_agg(DISTINCT owner, ',') FROM messages") == (
                "node-b"
            )
            messages = gateway.messages()
            assert len(messages) == 5  # five messages, each under one Call-ID and CSeq
            assert all(len(arrivals) >= 2 for arrivals in messages.values())  # resent as is
            for sid in sids:
                status = psql_value(schema, f"SELECT status FROM messages WHERE sid = '{sid}'")
                assert status == "sent"
            took_over = b.wait_log("cluster.took_over", timeout=1)
            assert took_over is not None and took_over["outbound"] == 5
        finally:
            a.kill()
            b.stop()
