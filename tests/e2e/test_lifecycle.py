"""Daemon lifecycle: drain on SIGTERM, overload refusal, health and metrics endpoints."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from support.daemon import DaemonProcess
from support.rawsip import RawUac
from support.sipp import run_sipp, scenario, start_call
from support.webhooks import WebhookServer, rcml

pytestmark = pytest.mark.e2e


def background_call(node: DaemonProcess, number: str, workdir) -> subprocess.Popen[str]:
    return start_call(
        scenario("uac_daemon_hangs_up.xml", workdir),
        node.sip_port,
        service=number,
        workdir=workdir,
    )


def test_sigterm_drains_then_hangs_up_calls(tmp_path, webhooks: WebhookServer) -> None:
    node = DaemonProcess(tmp_path / "node", RCMLROUTER_SIP_DRAIN_TIMEOUT="1").start()
    url = webhooks.route("/voice/drain", rcml('<Pause length="60"/>'))
    node.create_number(PhoneNumber="55001", isSIP="true", VoiceUrl=url)
    sipp = background_call(node, "55001", tmp_path)
    try:
        assert webhooks.wait_for("/voice/drain", 1, timeout=10)
        time.sleep(0.5)  # answered and holding
        started = time.monotonic()
        assert node.stop(timeout=15) == 0
        assert time.monotonic() - started < 8
        assert sipp.wait(15) == 0  # SIPp received the daemon's BYE
    finally:
        if sipp.poll() is None:
            sipp.kill()
    line = node.logs("call.completed")[-1]
    assert line["end_cause"] in ("drain", "local-bye") and line["call_status"] == "completed"
    assert node.logs("stopped")


def test_calls_over_the_limit_get_503(tmp_path, webhooks: WebhookServer) -> None:
    node = DaemonProcess(tmp_path / "node", RCMLROUTER_SIP_MAX_CALLS="1").start()
    try:
        url = webhooks.route("/voice/limit", rcml('<Pause length="4"/>', "<Hangup/>"))
        node.create_number(PhoneNumber="55002", isSIP="true", VoiceUrl=url)
        sipp = background_call(node, "55002", tmp_path)
        assert webhooks.wait_for("/voice/limit", 1, timeout=10)
        result = run_sipp(
            scenario("uac_refused.xml.in", tmp_path, code="503"),
            node.sip_port,
            service="55002",
            workdir=tmp_path,
        )
        assert result.ok, result.errors[-2000:]
        assert sipp.wait(20) == 0
    finally:
        node.stop()


def test_health_and_metrics(daemon: DaemonProcess) -> None:
    base = f"http://127.0.0.1:{daemon.api_port}"
    health = httpx.get(f"{base}/health", timeout=5)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    metrics = httpx.get(f"{base}/metrics", timeout=5)
    assert metrics.status_code == 200
    assert "rcmlrouter_routing_numbers" in metrics.text
    beats = [
        float(line.rpartition(" ")[2])
        for line in metrics.text.splitlines()
        if line.startswith("rcmlrouter_loop_lag_seconds_count")
    ]
    assert beats and beats[0] > 0  # the heartbeat's lateness is measured from the start


def test_demo_rcml_is_served(daemon: DaemonProcess) -> None:
    base = f"http://127.0.0.1:{daemon.api_port}"
    demo = httpx.get(f"{base}/demos/hello.xml", timeout=5)
    assert demo.status_code == 200 and "<Pause" in demo.text
    assert httpx.get(f"{base}/demos/..%2Fcli.py", timeout=5).status_code == 404


def test_advertised_address_is_in_the_contact(tmp_path) -> None:
    node = DaemonProcess(tmp_path / "node", RCMLROUTER_SIP_ADVERTISE="sip.example.test").start()
    uac = RawUac(node.sip_port, "1234")
    try:
        uac.send(uac.invite())
        got = uac.receive_until(lambda m: m.status == 200, 5)
        assert got and got[-1].status == 200
        assert f"sip.example.test:{node.sip_port}" in (got[-1].header("Contact") or "")
        uac.send(uac.ack(got[-1].header("To") or ""))
    finally:
        uac.close()
        node.stop()


def test_a_busy_port_is_a_clear_startup_error(daemon: DaemonProcess, tmp_path) -> None:
    for key, value, words in (
        ("RCMLROUTER_API_LISTEN", f"127.0.0.1:{daemon.api_port}", "api.listen"),
        ("RCMLROUTER_SIP_LISTEN", f"udp:127.0.0.1:{daemon.sip_port}", "sip.listen"),
    ):
        other = DaemonProcess(tmp_path / key, **{key: value})
        other.init()
        result = other.cli("run", check=False)
        assert result.returncode == 2, result.stdout[-500:] + result.stderr[-500:]
        assert words in result.stderr and "Traceback" not in result.stderr


def test_an_obsolete_webhooks_client_key_starts_with_a_warning(tmp_path) -> None:
    node = DaemonProcess(tmp_path / "node", RCMLROUTER_WEBHOOKS_CLIENT="aiohttp").start()
    try:
        warning = node.wait_log("config.obsolete_key", timeout=5)
        assert warning is not None and warning["key"] == "webhooks.client"
        assert warning["value"] == "aiohttp" and warning["level"] == "warning"
    finally:
        node.stop()
