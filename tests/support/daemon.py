"""Start the real daemon (``python -m rcmlrouter run``) on free loopback ports.

Each :class:`DaemonProcess` has its own SQLite file and data directory under ``tmp_path``,
its own SIP (UDP+TCP) and API ports, and short callback retry timers. The JSON log lines it
prints are collected for assertions.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from support.ports import free_port

API_PREFIX = "/restcomm/2012-04-24"
TWILIO_PREFIX = "/2010-04-01"


class DaemonProcess:
    def __init__(self, workdir: Path, **env: str) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port()
        self.api_port = free_port()
        self.db = workdir / "rcmlrouter.db"
        self.env = {
            **os.environ,
            "RCMLROUTER_SIP_LISTEN": f"udp:127.0.0.1:{self.sip_port},tcp:127.0.0.1:{self.sip_port}",
            "RCMLROUTER_API_LISTEN": f"127.0.0.1:{self.api_port}",
            "RCMLROUTER_STORE_URL": f"sqlite:///{self.db}",
            "RCMLROUTER_DATA_DIR": str(workdir / "data"),
            "RCMLROUTER_LOG_FORMAT": "json",
            "RCMLROUTER_LOG_LEVEL": "info",
            "RCMLROUTER_CALLBACKS_RETRY_INITIAL": "0.2",
            "RCMLROUTER_CALLBACKS_RETRY_MAX": "1.0",
            "RCMLROUTER_SIP_DRAIN_TIMEOUT": "2",
            **env,
        }
        self.account_sid = ""
        self.auth_token = ""
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.proc: subprocess.Popen[str] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rcmlrouter", *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    def init(self) -> DaemonProcess:
        out = self.cli("init", "--demo")
        creds = json.loads(out.stdout.strip().splitlines()[-1])
        self.account_sid, self.auth_token = creds["account_sid"], creds["auth_token"]
        repo = Path(__file__).resolve().parents[2]
        self.cli("inventory", "import", str(repo / "config" / "inventory.demo.csv"))
        return self

    def start(self, timeout: float = 20.0) -> DaemonProcess:
        if not self.account_sid:
            self.init()
        ready_before = len(self.logs("ready"))  # a restart waits for its own ready line
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rcmlrouter", "run"],
            env=self.env,
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        if self.wait_log("ready", timeout, count=ready_before + 1) is None:
            self.kill()
            raise RuntimeError("daemon did not become ready:\n" + "\n".join(self.raw[-40:]))
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.raw.append(line.rstrip())
            with contextlib.suppress(ValueError):
                self.lines.append(json.loads(line))

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    # -- observation -------------------------------------------------------------------------

    def logs(self, event: str) -> list[dict[str, Any]]:
        return [line for line in list(self.lines) if line.get("event") == event]

    def wait_log(self, event: str, timeout: float = 10.0, count: int = 1) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.logs(event)
            if len(found) >= count:
                return found[count - 1]
            if self.proc is not None and self.proc.poll() is not None:
                time.sleep(0.1)
                found = self.logs(event)
                return found[count - 1] if len(found) >= count else None
            time.sleep(0.02)
        return None

    # -- API ---------------------------------------------------------------------------------

    def api(self, prefix: str = API_PREFIX) -> httpx.Client:
        """The admin account's API client on the Restcomm base (``prefix``: another base)."""
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.api_port}{prefix}/Accounts/{self.account_sid}",
            auth=(self.account_sid, self.auth_token),
            timeout=10,
        )

    def twilio_api(self) -> httpx.Client:
        """The admin account's API client on Twilio's base (``/2010-04-01``)."""
        return self.api(TWILIO_PREFIX)

    def create_number(self, **params: str) -> dict[str, Any]:
        with self.api() as client:
            response = client.post("/IncomingPhoneNumbers.json", data=params)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())
