"""Pieces of the outgoing-call tests: SIPp as the callee (a UAS scenario on a free port)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from sip_harness import SCENARIOS, SDP_OFFER, SIPP, free_port

from rcmlrouter.sip.endpoint import SipEndpoint
from rcmlrouter.sip.outgoing import OutgoingCall


class SippUas:
    """``sipp -sf uas_*.xml`` on 127.0.0.1: the far end of our outgoing calls."""

    def __init__(self, scenario: str, cwd: Path, *, transport: str = "u1", calls: int = 1) -> None:
        self.scenario = scenario
        self.cwd = cwd
        self.transport = transport
        self.calls = calls
        self.kind = socket.SOCK_STREAM if transport.startswith("t") else socket.SOCK_DGRAM
        self.port = free_port(self.kind)
        self.process: asyncio.subprocess.Process | None = None

    @property
    def uri(self) -> str:
        suffix = ";transport=tcp" if self.kind == socket.SOCK_STREAM else ""
        return f"sip:callee@127.0.0.1:{self.port}{suffix}"

    async def __aenter__(self) -> SippUas:
        assert SIPP is not None
        args = [SIPP, "-sf", str(SCENARIOS / self.scenario), "-t", self.transport]
        args += ["-i", "127.0.0.1", "-p", str(self.port), "-m", str(self.calls)]
        args += ["-timeout", "15s", "-timeout_error", "-nostdin", "-trace_err", "-trace_msg"]
        self.process = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=self.cwd
        )
        for _ in range(100):  # until SIPp has bound its port
            with socket.socket(socket.AF_INET, self.kind) as sock:
                try:
                    sock.bind(("127.0.0.1", self.port))
                except OSError:
                    return self
            await asyncio.sleep(0.05)
        raise AssertionError("sipp did not start listening")

    async def finish(self, timeout: float = 10.0) -> tuple[int, str]:
        """SIPp's exit status (0: every step of every call passed) and its logs."""
        assert self.process is not None
        try:
            await asyncio.wait_for(self.process.communicate(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        logs = "".join(p.read_text(errors="replace")[-6000:] for p in self.cwd.glob("*.log"))
        return self.process.returncode or 0, logs

    async def __aexit__(self, *exc: object) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


def call(endpoint: SipEndpoint, uri: str, **kwargs: object) -> OutgoingCall:
    """An outgoing call from alice with our SDP offer."""
    return endpoint.start_call(
        uri,
        from_uri="sip:+14155550100@127.0.0.1",
        from_display="Alice",
        headers=[("X-Test", "1")],
        sdp=SDP_OFFER.encode(),
        **kwargs,  # type: ignore[arg-type]
    )


def tables_empty(endpoint: SipEndpoint) -> bool:
    """Nothing of a finished call left in the endpoint."""
    return (
        endpoint.transaction_count == 0
        and endpoint.dialog_count == 0
        and endpoint.in_flight == 0
        and endpoint.outgoing_calls == 0
    )
