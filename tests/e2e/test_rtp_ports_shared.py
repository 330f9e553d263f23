"""Two daemons on one host share one ``rtp_ports`` range under load, with a third process (SIPp's
own media sockets) holding ports inside it: no call may fail for a port another process holds.

Each daemon gets 150 SIPp calls at 15/s that send RTP (PCMU, looped) and hold for 3 s while the
daemon's ``<Pause>`` sends silence back, so ~90 calls hold media at once in a range of 150 port
pairs. Each daemon walks the whole range (150 calls each), so both meet the other's ports and
SIPp's: the test checks that they did (the ``rcmlrouter_rtp_ports_busy_found`` counter) and that
every call was answered, and that every port came back when the calls ended.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.daemon import DaemonProcess
from support.ports import free_port, free_port_range
from support.sipp import SCENARIOS, sipp_path
from support.webhooks import WebhookServer, rcml

pytestmark = pytest.mark.e2e

PAIRS = 150
CALLS, RATE, HOLD_MS = 150, 15, 3000


@pytest.fixture
def shared_range() -> int:
    return free_port_range(2 * PAIRS)


@pytest.fixture
def two_daemons(
    tmp_path: Path, shared_range: int, webhooks: WebhookServer
) -> Iterator[list[DaemonProcess]]:
    ports = f"{shared_range}-{shared_range + 2 * PAIRS - 1}"
    daemons = [
        DaemonProcess(
            tmp_path / name,
            RCMLROUTER_MEDIA_RTP_PORTS=ports,
            RCMLROUTER_MEDIA_IDLE_KEEPALIVE="0",  # silence every 20 ms: real media both ways
            RCMLROUTER_LOG_LEVEL="warning",
        )
        for name in ("a", "b")
    ]
    url = webhooks.route("/hold-media", rcml('<Pause length="30"/>'))
    try:
        for daemon in daemons:
            daemon.start()
            daemon.create_number(PhoneNumber="5500", isSIP="true", VoiceUrl=url)
        yield daemons
    finally:
        for daemon in daemons:
            daemon.stop()


def sipp_calls(
    daemon: DaemonProcess, workdir: Path, media_port: int, audio: Path
) -> subprocess.Popen[str]:
    script = workdir / "uac_rtp_hold.xml"  # the audio path in the scenario
    script.write_text(
        (SCENARIOS / "uac_rtp_hold.xml.in").read_text().replace("__AUDIO__", str(audio))
    )
    return subprocess.Popen(
        [sipp_path(), f"127.0.0.1:{daemon.sip_port}", "-sf", str(script), "-s", "5500",
         "-m", str(CALLS), "-r", str(RATE), "-d", str(HOLD_MS), "-l", str(CALLS),
         "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(media_port), "-t", "u1",
         "-timeout", "60s", "-timeout_error", "-nostdin",
         "-trace_err", "-error_file", str(workdir / f"errors-{media_port}.log")],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def metric(daemon: DaemonProcess, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{daemon.api_port}/metrics", timeout=5).text
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


def test_two_daemons_share_one_rtp_range_under_load_without_a_503(
    two_daemons: list[DaemonProcess], shared_range: int, tmp_path: Path
) -> None:
    audio = tmp_path / "tone.ulaw"
    audio.write_bytes(bytes(range(256)) * 64)  # 2 s of PCMU, looped by SIPp
    # SIPp's media sockets (its -mp port and -mp + 2) sit inside the shared range too
    inside = [shared_range + 100, shared_range + 200]
    runs = []
    for daemon, media_port in zip(two_daemons, inside, strict=True):
        runs.append(sipp_calls(daemon, tmp_path, media_port, audio))
        time.sleep(1.0)  # the second starts while the first holds its first 15 calls
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    errors = "\n".join(path.read_text()[-2000:] for path in tmp_path.glob("errors-*.log"))
    assert [run.returncode for run in runs] == [0, 0], (outputs[0][-1500:], errors)
    for daemon in two_daemons:
        assert daemon.logs("media.bind_failed") == []
    found = [metric(d, "rcmlrouter_rtp_ports_busy_found_total") for d in two_daemons]
    assert sum(found) > 0, "the daemons never met each other's ports: the test proved nothing"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        metric(d, "rcmlrouter_rtp_ports_in_use") for d in two_daemons
    ):
        time.sleep(0.2)
    assert [metric(d, "rcmlrouter_rtp_ports_in_use") for d in two_daemons] == [0, 0]
