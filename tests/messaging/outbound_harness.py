"""Shared pieces of the outbound-message tests: fake outbox and notifications, a SIPp UAS."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rcmlrouter.config import Config, SmsConfig
from rcmlrouter.messaging.outbound import SmsSender
from rcmlrouter.sip.endpoint import IncomingCall, IncomingRequest, SipEndpoint
from rcmlrouter.sip.timers import TimerConfig
from rcmlrouter.store.base import MessageRecord, Notification, OutboxEvent

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
FAST = TimerConfig(t1=0.025, t2=0.1, t4=0.1)  # Timer F = 64*T1 = 1.6 s
SIPP = shutil.which("sipp")
requires_sipp = pytest.mark.skipif(SIPP is None, reason="sipp is not installed")


@dataclass
class FakeOutbox:
    """Records what would be committed; every commit is durable at once."""

    messages: list[MessageRecord] = field(default_factory=list)
    events: list[OutboxEvent] = field(default_factory=list)

    @staticmethod
    def event(
        key_sid: str,
        account_sid: str,
        sequence: int,
        url: str,
        method: str,
        params: Mapping[str, str],
    ) -> OutboxEvent:
        now = time.time()
        return OutboxEvent(
            None, key_sid, account_sid, sequence, url, method, dict(params), 0, now, now
        )

    def commit(
        self,
        *,
        call: object = None,
        message: MessageRecord | None = None,
        events: Sequence[OutboxEvent] = (),
    ) -> asyncio.Future[None]:
        if message is not None:
            self.messages.append(message)
        self.events.extend(events)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def statuses(self, sid: str) -> list[str]:
        return [m.status for m in self.messages if m.sid == sid]


@dataclass
class FakeNotifications:
    items: list[Notification] = field(default_factory=list)

    def add(self, item: Notification) -> None:
        self.items.append(item)


class NoCalls:
    """The endpoint's request handler: these tests only send."""

    def on_invite(self, call: IncomingCall) -> None:
        call.reject(603)

    def on_request(self, request: IncomingRequest) -> None:
        request.respond(501)


@dataclass
class Sending:
    """A started endpoint and the sender under test with its fakes."""

    endpoint: SipEndpoint
    sender: SmsSender
    outbox: FakeOutbox
    notifications: FakeNotifications


async def start_sender(**sms: Any) -> Sending:
    endpoint = SipEndpoint(NoCalls(), timers=FAST)
    await endpoint.start(["udp:127.0.0.1:0", "tcp:127.0.0.1:0"])
    config = dataclasses.replace(Config(), sms=SmsConfig(**sms))
    outbox, notifications = FakeOutbox(), FakeNotifications()
    sender = SmsSender(config, outbox, notifications, endpoint)  # type: ignore[arg-type]
    return Sending(endpoint, sender, outbox, notifications)


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SippUas:
    """``sipp -sf SCENARIO`` as a UAS on 127.0.0.1:``port`` handling ``calls`` messages."""

    def __init__(self, scenario: str, cwd: Path, transport: str = "u1", calls: int = 1) -> None:
        self.scenario = scenario
        self.cwd = cwd
        self.transport = transport
        self.calls = calls
        kind = socket.SOCK_STREAM if transport.startswith("t") else socket.SOCK_DGRAM
        self.port = free_port(kind)
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> SippUas:
        assert SIPP is not None
        args = [SIPP, "-sf", str(SCENARIOS / self.scenario), "-t", self.transport]
        args += ["-i", "127.0.0.1", "-p", str(self.port), "-m", str(self.calls)]
        args += ["-timeout", "15s", "-timeout_error", "-nostdin", "-trace_err", "-trace_msg"]
        self.process = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=self.cwd
        )
        await self._listening()
        return self

    async def _listening(self) -> None:
        """Wait until SIPp has bound its port."""
        kind = socket.SOCK_STREAM if self.transport.startswith("t") else socket.SOCK_DGRAM
        for _ in range(100):
            with socket.socket(socket.AF_INET, kind) as sock:
                try:
                    sock.bind(("127.0.0.1", self.port))
                except OSError:
                    return
            await asyncio.sleep(0.05)
        raise AssertionError("sipp did not start listening")

    async def finish(self, timeout: float = 10.0) -> tuple[int, str]:
        """SIPp's exit status (0: every scenario step passed) and its error log."""
        assert self.process is not None
        try:
            await asyncio.wait_for(self.process.communicate(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        logs = "".join(p.read_text(errors="replace")[-4000:] for p in self.cwd.glob("*.log"))
        return self.process.returncode or 0, logs

    async def __aexit__(self, *exc: object) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
