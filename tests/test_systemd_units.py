"""The shipped systemd units: ``systemd-analyze verify`` where available, and a parse of the keys
either way; the per-worker environment files ``config/cluster.sh systemd-env`` writes for
``rcmlrouter@.service`` load as configurations with distinct ports and disjoint RTP ranges."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rcmlrouter.config import load_config, parse_host_port, parse_sip_listen

REPO = Path(__file__).resolve().parents[1]
UNITS = REPO / "systemd"
INSTALLED = "/opt/rcmlrouter/bin/rcmlrouter"


def _keys(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Section -> (key, value) in order (systemd allows a key more than once)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            assert line.endswith("]"), raw
            current = sections.setdefault(line[1:-1], [])
            continue
        key, eq, value = line.partition("=")
        assert eq and current is not None and key.strip().isidentifier(), raw
        current.append((key.strip(), value.strip()))
    return sections


def _values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [value for name, value in section if name == key]


@pytest.mark.parametrize("unit", ["rcmlrouter.service", "rcmlrouter@.service"])
def test_units_have_the_keys_the_daemon_needs(unit: str) -> None:
    keys = _keys(UNITS / unit)
    assert set(keys) == {"Unit", "Service", "Install"}
    service = keys["Service"]
    assert _values(service, "Type") == ["notify"]  # READY=1 after SIP and the API listen
    assert _values(service, "NotifyAccess") == ["main"]
    [start] = _values(service, "ExecStart")
    assert start.startswith(INSTALLED) and start.endswith(" run")
    assert _values(service, "KillSignal") == ["SIGTERM"]  # drains
    assert _values(service, "Restart") == ["on-failure"]  # kill -9, crash, watchdog
    assert _values(keys["Install"], "WantedBy") == ["multi-user.target"]


def test_each_worker_instance_reads_its_own_environment_file() -> None:
    service = _keys(UNITS / "rcmlrouter@.service")["Service"]
    files = _values(service, "EnvironmentFile")
    assert "/etc/rcmlrouter/worker-%i.env" in files  # required (no "-"): no ports, no start
    assert "-/etc/rcmlrouter/rcmlrouter.env" in files  # shared secrets, optional
    assert _values(service, "User") == ["rcmlrouter"]  # one dynamic user: shared state dir


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("unit", ["rcmlrouter.service", "rcmlrouter@.service"])
def test_systemd_analyze_verify(unit: str, tmp_path: Path) -> None:
    """systemd's own check (unknown keys, bad values, missing commands), with the installed
    command pointed at this checkout's and a template verified as instance 0."""
    command = Path(sys.executable).parent / "rcmlrouter"
    text = (UNITS / unit).read_text().replace(INSTALLED, str(command))
    target = tmp_path / unit.replace("@.", "@0.")
    target.write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(target)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_cluster_sh_writes_one_environment_per_worker(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "WORKERS": "3", "SIP_HOST": "10.0.0.11",
           "RTP_PORTS": "20000-29999"}  # fmt: skip
    done = subprocess.run(
        ["sh", str(REPO / "config" / "cluster.sh"), "systemd-env", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    configs = []
    for index in range(3):
        lines = (tmp_path / f"worker-{index}.env").read_text().splitlines()
        values = dict(line.split("=", 1) for line in lines if not line.startswith("#"))
        configs.append(load_config(None, values))
    sip = [parse_sip_listen(c.sip.listen[0]) for c in configs]
    assert {s[2] for s in sip if s} == {5071, 5072, 5073} and all(
        s and s[1] == "10.0.0.11" for s in sip
    )
    assert {parse_host_port(c.api.listen) for c in configs} == {
        ("10.0.0.11", 8081),
        ("10.0.0.11", 8082),
        ("10.0.0.11", 8083),
    }
    ranges = sorted(c.media.port_range for c in configs)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ranges))  # disjoint
    assert ranges[0][0] >= 20000 and ranges[-1][1] <= 30000
    assert (tmp_path / "dispatcher.list").read_text() == "".join(
        f"1 sip:10.0.0.11:{port} 0 0\n" for port in (5071, 5072, 5073)
    )
