"""Run SIPp scenarios from tests/e2e/scenarios against the daemon."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from support.ports import free_port, sipp_media_port

SCENARIOS = Path(__file__).resolve().parents[1] / "e2e" / "scenarios"


@dataclass
class SippResult:
    returncode: int
    stdout: str
    errors: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def sipp_path() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise RuntimeError("SIPp is not installed (make test installs the sip-tester package)")
    return path


def scenario(name: str, workdir: Path, **substitutions: str) -> Path:
    """The scenario file ``name``; ``.xml.in`` templates get ``__KEY__`` substituted."""
    source = SCENARIOS / name
    if not name.endswith(".in"):
        return source
    text = source.read_text()
    for key, value in substitutions.items():
        text = text.replace(f"__{key.upper()}__", value)
    target = workdir / ("-".join([name.removesuffix(".xml.in"), *substitutions.values()]) + ".xml")
    target.write_text(text)
    return target


def run_sipp(
    scenario_file: Path,
    port: int,
    *,
    service: str,
    workdir: Path,
    calls: int = 1,
    rate: float = 10,
    transport: str = "u1",
    timeout: int = 30,
    limit: int | None = None,
    extra: tuple[str, ...] = (),
) -> SippResult:
    """Place ``calls`` calls to ``service`` at 127.0.0.1:``port``; rc 0 means all succeeded."""
    errors = workdir / f"sipp-{scenario_file.stem}-{service}.errors"
    args = [
        sipp_path(),
        f"127.0.0.1:{port}",
        "-sf",
        str(scenario_file),
        "-s",
        service,
        "-m",
        str(calls),
        "-r",
        str(rate),
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-t",
        transport,
        "-timeout",
        f"{timeout}s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
        "-error_file",
        str(errors),
        "-mp",
        str(sipp_media_port()),
        *(["-l", str(limit)] if limit else []),
        *extra,
    ]
    proc = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout + 15,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    text = errors.read_text(errors="replace") if errors.exists() else ""
    return SippResult(proc.returncode, proc.stdout + proc.stderr, text)


def start_call(
    scenario_file: Path, port: int, *, service: str, workdir: Path
) -> subprocess.Popen[str]:
    """One call in the background (e.g. held while the daemon is stopped or killed)."""
    return subprocess.Popen(
        [sipp_path(), f"127.0.0.1:{port}", "-sf", str(scenario_file), "-s", service, "-m", "1",
         "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(sipp_media_port()),
         "-timeout", "30s", "-timeout_error", "-nostdin"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir, text=True,
    )  # fmt: skip
