"""Kamailio (the Debian package) on loopback in front of rcmlrouter nodes.

``KamailioProxy([sip_port_a, sip_port_b]).start()`` writes a dispatcher list naming the nodes,
runs ``kamailio -DD -E`` with ``config/kamailio/kamailio.cfg`` on a free UDP port (probing the
nodes with OPTIONS every ``ping_interval`` s, 1 by default) and waits until it answers OPTIONS
itself.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from support.ports import free_port

CONFIG = Path(__file__).resolve().parents[2] / "config" / "kamailio" / "kamailio.cfg"


def kamailio_path() -> str | None:
    return shutil.which("kamailio") or (
        "/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None
    )


class KamailioProxy:
    def __init__(
        self,
        node_ports: list[int],
        workdir: Path,
        *,
        children: int = 2,
        fr_timer: int = 1000,
        ping_interval: int = 1,
        defines: dict[str, str] | None = None,
    ) -> None:
        self.node_ports = node_ports
        self.workdir = workdir
        self.port = free_port()
        self.children = children
        self.fr_timer = fr_timer  # ms without a reply before the next node (or a failed probe)
        self.ping_interval = ping_interval  # s between OPTIONS probes of every node
        self.defines = defines or {}  # more -A NAME=VALUE (a string value: '"text"')
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 10.0) -> KamailioProxy:
        binary = kamailio_path()
        if binary is None:
            raise RuntimeError("Kamailio is not installed (make test installs the package)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        listing = self.workdir / "dispatcher.list"
        listing.write_text("".join(f"1 sip:127.0.0.1:{p} 0 0\n" for p in self.node_ports))
        runtime = self.workdir / "run"
        runtime.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, "-DD", "-E", "-f", str(CONFIG), "-l", f"udp:127.0.0.1:{self.port}",
             "-Y", str(runtime), "-w", str(self.workdir),
             "-A", f'DISPATCHER_LIST="{listing}"', "-A", f"DS_PING_INTERVAL={self.ping_interval}",
             "-A", f"CHILDREN={self.children}", "-A", f"FR_TIMER={self.fr_timer}",
             *(arg for name, value in self.defines.items() for arg in ("-A", f"{name}={value}"))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("kamailio exited:\n" + "\n".join(self.output[-30:]))
            if self.answers_options():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("kamailio did not answer OPTIONS:\n" + "\n".join(self.output[-30:]))

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.rstrip())

    def answers_options(self) -> bool:
        """Send one OPTIONS to the proxy itself (it dispatches it to a node): any answer."""
        local = free_port()
        request = (
            f"OPTIONS sip:probe@127.0.0.1:{self.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK-{time.monotonic_ns()}\r\n"
            f"From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:probe@127.0.0.1>\r\n"
            f"Call-ID: probe-{time.monotonic_ns()}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", local))
            sock.settimeout(0.5)
            sock.sendto(request.encode(), ("127.0.0.1", self.port))
            try:
                sock.recvfrom(65535)
            except TimeoutError:
                return False
        return True

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
