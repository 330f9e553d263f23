"""SIPp as a UAS (``sipp -sf uas_*.xml``) on a free loopback port: the far end of the calls and
messages rcmlrouter sends. Usable from async tests (``async with``, ``await finish()``) and from
plain ones (``with``, ``wait()``)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from pathlib import Path

from support.ports import sipp_media_port

SIPP = shutil.which("sipp")
E2E_SCENARIOS = Path(__file__).resolve().parents[1] / "e2e" / "scenarios"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SippUas:
    """``sipp -sf SCENARIO`` on 127.0.0.1:``port`` handling ``calls`` calls (or messages).

    ``scenario`` is a path, or a file name in :attr:`scenarios` (subclasses point it at their
    own folder). SIPp exits 0 when every step of every call passed.
    """

    scenarios: Path = E2E_SCENARIOS

    def __init__(
        self,
        scenario: str | Path,
        cwd: Path,
        *,
        transport: str = "u1",
        calls: int = 1,
        timeout: int = 15,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.scenario = Path(scenario) if isinstance(scenario, Path) else self.scenarios / scenario
        self.cwd = cwd
        self.transport = transport
        self.calls = calls
        self.timeout = timeout
        self.extra = extra
        self.kind = socket.SOCK_STREAM if transport.startswith("t") else socket.SOCK_DGRAM
        self.port = free_port(self.kind)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        suffix = ";transport=tcp" if self.kind == socket.SOCK_STREAM else ""
        return f"sip:callee@127.0.0.1:{self.port}{suffix}"

    def _args(self) -> list[str]:
        assert SIPP is not None, "sipp is not installed"
        args = [SIPP, "-sf", str(self.scenario), "-t", self.transport, "-i", "127.0.0.1"]
        args += ["-p", str(self.port), "-m", str(self.calls), "-mp", str(sipp_media_port())]
        args += ["-timeout", f"{self.timeout}s", "-timeout_error", "-nostdin"]
        return [*args, "-trace_err", "-trace_msg", *self.extra]

    def _spawn(self) -> None:
        self.process = subprocess.Popen(
            self._args(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            cwd=self.cwd,
        )

    def _bound(self) -> bool:
        with socket.socket(socket.AF_INET, self.kind) as sock:
            try:
                sock.bind(("127.0.0.1", self.port))
            except OSError:
                return True
        return False

    # -- async ------------------------------------------------------------------------------

    async def __aenter__(self) -> SippUas:
        self._spawn()
        for _ in range(100):
            if self._bound():
                return self
            await asyncio.sleep(0.05)
        raise AssertionError("sipp did not start listening")

    async def finish(self, timeout: float = 10.0) -> tuple[int, str]:
        """SIPp's exit status (0: every step passed) and the tail of its logs."""
        return await asyncio.to_thread(self.wait, timeout)

    async def __aexit__(self, *exc: object) -> None:
        self.kill()

    # -- sync -------------------------------------------------------------------------------

    def __enter__(self) -> SippUas:
        self._spawn()
        for _ in range(100):
            if self._bound():
                return self
            time.sleep(0.05)
        raise AssertionError("sipp did not start listening")

    def wait(self, timeout: float = 10.0) -> tuple[int, str]:
        assert self.process is not None
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        logs = "".join(
            p.read_text(errors="replace")[-6000:]
            for p in self.cwd.glob(f"{self.scenario.stem}_*.log")
        )
        return self.process.returncode or 0, logs

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __exit__(self, *exc: object) -> None:
        self.kill()
