"""Kamailio (Debian package, started on loopback) in front of two rcmlrouter nodes.

SIPp calls to Kamailio spread over both nodes (hash over Call-ID); after one node is killed
and Kamailio's OPTIONS probes have noticed, every call goes to the other one and none fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from support.daemon import DaemonProcess
from support.kamailio import KamailioProxy, kamailio_path
from support.pg import drop_schema, new_schema_name, schema_url
from support.sipp import run_sipp, scenario
from support.webhooks import WebhookServer, rcml

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.skipif(kamailio_path() is None, reason="Kamailio is not installed"),
]

CALLS = 20


@pytest.fixture
def schema() -> Iterator[str]:
    name = new_schema_name()
    yield name
    drop_schema(name)


def _env(schema: str, node_id: str) -> dict[str, str]:
    return {
        "RCMLROUTER_STORE_URL": schema_url(schema),
        "RCMLROUTER_CLUSTER_NODE_ID": node_id,
        "RCMLROUTER_CLUSTER_LEASE": "2",
    }


def _completed(node: DaemonProcess) -> int:
    return len(node.logs("call.completed"))


def test_kamailio_spreads_calls_and_moves_them_off_a_dead_node(
    tmp_path, schema: str, webhooks: WebhookServer
) -> None:
    a = DaemonProcess(tmp_path / "a", **_env(schema, "node-a")).start()
    b = DaemonProcess(tmp_path / "b", **_env(schema, "node-b"))
    b.account_sid, b.auth_token = a.account_sid, a.auth_token
    b.start()
    proxy = KamailioProxy([a.sip_port, b.sip_port], tmp_path / "kamailio")
    try:
        proxy.start()
        url = webhooks.route("/kamailio/voice", rcml("<Hangup/>"))
        a.create_number(PhoneNumber="63001", isSIP="true", VoiceUrl=url)
        time.sleep(0.3)  # B hears about it (well under a second)
        result = run_sipp(scenario("uac_daemon_hangs_up.xml", tmp_path), proxy.port,
                          service="63001", workdir=tmp_path, calls=CALLS, rate=20)  # fmt: skip
        assert result.ok, result.errors[-2000:]
        a.wait_log("call.completed", count=1)
        on_a, on_b = _completed(a), _completed(b)
        print(f"spread: node A {on_a}, node B {on_b}")
        assert on_a + on_b == CALLS and on_a > 0 and on_b > 0
        b.kill()
        time.sleep(3.0)  # two missed OPTIONS probes (every second): B is out of the set
        result = run_sipp(scenario("uac_daemon_hangs_up.xml", tmp_path), proxy.port,
                          service="63001", workdir=tmp_path, calls=CALLS, rate=20)  # fmt: skip
        assert result.ok, result.errors[-2000:]  # no failed call after detection
        assert a.wait_log("call.completed", count=on_a + CALLS) is not None
        assert len(webhooks.requests("/kamailio/voice")) == 2 * CALLS
    finally:
        proxy.stop()
        b.kill()
        a.stop()
