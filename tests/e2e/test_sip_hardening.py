"""The real daemon against hostile SIP: a sipvicious scan, the RFC 4475 corpus and garbage,
untrusted sources, a flood, SIP over TLS, with the counters in /metrics. Loopback only."""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.daemon import DaemonProcess

pytestmark = pytest.mark.e2e

RFC4475 = Path(__file__).resolve().parents[1] / "data" / "sip" / "rfc4475"
SVMAP = shutil.which("sipvicious_svmap", path=str(Path(sys.executable).parent))
SVWAR = shutil.which("sipvicious_svwar", path=str(Path(sys.executable).parent))
TOP_VIA = re.compile(rb"(?im)^((?:via|v)\s*:\s*SIP\s*/\s*\d+\.\d+\s*/\s*\w+\s+)([^;,\r\n]+)")


def options(port: int, call_id: str, via_port: int) -> bytes:
    return (
        f"OPTIONS sip:probe@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{via_port};branch=z9hG4bK{call_id};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:probe@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


class UdpProbe:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(1.0)
        self.port = self.sock.getsockname()[1]

    def send(self, data: bytes, port: int) -> None:
        self.sock.sendto(data, ("127.0.0.1", port))

    def replies(self, within: float = 1.0) -> list[bytes]:
        found: list[bytes] = []
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                found.append(self.sock.recv(65535))
            except TimeoutError:
                break
        return found

    def next_reply(self, deadline: float) -> bytes | None:
        """The next datagram that came or comes by ``deadline`` (monotonic), else None."""
        self.sock.settimeout(max(deadline - time.monotonic(), 0.0))  # 0: only what is here
        try:
            return self.sock.recv(65535)
        except (TimeoutError, BlockingIOError):
            return None

    def first_final(self, deadline: float) -> str | None:
        """The status code of the first final (not 1xx) response that came or comes by
        ``deadline``."""
        while (reply := self.next_reply(deadline)) is not None:
            status = reply.split(b" ", 2)[1].decode()
            if not status.startswith("1"):
                return status
        return None

    def status(self, port: int, call_id: str) -> str | None:
        """The status line of the answer to an OPTIONS (1 s at most)."""
        self.send(options(port, call_id, self.port), port)
        deadline = time.monotonic() + 1.0
        while (reply := self.next_reply(deadline)) is not None:
            if f"Call-ID: {call_id}\r\n".encode() in reply:
                return reply.split(b"\r\n", 1)[0].decode()
        return None


@pytest.fixture
def probe() -> Iterator[UdpProbe]:
    probe = UdpProbe()
    yield probe
    probe.sock.close()


def metrics(daemon: DaemonProcess) -> str:
    return httpx.get(f"http://127.0.0.1:{daemon.api_port}/metrics", timeout=5).text


def no_crash(daemon: DaemonProcess) -> None:
    assert daemon.proc is not None and daemon.proc.poll() is None
    assert not [line for line in daemon.raw if "Traceback" in line or "Exception in" in line]


@pytest.mark.skipif(SVMAP is None or SVWAR is None, reason="sipvicious is not installed")
def test_sipvicious_scan_gets_clear_answers(
    daemon: DaemonProcess, probe: UdpProbe, tmp_path: Path
) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}  # sipvicious keeps its sessions in ~/.sipvicious
    common = ["-b", "127.0.0.1", "-x", "127.0.0.1", "-p", str(daemon.sip_port)]
    scans = [
        [SVMAP, *common, "127.0.0.1"],
        [SVMAP, *common, "-m", "INVITE", "127.0.0.1"],
        [SVWAR, *common, "-e100-200", "127.0.0.1"],
        [SVWAR, *common, "-e100-200", "-m", "INVITE", "127.0.0.1"],
        [SVWAR, *common, "-e100-200", "-m", "OPTIONS", "127.0.0.1"],
    ]
    # all at once (each binds its own port): each waits 3 s for stragglers at its end
    running = [
        subprocess.Popen(
            [str(a) for a in args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for args in scans
    ]
    try:
        outputs = [scan.communicate(timeout=120)[0] for scan in running]
    finally:
        for scan in running:
            if scan.poll() is None:
                scan.kill()
    assert "rcmlrouter" in outputs[0]  # svmap found us by our User-Agent / Server
    no_crash(daemon)
    assert probe.status(daemon.sip_port, "after-scan") == "SIP/2.0 200 OK"


# RFC 4475 §3.1.1, the valid messages: what the daemon answers each (none is a parse error)
VALID_ANSWERS = {
    "wsinv": "481",  # 3.1.1.1 a To tag naming no dialog of ours (RFC 3261 §12.2.2)
    "intmeth": "501",  # 3.1.1.2 a method we do not implement
    "esc01": "404",  # 3.1.1.3 routed: no number "sips:user@example.com"
    "escnull": "501",  # 3.1.1.4 REGISTER
    "esc02": "501",  # 3.1.1.5 RE%47IST%45R is a method of its own
    "lwsdisp": "200",  # 3.1.1.6 OPTIONS
    "longreq": "404",  # 3.1.1.7 routed: no number "very…long…user"
    "dblreq": "501",  # 3.1.1.8 REGISTER (the trailing INVITE in the datagram is ignored)
    "semiuri": "200",  # 3.1.1.9 OPTIONS
    "transports": "200",  # 3.1.1.10 OPTIONS
    "mpart01": "415",  # 3.1.1.11 MESSAGE: multipart/mixed is not text/plain (SPEC §5)
    "unreason": None,  # 3.1.1.12 a response no transaction of ours wants
    "noreason": None,  # 3.1.1.13 the same
}


def test_torture_corpus_and_garbage_leave_the_daemon_answering(
    daemon: DaemonProcess, probe: UdpProbe
) -> None:
    senders: dict[str, UdpProbe] = {}
    for path in sorted(RFC4475.glob("*.sip")):  # each from its own port: the RFC's samples
        sender = UdpProbe()  # share branches, and one sent-by would make them retransmissions
        senders[path.stem] = sender
        data = TOP_VIA.sub(
            lambda m, port=sender.port: m.group(1) + f"127.0.0.1:{port}".encode(),
            path.read_bytes(),
            count=1,
        )
        sender.send(data, daemon.sip_port)
    statuses: dict[str, str | None] = {}
    deadline = time.monotonic() + 2.0  # for all: only the unanswered samples wait it out
    for name, sender in senders.items():  # the first final status each sample got
        statuses[name] = sender.first_final(deadline)
        sender.sock.close()
    for garbage in (b"\x00" * 1400, b"SIP/2.0\r\n\r\n", os.urandom(1200), b"A" * 65000):
        probe.send(garbage, daemon.sip_port)
    assert {name: statuses[name] for name in VALID_ANSWERS} == VALID_ANSWERS
    assert statuses["badinv01"] == "400" and statuses["unkscm"] == "416", statuses
    assert statuses["badvers"] == "505" and statuses["zeromf"] == "200"
    assert statuses["multi01"] == "400" and statuses["invut"] == "415"
    no_crash(daemon)
    assert probe.status(daemon.sip_port, "after-torture") == "SIP/2.0 200 OK"
    assert "rcmlrouter_sip_parse_errors_total" in metrics(daemon)


def test_untrusted_source_and_flood(tmp_path: Path, probe: UdpProbe) -> None:
    untrusted = DaemonProcess(tmp_path / "a", RCMLROUTER_SIP_TRUSTED="192.0.2.0/24").start()
    try:
        line = probe.status(untrusted.sip_port, "untrusted")
        assert line == "SIP/2.0 403 Forbidden"
        text = metrics(untrusted)
        assert 'rcmlrouter_sip_guard_requests_total{verdict="untrusted_rejected"} 1.0' in text
    finally:
        untrusted.stop()
    flooded = DaemonProcess(
        tmp_path / "b", RCMLROUTER_SIP_FLOOD_LIMIT="20", RCMLROUTER_SIP_FLOOD_WINDOW="2"
    ).start()
    try:
        for n in range(100):
            probe.send(options(flooded.sip_port, f"flood{n}", probe.port), flooded.sip_port)
        codes = [r.split(b" ", 2)[1] for r in probe.replies(1.0)]
        assert codes.count(b"200") == 20 and codes.count(b"503") == 1
        text = metrics(flooded)
        assert 'rcmlrouter_sip_guard_requests_total{verdict="flood_dropped"} 79.0' in text
        time.sleep(2.0)
        assert probe.status(flooded.sip_port, "after-flood") == "SIP/2.0 200 OK"
    finally:
        flooded.stop()


def test_options_over_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    args = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    args += ["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    args += ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(args, check=True, capture_output=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        tls_port = sock.getsockname()[1]
    node = DaemonProcess(tmp_path / "tls", RCMLROUTER_SIP_TLS_CERT=str(cert))
    node.env["RCMLROUTER_SIP_TLS_KEY"] = str(key)
    node.env["RCMLROUTER_SIP_LISTEN"] += f",tls:127.0.0.1:{tls_port}"
    node.start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        with (
            socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            local = tls.getsockname()[1]
            tls.sendall(options(tls_port, "tls1", local).replace(b"SIP/2.0/UDP", b"SIP/2.0/TLS"))
            reply = tls.recv(65535)
        assert reply.startswith(b"SIP/2.0 200 OK") and b";transport=tls>" in reply
        assert node.proc is not None and node.proc.poll() is None
    finally:
        node.stop()
