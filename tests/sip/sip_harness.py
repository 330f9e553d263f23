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
from rcmlrouter.sip.message import SipRequest, SipResponse
from rcmlrouter.sip.sdp import build_answer, parse_offer
from rcmlrouter.sip.timers import TimerConfig
from rcmlrouter.sip.wire import parse_message

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


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))


class RawUdpPeer:
    """A hand-driven UDP SIP peer on 127.0.0.1 for exact retransmission tests."""

    def __init__(self, transport: asyncio.DatagramTransport, inbox: _Inbox) -> None:
        self.transport = transport
        self.inbox = inbox
        self.port = int(transport.get_extra_info("sockname")[1])

    @classmethod
    async def open(cls, host: str = "127.0.0.1") -> RawUdpPeer:
        loop = asyncio.get_running_loop()
        transport, inbox = await loop.create_datagram_endpoint(_Inbox, local_addr=(host, 0))
        return cls(transport, inbox)

    def send(self, data: bytes | str, target: tuple[str, int]) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self.transport.sendto(raw.replace(b"{port}", str(self.port).encode()), target)

    async def recv(self, timeout: float = 2.0) -> SipRequest | SipResponse:
        data, _ = await asyncio.wait_for(self.inbox.queue.get(), timeout)
        return parse_message(data)

    async def recv_status(self, status: int, timeout: float = 2.0) -> SipResponse:
        while True:
            message = await self.recv(timeout)
            if isinstance(message, SipResponse) and message.status == status:
                return message

    async def nothing(self, within: float = 0.3) -> bool:
        try:
            await asyncio.wait_for(self.inbox.queue.get(), within)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self.transport.close()


def sip_request(
    method: str,
    *,
    call_id: str,
    branch: str,
    cseq: int = 1,
    to_tag: str | None = None,
    extra: str = "",
    body: str = "",
    via_host: str = "127.0.0.1:{port}",
) -> str:
    """A request from the raw peer; ``{port}`` is filled with the peer's port when sent."""
    to = "<sip:+15105555555@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} sip:+15105555555@127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/UDP {via_host};branch=z9hG4bK{branch}",
        "Max-Forwards: 70",
        "From: <sip:alice@127.0.0.1>;tag=peer1",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        "Contact: <sip:alice@127.0.0.1:{port}>",
    ]
    if extra:
        lines.append(extra)
    lines.append(f"Content-Length: {len(body.encode())}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


SDP_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)
