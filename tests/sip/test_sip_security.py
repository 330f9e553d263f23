"""SIP security: trusted sources, the flood guard, SIP over TLS, TCP/TLS connection limits."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sip_harness import (
    FAST,
    SDP_OFFER,
    RawUdpPeer,
    RecordingHandler,
    address,
    sip_request,
    wait_for,
)

from rcmlrouter.sip.endpoint import SipEndpoint
from rcmlrouter.sip.guard import BUSY, DROP, FORBID, PASS, SourceGuard
from rcmlrouter.sip.message import SipResponse
from rcmlrouter.sip.tls import server_context
from rcmlrouter.sip.transport import StreamLimits
from rcmlrouter.sip.wire import parse_message


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_guard_trusted_networks_and_modes() -> None:
    guard = SourceGuard(["192.0.2.0/24", "2001:db8::/32"])
    assert guard.check("192.0.2.77") == PASS and guard.check("2001:db8::5") == PASS
    assert guard.check("198.51.100.1") == FORBID and guard.check("not-an-ip") == FORBID
    assert guard.stats.untrusted_rejected == 2
    dropping = SourceGuard(["192.0.2.0/24"], untrusted="drop")
    assert dropping.check("198.51.100.1") == DROP and dropping.stats.untrusted_dropped == 1
    assert not SourceGuard().active and SourceGuard().check("198.51.100.1") == PASS


def test_flood_guard_windows_busy_once_then_drop() -> None:
    clock = Clock()
    guard = SourceGuard(flood_limit=3, flood_window=2.0, clock=clock)
    assert [guard.check("203.0.113.9") for _ in range(6)] == [PASS] * 3 + [BUSY, DROP, DROP]
    assert guard.check("203.0.113.10") == PASS  # per source
    clock.now += 2.0
    assert guard.check("203.0.113.9") == PASS  # a new window
    assert (guard.stats.flood_rejected, guard.stats.flood_dropped) == (1, 2)


def test_flood_guard_spares_trusted_and_bounds_memory() -> None:
    guard = SourceGuard(["192.0.2.0/24"], flood_limit=2, max_sources=100, clock=Clock())
    assert all(guard.check("192.0.2.1") == PASS for _ in range(50))  # trusted: unlimited
    assert [guard.check("198.51.100.1") for _ in range(4)] == [FORBID, FORBID, DROP, DROP]
    for n in range(1000):
        guard.check(f"10.{n // 256}.{n % 256}.1")
    assert guard.tracked_sources == 100


@pytest.fixture
async def peer() -> AsyncIterator[RawUdpPeer]:
    peer = await RawUdpPeer.open()
    yield peer
    peer.close()


async def guarded(handler: RecordingHandler, guard: SourceGuard, **limits: float) -> SipEndpoint:
    endpoint = SipEndpoint(handler, timers=FAST)
    endpoint.secure(guard, StreamLimits(**limits))  # type: ignore[arg-type]
    await endpoint.start(["udp:127.0.0.1:0", "tcp:127.0.0.1:0"])
    return endpoint


async def test_untrusted_source_gets_403_or_nothing(
    handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    endpoint = await guarded(handler, SourceGuard(["192.0.2.0/24"]))
    try:
        peer.send(sip_request("INVITE", call_id="u1", branch="u1"), address(endpoint, "udp"))
        refused = await peer.recv_status(403)
        assert 'text="source address not trusted"' in (refused.get("Reason") or "")
        assert not handler.calls and endpoint.security_stats()["untrusted_rejected"] == 1
        endpoint.guard = None  # counters read from the guard given to secure()
        endpoint.secure(SourceGuard(["192.0.2.0/24"], untrusted="drop"))
        peer.send(sip_request("OPTIONS", call_id="u2", branch="u2"), address(endpoint, "udp"))
        assert await peer.nothing()
        endpoint.secure(SourceGuard(["127.0.0.0/8"]))
        peer.send(sip_request("OPTIONS", call_id="u3", branch="u3"), address(endpoint, "udp"))
        assert (await peer.recv_status(200)).call_id == "u3"
    finally:
        await endpoint.stop()


async def test_flood_guard_503_then_silence_then_recovers(
    handler: RecordingHandler, peer: RawUdpPeer
) -> None:
    endpoint = await guarded(handler, SourceGuard(flood_limit=5, flood_window=0.5))
    target = address(endpoint, "udp")
    try:
        for n in range(8):
            peer.send(sip_request("OPTIONS", call_id=f"f{n}", branch=f"f{n}"), target)
        statuses = []
        while (message := await peer_recv(peer)) is not None:
            assert isinstance(message, SipResponse)
            statuses.append(message.status)
            if message.status == 503:
                assert message.get("Retry-After") == "1"
        assert sorted(statuses) == [200] * 5 + [503]
        await asyncio.sleep(0.5)
        peer.send(sip_request("OPTIONS", call_id="later", branch="later"), target)
        assert (await peer.recv_status(200)).call_id == "later"
        stats = endpoint.security_stats()
        assert (stats["flood_rejected"], stats["flood_dropped"]) == (1, 2)
    finally:
        await endpoint.stop()


async def peer_recv(peer: RawUdpPeer) -> object:
    try:
        return await peer.recv(timeout=0.4)
    except TimeoutError:
        return None


def make_cert(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    args = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    args += ["-nodes", "-days", "1", "-subj", f"/CN={name}"]
    args += ["-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [*args, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


async def tls_options(
    port: int, ca: Path, client_cert: tuple[Path, Path] | None = None
) -> SipResponse:
    context = ssl.create_default_context(cafile=str(ca))
    if client_cert is not None:
        context.load_cert_chain(*client_cert)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        local = writer.get_extra_info("sockname")[1]
        request = sip_request("OPTIONS", call_id="tls1", branch="tls1").replace("UDP", "TLS")
        writer.write(request.replace("{port}", str(local)).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await asyncio.wait_for(reader.read(4096), 2)
            if not chunk:
                raise ConnectionError("closed before a response")
            data += chunk
        response = parse_message(data)
        assert isinstance(response, SipResponse)
        return response
    finally:
        writer.close()


async def test_options_over_tls_and_client_verification(
    handler: RecordingHandler, tmp_path: Path
) -> None:
    cert, key = make_cert(tmp_path, "server")
    client = make_cert(tmp_path, "client")
    endpoint = SipEndpoint(handler, timers=FAST)
    endpoint.secure(tls_server=server_context(str(cert), str(key)))
    await endpoint.start(["tls:127.0.0.1:0"])
    try:
        response = await tls_options(address(endpoint, "tls")[1], cert)
        assert response.status == 200 and response.call_id == "tls1"
        assert (response.get("Contact") or "").endswith(";transport=tls>")
    finally:
        await endpoint.stop()
    mutual = SipEndpoint(handler, timers=FAST)
    context = server_context(str(cert), str(key), ca=str(client[0]), verify_client=True)
    mutual.secure(tls_server=context)
    await mutual.start(["tls:127.0.0.1:0"])
    try:
        port = address(mutual, "tls")[1]
        assert (await tls_options(port, cert, client)).status == 200
        with pytest.raises((ssl.SSLError, ConnectionError, TimeoutError, AssertionError)):
            await tls_options(port, cert)  # no client certificate: refused
    finally:
        await mutual.stop()


async def test_tcp_idle_slowloris_and_connection_caps(handler: RecordingHandler) -> None:
    limits = {"idle_timeout": 0.3, "header_timeout": 0.3, "max_per_source": 2}
    endpoint = await guarded(handler, SourceGuard(), **limits)
    host, port = address(endpoint, "tcp")
    try:
        idle_reader, idle = await asyncio.open_connection(host, port)
        slow_reader, slow = await asyncio.open_connection(host, port)
        slow.write(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h")  # and nothing more
        third_reader, third = await asyncio.open_connection(host, port)
        assert await asyncio.wait_for(third_reader.read(), 1) == b""  # over max_per_source
        assert await asyncio.wait_for(slow_reader.read(), 2) == b""
        assert await asyncio.wait_for(idle_reader.read(), 2) == b""
        stats = endpoint.security_stats()
        assert (stats["refused"], stats["slow_closed"], stats["idle_closed"]) == (1, 1, 1)
        await wait_for(lambda: endpoint.security_stats()["connections"] == 0)
        for writer in (idle, slow, third):
            writer.close()
    finally:
        await endpoint.stop()


async def test_closed_connection_ends_its_calls_and_a_call_keeps_it_open(
    handler: RecordingHandler,
) -> None:
    handler.mode = "ring"
    endpoint = await guarded(handler, SourceGuard(), idle_timeout=0.2, header_timeout=1.0)
    host, port = address(endpoint, "tcp")
    try:
        reader, writer = await asyncio.open_connection(host, port)
        local = writer.get_extra_info("sockname")[1]
        invite = sip_request("INVITE", call_id="tcp1", branch="tcp1", body=SDP_OFFER)
        writer.write(invite.replace("UDP", "TCP").replace("{port}", str(local)).encode())
        await wait_for(lambda: len(handler.calls) == 1)
        await asyncio.sleep(0.6)  # past idle_timeout: kept, the call needs it
        assert not handler.calls[0].ended.done() and not reader.at_eof()
        writer.close()
        assert await asyncio.wait_for(handler.calls[0].ended, 2) == "transport-error"
        assert endpoint.security_stats()["calls_ended_by_connection"] == 1
    finally:
        await endpoint.stop()
