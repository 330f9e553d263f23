"""Shared pieces of the SIP real-socket tests: a recording handler, a SIPp runner, waits."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rcmlrouter.sip.endpoint import IncomingCall, IncomingRequest, SipEndpoint
from rcmlrouter.sip.sdp import build_answer, parse_offer
from rcmlrouter.sip.timers import TimerConfig

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
FAST = TimerConfig(t1=0.025, t2=0.1, t4=0.1)  # 64*T1 = 1.6 s
SIPP = shutil.which("sipp")


@dataclass
class RecordingHandler:
    """Answers, rejects or rings depending on ``mode``; records everything it sees."""

    mode: str = "answer"
    calls: list[IncomingCall] = field(default_factory=list)
    requests: list[IncomingRequest] = field(default_factory=list)
    acked: list[bool] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    on_call: Callable[[IncomingCall], None] | None = None

    def on_invite(self, call: IncomingCall) -> None:
        self.calls.append(call)
        call.ended.add_done_callback(lambda f: self.causes.append(f.result()))
        if self.on_call is not None:
            self.on_call(call)
        elif self.mode == "reject":
            call.reject(486, reason_header="busy")
        elif self.mode == "ring":
            call.ring()
        else:
            call.ring()
            task = asyncio.get_running_loop().create_task(self._answer(call))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _answer(self, call: IncomingCall) -> None:
        assert call.remote_sdp is not None
        answer = build_answer(parse_offer(call.remote_sdp), "127.0.0.1", 40000)
        acked = await call.answer(answer.sdp)
        self.acked.append(acked)
        if acked and self.mode == "answer_then_hangup":
            await call.hangup("done")

    def on_request(self, request: IncomingRequest) -> None:
        self.requests.append(request)
        request.respond(202)


def free_port(kind: int = socket.SOCK_DGRAM, host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class SippResult:
    returncode: int
    stdout: str
    stderr: str


async def run_sipp(
    scenario: str,
    target: tuple[str, int],
    *,
    transport: str = "u1",
    calls: int = 1,
    rate: int = 10,
    local_ip: str = "127.0.0.1",
    cwd: Path,
    timeout: float = 20.0,
) -> SippResult:
    assert SIPP is not None
    host, port = target
    remote = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    kind = socket.SOCK_STREAM if transport.startswith("t") else socket.SOCK_DGRAM
    args = [SIPP, remote, "-sf", str(SCENARIOS / scenario), "-m", str(calls), "-r", str(rate)]
    args += ["-t", transport, "-i", local_ip, "-p", str(free_port(kind, local_ip))]
    args += ["-timeout", f"{int(timeout)}s", "-timeout_error", "-nostdin", "-trace_err"]
    args += ["-s", "4155550100", "-max_recv_loops", "10000"]
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=cwd
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout + 5)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    errors = "".join(p.read_text(errors="replace")[-3000:] for p in cwd.glob("*_errors.log"))
    return SippResult(process.returncode or 0, out.decode(errors="replace"), err.decode() + errors)


def address(ep: SipEndpoint, transport: str) -> tuple[str, int]:
    for kind, host, port in ep.addresses:
        if kind == transport:
            return host, port
    raise AssertionError(f"no {transport} listener")


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


requires_sipp = pytest.mark.skipif(SIPP is None, reason="sipp is not installed")
