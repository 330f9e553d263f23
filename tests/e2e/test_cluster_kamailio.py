"""Kamailio (Debian package, started on loopback) in front of two rcmlrouter nodes.

SIPp calls to Kamailio spread over both nodes (hash over Call-ID). Then a steady stream of calls
(:class:`InviteTimer`, each call's setup timed) runs while one node is SIGKILLed: the test
MEASURES the failover, the time from the kill until the last call that still waited on the dead
node (Kamailio's ``fr_timer``) was sent, and how many waited, and holds it to one probe interval
plus a margin. A dead node must stay out of the set (a probe that times out is a local 408,
which must not count as an answer) and come back once it answers probes again.
"""

from __future__ import annotations

import signal
import time

import pytest

from support.daemon import DaemonProcess
from support.invite_timer import Failover, InviteTimer, failover
from support.kamailio import KamailioProxy, kamailio_path
from support.pg import schema_url
from support.sipp import run_sipp, scenario, start_call
from support.webhooks import WebhookServer, rcml

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.skipif(kamailio_path() is None, reason="Kamailio is not installed"),
]

CALLS = 20
RATE = 20  # calls/s while a node dies
AFTER_KILL = 5.0  # s of calls after the kill (the old config put the dead node back each probe)
MARGIN = 0.6  # s over the probe interval: scheduling on a loaded 2-core machine


def _env(schema: str, node_id: str) -> dict[str, str]:
    return {
        "RCMLROUTER_STORE_URL": schema_url(schema),
        "RCMLROUTER_CLUSTER_NODE_ID": node_id,
        "RCMLROUTER_CLUSTER_LEASE": "2",
        "RCMLROUTER_SIP_DRAIN_TIMEOUT": "20",  # a held call keeps a draining node draining
    }


def _completed(node: DaemonProcess) -> int:
    return len(node.logs("call.completed"))


def _timed_calls(proxy: KamailioProxy, number: str, seconds: float, kill=None) -> Failover:  # type: ignore[no-untyped-def]
    """Calls at RATE/s for ``seconds`` (``kill()`` one second in); what they waited."""
    timer = InviteTimer(proxy.port, number).start(RATE)
    killed = time.monotonic()
    if kill is not None:
        time.sleep(1.0)
        kill()
        killed = time.monotonic()
    time.sleep(seconds)
    calls = timer.stop()
    return failover(calls, killed, slow=0.8 * proxy.fr_timer / 1000)


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
        reject = webhooks.route("/kamailio/reject", rcml("<Reject/>"))
        a.create_number(PhoneNumber="63002", isSIP="true", VoiceUrl=reject)
        time.sleep(0.3)  # B hears about it (well under a second)
        result = run_sipp(scenario("uac_daemon_hangs_up.xml", tmp_path), proxy.port,
                          service="63001", workdir=tmp_path, calls=CALLS, rate=20)  # fmt: skip
        assert result.ok, result.errors[-2000:]
        a.wait_log("call.completed", count=1)
        on_a, on_b = _completed(a), _completed(b)
        print(f"spread: node A {on_a}, node B {on_b}")
        assert on_a + on_b == CALLS and on_a > 0 and on_b > 0

        lost = _timed_calls(proxy, "63002", AFTER_KILL, kill=b.kill)
        bound = proxy.ping_interval + MARGIN
        print(f"failover: {lost.outage:.2f}s after the kill, {lost.waited} of {lost.after} "
              f"calls waited, {lost.failed} failed (bound {bound:.1f}s)")  # fmt: skip
        assert lost.failed == 0
        assert lost.waited > 0 and lost.outage <= bound  # out within one probe interval

        b.start()  # answers probes again: back in the set within one probe interval
        time.sleep(proxy.ping_interval + MARGIN)
        before = _completed(b)
        back = _timed_calls(proxy, "63002", 2.0)
        print(f"back: node B took {_completed(b) - before} of {back.after} calls")
        assert back.waited == 0 and back.failed == 0
        assert b.wait_log("call.completed", count=before + 1) is not None

        # draining (SIGTERM with a call held): B answers probes 503 and leaves the set, so
        # after one probe interval no INVITE goes to it (none refused 503, none failed over)
        hold = webhooks.route("/kamailio/hold", rcml('<Pause length="20"/>'))
        a.create_number(PhoneNumber="63003", isSIP="true", VoiceUrl=hold)
        time.sleep(0.3)
        held = start_call(scenario("uac_daemon_hangs_up.xml", tmp_path), b.sip_port,
                          service="63003", workdir=tmp_path)  # fmt: skip
        webhooks.wait_for("/kamailio/hold", 1)
        assert b.proc is not None
        b.proc.send_signal(signal.SIGTERM)
        assert b.wait_log("stopping") is not None
        time.sleep(proxy.ping_interval + MARGIN)
        seen = len(proxy.output)
        drained = _timed_calls(proxy, "63002", 2.0)
        moved = [line for line in proxy.output[seen:] if "failing over" in line]
        print(f"draining: {len(moved)} of {drained.after} calls went to B first")
        assert drained.waited == 0 and drained.failed == 0 and not moved
        held.kill()
    finally:
        proxy.stop()
        b.kill()
        a.stop()
