"""Faults against the real daemon (issue 11, "Faults and load").

Webhooks: a primary that refuses, resets, hangs, trickles, answers 404/500, the wrong content
type or a truncated body sends the call to its fallback within the URL's own budget (``#ct=…&rt=…
&tt=…``), and the call's StatusCallback receiver gets exactly one ``completed``.

Store: SQLite locked by another process, or its disk full: calls are refused ``503`` with
``Retry-After`` within the commit wait (never a hang), the API answers ``503``, the logs say why,
and once the lock is released or space is freed calls route again without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.daemon import DaemonProcess
from support.faultserver import FaultServer
from support.ports import free_port
from support.sipp import run_sipp, scenario

pytestmark = pytest.mark.e2e

# connect 0.5 s, read 0.7 s, total 1.5 s: the budget of one primary attempt
FRAGMENT = "#ct=500&rt=700&tt=1500"
BUDGET = 1.5
SLACK = 1.0  # the daemon's own work, scheduling on a loaded 2-core VM

FAULTS = {
    # kind: (path on the fault server or None for a closed port, ErrorCode at the fallback)
    "refuses": (None, "11205"),
    "resets": ("/reset", "11205"),
    "hangs": ("/hang", "11205"),
    "trickles": ("/trickle", "11205"),
    "answers-404": ("/status/404", "11200"),
    "answers-500": ("/status/500", "11200"),
    "wrong-content-type": ("/wrong-type", "12300"),
    "truncated-body": ("/truncated", "11206"),
}


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    server = FaultServer().start()
    yield server
    server.stop()


def _statuses(server: FaultServer, dial: str, wait: float = 10.0) -> list[tuple[str, str]]:
    """(CallSid, CallStatus) of the callbacks for ``dial`` once ``completed`` came (and 0.5 s
    more, for a duplicate to show up)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        hits = [hit for hit in server.hits("/callback") if hit.params.get("n") == dial]
        if any(hit.params["CallStatus"] == "completed" for hit in hits):
            break
        time.sleep(0.05)
    time.sleep(0.5)
    hits = [hit for hit in server.hits("/callback") if hit.params.get("n") == dial]
    return [(hit.params["CallSid"], hit.params["CallStatus"]) for hit in hits]


@pytest.mark.parametrize("kind", list(FAULTS))
def test_webhook_fault_goes_to_the_fallback_within_budget(
    daemon: DaemonProcess, faults: FaultServer, workdir: Path, dial: str, kind: str
) -> None:
    path, code = FAULTS[kind]
    if path is None:
        primary = f"http://127.0.0.1:{free_port()}/voice{FRAGMENT}"
    else:
        primary = faults.url(f"{path}?n={dial}") + FRAGMENT
    fallback = faults.url(f"/rcml?fallback={dial}")
    daemon.create_number(
        PhoneNumber=dial,
        isSIP="true",
        VoiceUrl=primary,
        VoiceFallbackUrl=fallback,
        StatusCallback=faults.url(f"/callback?n={dial}"),
    )
    started = time.monotonic()
    result = run_sipp(
        scenario("uac_daemon_hangs_up.xml", workdir), daemon.sip_port, service=dial, workdir=workdir
    )
    assert result.ok, result.errors[-2000:]
    [reached] = [hit for hit in faults.hits("/rcml") if hit.params.get("fallback") == dial]
    assert reached.params["ErrorCode"] == code
    assert reached.params["ErrorUrl"] == primary.partition("#")[0]
    tried = [hit for hit in faults.hits(path) if hit.params.get("n") == dial] if path else []
    if path is not None:
        assert tried, "the primary was never requested"
        assert reached.at - tried[0].at < BUDGET + SLACK  # within the URL's budget
    assert reached.at - started < BUDGET + SLACK + 1.0  # SIPp's start-up on top
    call = reached.params["CallSid"]
    assert _statuses(faults, dial) == [
        (call, "ringing"),
        (call, "in-progress"),
        (call, "completed"),  # exactly one
    ]
