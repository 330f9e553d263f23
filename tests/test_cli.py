"""The command line: results on stdout (JSON), logs on stderr, so ``rcmlrouter init | jq`` works.

Each command runs as a real subprocess on its own SQLite file; ``store.migrated`` and the other
log lines must be on stderr only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.ports import free_port

REPO = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "RCMLROUTER_STORE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "RCMLROUTER_DATA_DIR": str(tmp_path / "data"),
        "RCMLROUTER_LOG_FORMAT": "json",
        "RCMLROUTER_LOG_LEVEL": "debug",
    }


def _cli(tmp_path: Path, *args: str, ok: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "rcmlrouter", *args],
        env=_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == ok, (done.stdout, done.stderr)
    return done


def _one_document(stdout: str) -> Any:
    """stdout parses as a single JSON document (what ``| jq`` needs)."""
    return json.loads(stdout)


def _json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def _logged_events(stderr: str) -> list[str]:
    return [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]


def test_init_prints_only_credentials_on_stdout(tmp_path: Path) -> None:
    first = _cli(tmp_path, "init", "--demo")
    creds = _one_document(first.stdout)
    assert creds["account_sid"].startswith("AC") and creds["auth_token"]
    assert creds["demo_number"] == "1234"
    assert "store.migrated" in _logged_events(first.stderr)  # the log line went to stderr
    again = _one_document(_cli(tmp_path, "init").stdout)
    assert again["account_sid"] == creds["account_sid"]
    assert "unchanged" in again["message"]


def test_route_prints_one_json_document(tmp_path: Path) -> None:
    _cli(tmp_path, "init", "--demo")
    found = _one_document(_cli(tmp_path, "route", "1234").stdout)
    assert found["match"]["phone_number"] == "1234"
    winner = [s for s in found["steps"] if s["outcome"] == "winner"]
    assert winner == [
        {
            "stage": "exact",
            "outcome": "winner",
            "text": "'1234' (as dialed) is a SIP number of the organization: the first exact "
            "hit wins.",
            "subject": "1234",
            "sid": found["match"]["sid"],
        }
    ]
    missing = _one_document(_cli(tmp_path, "route", "999", ok=1).stdout)
    assert missing["match"] is None
    assert [s["stage"] for s in missing["steps"]][-1] == "catch-all"


def test_check_config_and_migrate_print_json(tmp_path: Path) -> None:
    config = _one_document(_cli(tmp_path, "check-config").stdout)
    assert config["api"]["listen"]
    assert _one_document(_cli(tmp_path, "migrate").stdout) == {"migrated": True}


def test_orgs_and_inventory_print_json_lines(tmp_path: Path) -> None:
    _cli(tmp_path, "init")
    added = _one_document(_cli(tmp_path, "orgs", "add", "Example.COM").stdout)
    assert added["domain"] == "example.com"
    orgs = _json_lines(_cli(tmp_path, "orgs", "list").stdout)
    assert {org["domain"] for org in orgs} >= {"example.com"}
    csv = str(REPO / "config" / "inventory.demo.csv")
    imported = _one_document(_cli(tmp_path, "inventory", "import", csv).stdout)
    assert imported["imported"] > 0
    entries = _json_lines(_cli(tmp_path, "inventory", "list").stdout)
    assert any(e["phone_number"] == "+15105555555" for e in entries)


def test_errors_go_to_stderr(tmp_path: Path) -> None:
    done = _cli(tmp_path, "--config", str(tmp_path / "missing.toml"), "check-config", ok=2)
    assert done.stdout == ""
    assert done.stderr.startswith("rcmlrouter:")


def test_run_still_logs_json_to_stdout(tmp_path: Path) -> None:
    """``run`` keeps its JSON lines on stdout (STYLE 6): ``ready`` arrives there."""
    _cli(tmp_path, "init")
    port = free_port()
    env = {
        **_env(tmp_path),
        "RCMLROUTER_LOG_LEVEL": "info",
        "RCMLROUTER_SIP_LISTEN": f"udp:127.0.0.1:{port}",
        "RCMLROUTER_API_LISTEN": f"127.0.0.1:{free_port()}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "rcmlrouter", "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        events = []
        for line in proc.stdout:
            events.append(json.loads(line)["event"])
            if events[-1] == "ready":
                break
        assert "ready" in events
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert "stopped" in [json.loads(line)["event"] for line in out.splitlines()]
    assert "ready" not in err
