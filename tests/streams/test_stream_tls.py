"""wss:// verifies the agent's certificate and host name (openssl makes the certificates)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

from rcmlrouter.httpclient.addresses import AddressBook
from rcmlrouter.streams.connector import Frame, StreamConnectError, StreamConnector


def certificate(tmp_path: Path, name: str, san: str) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available")
    key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", f"/CN={name}", "-addext", f"subjectAltName={san}"]
    command += ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True, timeout=30)
    return key, cert


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.fixture
async def wss_port(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    key, cert = certificate(tmp_path, "agent", "IP:127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    async with serve(echo, "127.0.0.1", 0, ssl=context) as server:
        yield server.sockets[0].getsockname()[1], cert


async def test_an_untrusted_certificate_is_refused(wss_port: tuple[int, Path]) -> None:
    port, _ = wss_port
    connector = StreamConnector(AddressBook())
    with pytest.raises(StreamConnectError) as caught:
        await connector.connect(f"wss://127.0.0.1:{port}/", {}, lambda frame: None)
    assert caught.value.error_code == 31920
    assert "TLS" in str(caught.value)


async def test_a_trusted_certificate_connects_and_carries_messages(
    wss_port: tuple[int, Path],
) -> None:
    port, cert = wss_port
    frames: list[Frame] = []
    trusted = ssl.create_default_context(cafile=str(cert))
    connector = StreamConnector(AddressBook(), tls=trusted)
    socket = await connector.connect(f"wss://127.0.0.1:{port}/", {}, frames.append)
    assert socket.send('{"event":"connected"}')
    for _ in range(100):
        if frames:
            break
        await asyncio.sleep(0.01)
    assert frames == [Frame(b'{"event":"connected"}')]
    await socket.close()


async def test_a_certificate_for_another_host_is_refused(tmp_path: Path) -> None:
    key, cert = certificate(tmp_path, "elsewhere", "DNS:elsewhere.example")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    async with serve(echo, "127.0.0.1", 0, ssl=context) as server:
        port = server.sockets[0].getsockname()[1]
        trusted = ssl.create_default_context(cafile=str(cert))
        connector = StreamConnector(AddressBook(), tls=trusted)
        with pytest.raises(StreamConnectError) as caught:
            await connector.connect(f"wss://127.0.0.1:{port}/", {}, lambda frame: None)
    assert caught.value.error_code == 31920
