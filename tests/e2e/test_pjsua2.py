"""A pjsua2 user agent (an independent, mature SIP stack) calls the daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.webhooks import rcml

pytestmark = pytest.mark.e2e
SCRIPT = Path(__file__).resolve().parents[1] / "support" / "pjsua_call.py"


def place_call(uri: str, seconds: float = 15) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), uri, str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 20,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"pjsua2 printed no result (rc={proc.returncode}):\n{proc.stderr[-2000:]}"
    return dict(json.loads(lines[-1]))


def test_pjsua2_call_is_answered_then_hung_up_by_the_daemon(daemon, webhooks, dial) -> None:
    url = webhooks.route(f"/voice/{dial}", rcml('<Pause length="1"/>', "<Hangup/>"))
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=url)
    result = place_call(f"sip:{dial}@127.0.0.1:{daemon.sip_port}")
    states = [tuple(s) for s in result["states"]]  # type: ignore[union-attr]
    texts = [s[0] for s in states]
    assert result["done"], states
    assert "CONFIRMED" in texts, states
    assert texts[-1] == "DISCONNECTED"
    assert states[-1][1] == 200  # ended by the daemon's BYE, not by an error
    assert 0.8 < float(result["seconds"]) < 10  # type: ignore[arg-type]
    assert len(webhooks.requests(f"/voice/{dial}")) == 1


def test_pjsua2_call_to_unknown_number_gets_404(daemon) -> None:
    result = place_call(f"sip:4049999@127.0.0.1:{daemon.sip_port}")
    states = [tuple(s) for s in result["states"]]  # type: ignore[union-attr]
    assert result["done"], states
    assert states[-1][1] == 404, states
