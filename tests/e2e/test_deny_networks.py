"""``[webhooks] deny_networks`` in the real daemon, and callbacks given up after ``max_age``.

The daemon denies 127.0.0.2/32 only: the denied server listens there (loopback: nothing leaves
the host even if the check failed), the allowed one on 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.daemon import DaemonProcess
from support.faultserver import FaultServer
from support.sipp import run_sipp, scenario

pytestmark = pytest.mark.e2e


@pytest.fixture
def servers() -> Iterator[tuple[FaultServer, FaultServer]]:
    denied, allowed = FaultServer("127.0.0.2").start(), FaultServer("127.0.0.1").start()
    yield denied, allowed
    denied.stop()
    allowed.stop()


def _notifications(node: DaemonProcess) -> list[dict[str, Any]]:
    with node.api() as api:
        body = api.get("/Notifications.json", params={"PageSize": 1000}).json()
    key = next(k for k in body if isinstance(body[k], list))
    return list(body[key])


def test_denied_webhook_goes_to_the_fallback_and_denied_callbacks_expire(
    tmp_path: Path, servers: tuple[FaultServer, FaultServer]
) -> None:
    denied, allowed = servers
    node = DaemonProcess(
        tmp_path / "node",
        RCMLROUTER_WEBHOOKS_DENY_NETWORKS="127.0.0.2/32",
        RCMLROUTER_CALLBACKS_MAX_AGE="2",
    ).start()
    try:
        node.create_number(
            PhoneNumber="88200",
            isSIP="true",
            VoiceUrl=denied.url("/rcml"),
            VoiceFallbackUrl=allowed.url("/rcml"),
            StatusCallback=denied.url("/callback"),
        )
        result = run_sipp(
            scenario("uac_daemon_hangs_up.xml", tmp_path), node.sip_port, service="88200",
            workdir=tmp_path,
        )  # fmt: skip
        assert result.ok, result.errors[-2000:]
        [fallback] = allowed.hits("/rcml")
        assert fallback.params["ErrorCode"] == "11205"
        assert fallback.params["ErrorUrl"] == denied.url("/rcml")
        # ringing, in-progress, completed: each tried until 2 s old, then given up, in order
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            codes = [int(n["error_code"]) for n in _notifications(node)]
            if codes.count(15003) >= 3:
                break
            time.sleep(0.2)
        assert codes.count(11205) == 1 and codes.count(15003) == 3, codes
        assert denied.hits() == []  # nothing ever reached the denied address
        expired = node.logs("callback.expired")
        assert [line["sequence"] for line in expired] == [0, 1, 2]
        metrics = httpx.get(f"http://127.0.0.1:{node.api_port}/metrics").text
        assert "rcmlrouter_callbacks_expired_total 3.0" in metrics
        assert "rcmlrouter_callbacks_oldest_age_seconds 0.0" in metrics
    finally:
        node.stop()
