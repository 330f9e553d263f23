"""``config/cluster.sh`` as a new user runs it: two workers on one PostgreSQL schema behind
Kamailio, on free ports.

The script must print the admin credentials, import the demo inventory (so buying
``+15105555555`` works at once), start workers that answer calls through Kamailio, each with its
own RTP range, and start a worker again after a ``kill -9``; SIGTERM stops everything it started.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from support.daemon import API_PREFIX
from support.kamailio import kamailio_path
from support.pg import schema_url
from support.ports import free_port
from support.sipp import run_sipp, scenario
from support.webhooks import WebhookServer, rcml

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.skipif(kamailio_path() is None, reason="Kamailio is not installed"),
]

SCRIPT = Path(__file__).resolve().parents[2] / "config" / "cluster.sh"
NUMBER = "+15105555555"  # in config/inventory.demo.csv


def _free_run(count: int) -> int:
    """The first of ``count`` consecutive ports free for UDP and TCP on 127.0.0.1."""
    for _ in range(200):
        first = free_port()
        try:
            for port in range(first, first + count):
                with (
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
                    socket.socket() as tcp,
                ):
                    udp.bind(("127.0.0.1", port))
                    tcp.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError("no run of free ports")


class Cluster:
    """The script in its own session; its output collected line by line."""

    def __init__(self, workdir: Path, schema: str) -> None:
        self.sip_port = free_port()
        self.sip_base = _free_run(2)
        self.api_base = _free_run(2)
        self.run_dir = workdir / "run"
        env = {
            **os.environ,
            "RCMLROUTER_STORE_URL": schema_url(schema),
            "RCMLROUTER_CLUSTER_LEASE": "2",  # a restarted worker waits out its old run's lease
            "RCMLROUTER_LOG_FORMAT": "json",
            "RCMLROUTER_SIP_DRAIN_TIMEOUT": "2",
            "WORKERS": "2",
            "SIP_PORT": str(self.sip_port),
            "WORKER_SIP_BASE": str(self.sip_base),
            "WORKER_API_BASE": str(self.api_base),
            "RTP_PORTS": "41000-41999",
            "RUN_DIR": str(self.run_dir),
            "RCMLROUTER": str(Path(sys.executable).parent / "rcmlrouter"),
            "KAMAILIO": kamailio_path() or "kamailio",
            "KAMAILIO_ARGS": "-A DS_PING_INTERVAL=1 -A FR_TIMER=1000 -A CHILDREN=2",
            "RESTART_MAX_DELAY": "2",
        }
        self.proc = subprocess.Popen(
            ["sh", str(SCRIPT)], env=env, cwd=workdir, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def wait_line(self, text: str, timeout: float = 30.0, after: int = 0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines[after:] if text in line]
            if found:
                return found[0]
            assert self.proc.poll() is None, "cluster.sh exited:\n" + "\n".join(self.lines)
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} from cluster.sh:\n" + "\n".join(self.lines))

    def healthy(self, worker: int) -> bool:
        try:
            url = f"http://127.0.0.1:{self.api_base + worker}/health"
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_healthy(self, worker: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy(worker):
            assert time.monotonic() < deadline, "\n".join(self.log(worker)[-30:])
            time.sleep(0.1)

    def log(self, worker: int) -> list[str]:
        return (self.run_dir / f"worker-{worker}.log").read_text(errors="replace").splitlines()

    def completed(self, worker: int) -> int:
        return sum('"call.completed"' in line for line in self.log(worker))

    def worker_pid(self, worker: int) -> int:
        """The worker process (a grandchild of the script), by its API address."""
        wanted = f"RCMLROUTER_API_LISTEN=127.0.0.1:{self.api_base + worker}".encode()
        for pid in _descendants(self.proc.pid):
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if wanted in environ and b"run" in cmdline.split(b"\0"):
                return pid
        raise AssertionError(f"no process for worker {worker}")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the session this test started
                self.proc.wait(10)
                return None
        return self.proc.returncode


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _calls(cluster: Cluster, workdir: Path, count: int) -> None:
    file = scenario("uac_daemon_hangs_up.xml", workdir)
    dialed = NUMBER.lstrip("+")
    result = run_sipp(file, cluster.sip_port, service=dialed, workdir=workdir, calls=count, rate=10)
    assert result.ok, result.errors[-2000:]


def test_cluster_sh_from_credentials_to_a_restarted_worker(
    tmp_path: Path, schema: str, webhooks: WebhookServer
) -> None:
    cluster = Cluster(tmp_path, schema)
    try:
        creds = json.loads(cluster.wait_line('{"account_sid"'))
        assert creds["account_sid"].startswith("AC") and len(creds["auth_token"]) == 32
        assert '"imported": ' in cluster.wait_line("inventory: ")
        ranges = [cluster.wait_line(f"worker {i}: SIP").rsplit("RTP ", 1)[1] for i in (0, 1)]
        assert ranges[0].split(" ")[0] != ranges[1].split(" ")[0]  # each its own RTP range
        cluster.wait_line("kamailio: SIP")
        cluster.wait_healthy(0)
        cluster.wait_healthy(1)

        base = f"http://127.0.0.1:{cluster.api_base}{API_PREFIX}/Accounts/{creds['account_sid']}"
        url = webhooks.route("/cluster-sh/voice", rcml("<Hangup/>"))
        bought = httpx.post(f"{base}/IncomingPhoneNumbers.json", timeout=10,
                            auth=(creds["account_sid"], creds["auth_token"]),
                            data={"PhoneNumber": NUMBER, "VoiceUrl": url})  # fmt: skip
        assert bought.status_code == 200, bought.text  # not 21422: the inventory is there
        time.sleep(1.5)  # worker 1 applied the number; Kamailio probed both workers
        _calls(cluster, tmp_path, 10)
        assert cluster.completed(0) + cluster.completed(1) == 10
        assert cluster.completed(0) > 0 and cluster.completed(1) > 0  # Kamailio spread them

        killed = cluster.worker_pid(0)
        mark = len(cluster.lines)
        os.kill(killed, signal.SIGKILL)
        exited = cluster.wait_line("cluster.sh: worker 0 exited", timeout=10, after=mark)
        assert "status 137" in exited
        time.sleep(1.0)
        cluster.wait_healthy(0, timeout=30)  # started again (after its old run's lease)
        assert cluster.worker_pid(0) != killed
        time.sleep(1.5)  # Kamailio's probe sees it back
        before = cluster.completed(0)
        _calls(cluster, tmp_path, 10)
        assert cluster.completed(0) > before  # the new worker 0 takes calls
        pids = [cluster.worker_pid(0), cluster.worker_pid(1)]
    finally:
        code = cluster.stop()
        print("\n".join(cluster.lines[-20:]))
    assert code is not None  # stopped on SIGTERM, no kill needed
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()  # no worker left behind
