"""The daemon's HTTP client against real loopback servers that answer byte for byte.

The fetcher's behaviour on it (status codes, fallbacks, redirects, timeouts, TLS, the fault
matrix) is in tests/rcml/ (test_rcml_fetch.py, test_egress.py, test_webhook_faults.py); here is
what is particular to the client: connection reuse and its races, body framings, limits.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import time
from collections.abc import AsyncIterator

import pytest
from yarl import URL

from rcmlrouter.httpclient.client import HttpClient
from rcmlrouter.httpclient.deny import DenyList, parse_networks
from rcmlrouter.httpclient.failures import (
    ConnectionReset,
    EgressDeniedError,
    MalformedResponse,
    ReadTimedOut,
    TooLarge,
)
from support.rawhttp import OK, Handler, RawServer, reset


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    lane = HttpClient(limit=10, keepalive_timeout=4.0)
    yield lane
    await lane.close()


async def _get(
    lane: HttpClient, url: URL, *, read: float = 2.0, total: float = 3.0, **kw: object
) -> object:
    return await lane.request(
        "POST",
        url,
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"CallSid=CA1",
        connect=1.0,
        read=read,
        total=total,
        max_body=kw.pop("max_body", 1 << 20),  # type: ignore[arg-type]
        max_redirects=5,
        discard=bool(kw.pop("discard", False)),
    )


def _keep_answering(answer: bytes = OK) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        while True:
            await server_of[handler].read_request(reader)
            writer.write(answer)
            await writer.drain()

    return handler


server_of: dict[Handler, RawServer] = {}


async def _serve(handler: Handler) -> RawServer:
    server = RawServer(handler)
    server_of[handler] = server
    return await server.__aenter__()


async def test_sequential_requests_share_one_connection(client: HttpClient) -> None:
    server = await _serve(_keep_answering())
    try:
        for _ in range(20):
            response = await _get(client, server.url())
            assert response.status == 200  # type: ignore[attr-defined]
            assert response.content_type == "text/xml"  # type: ignore[attr-defined]
            assert response.body == b"<Response/>"  # type: ignore[attr-defined]
        assert server.connections == 1
        head = server.heads[0].decode()
        assert head.startswith("POST /voice HTTP/1.1\r\n")
        assert f"Host: 127.0.0.1:{server.port}\r\n" in head
        assert "Content-Length: 11\r\n" in head
    finally:
        await server.__aexit__()


async def test_a_stale_pooled_connection_is_retried_once_on_a_new_one(
    client: HttpClient,
) -> None:
    async def answer_once_then_close_silently(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int
    ) -> None:
        await server.read_request(reader)
        writer.write(OK)  # says keep-alive ...
        await writer.drain()
        await server.read_request(reader)  # ... then drops the next request unanswered

    server = await _serve(answer_once_then_close_silently)
    try:
        assert (await _get(client, server.url())).status == 200  # type: ignore[attr-defined]
        assert (await _get(client, server.url())).status == 200  # type: ignore[attr-defined]
        assert server.connections == 2  # the second request went out again, once
    finally:
        await server.__aexit__()


async def test_idle_connections_older_than_the_keepalive_timeout_are_not_reused() -> None:
    lane = HttpClient(keepalive_timeout=0.05)
    server = await _serve(_keep_answering())
    try:
        await _get(lane, server.url())
        await asyncio.sleep(0.15)
        await _get(lane, server.url())
        assert server.connections == 2
    finally:
        await lane.close()
        await server.__aexit__()


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        (b"HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n\r\n<Response/>", b"<Response/>"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\n<Resp\r\n6\r\nonse/>\r\n0\r\n\r\n",
            b"<Response/>",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n"
            % len(gzip.compress(b"<Response/>"))
            + gzip.compress(b"<Response/>"),
            b"<Response/>",
        ),
    ],
    ids=["read-to-close", "chunked", "gzip"],
)
async def test_body_framings(client: HttpClient, answer: bytes, body: bytes) -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        await server.read_request(reader)
        writer.write(answer)
        await writer.drain()
        if b"HTTP/1.0" in answer:
            writer.close()
        else:
            await reader.read()

    server = await _serve(once)
    try:
        assert (await _get(client, server.url())).body == body  # type: ignore[attr-defined]
    finally:
        await server.__aexit__()


async def test_url_credentials_become_basic_authorization(client: HttpClient) -> None:
    server = await _serve(_keep_answering())
    try:
        url = URL(f"http://user:p%40ss@127.0.0.1:{server.port}/voice")
        await _get(client, url)
        assert b"Authorization: Basic dXNlcjpwQHNz\r\n" in server.heads[0]  # user:p@ss
    finally:
        await server.__aexit__()


async def test_stalled_and_trickling_responses_time_out(client: HttpClient) -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):  # connection 1 stalls; connection 2 trickles a byte every 0.1 s
            await asyncio.sleep(5 if n == 1 else 0.1)
            writer.write(b"x")

    server = await _serve(stall)
    try:
        started = time.monotonic()
        with pytest.raises(ReadTimedOut):
            await _get(client, server.url(), read=0.3, total=5.0)  # no byte for 0.3 s
        assert 0.25 < time.monotonic() - started < 1.5
        started = time.monotonic()
        with pytest.raises(ReadTimedOut):
            await _get(client, server.url(), read=0.3, total=0.8)  # bytes flow, total runs out
        assert 0.7 < time.monotonic() - started < 1.8
    finally:
        await server.__aexit__()


async def test_the_pool_limit_bounds_concurrent_connections() -> None:
    lane = HttpClient(limit=2)

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        while True:
            await server.read_request(reader)
            await asyncio.sleep(0.05)
            writer.write(OK)

    server = await _serve(slow)
    try:
        responses = await asyncio.gather(*(_get(lane, server.url()) for _ in range(8)))
        assert all(r.status == 200 for r in responses)  # type: ignore[attr-defined]
        assert server.most_open == 2
    finally:
        await lane.close()
        await server.__aexit__()


async def test_oversized_bodies_and_garbage(client: HttpClient) -> None:
    big = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.read_request(reader)
        writer.write(big if n < 3 else b"SIP/2.0 200 OK\r\n\r\n")
        await writer.drain()
        await reader.read()

    server = await _serve(answer)
    try:
        with pytest.raises(TooLarge):
            await _get(client, server.url(), max_body=1000)
        discarded = await _get(client, server.url(), max_body=1000, discard=True)
        assert (discarded.status, discarded.body) == (200, b"")  # type: ignore[attr-defined]
        with pytest.raises(MalformedResponse):
            await _get(client, server.url())
        assert server.connections == 3  # an oversized answer's connection is never reused
    finally:
        await server.__aexit__()


async def test_denied_networks_are_refused_before_connecting() -> None:
    lane = HttpClient(deny=DenyList(parse_networks(["127.0.0.0/8", "::1"])))
    server = await _serve(_keep_answering())
    try:
        with pytest.raises(EgressDeniedError):
            await _get(lane, server.url())
        with pytest.raises(EgressDeniedError):  # a name resolving only to denied addresses
            await _get(lane, URL(f"http://localhost:{server.port}/voice"))
        assert server.connections == 0
    finally:
        await lane.close()
        await server.__aexit__()


async def test_requests_leave_no_reference_cycles(client: HttpClient) -> None:
    """Every call makes up to four requests: a cycle per request costs GC pauses for all calls."""
    server = await _serve(_keep_answering())
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(20):
            await _get(client, server.url())
        gc.collect()
        cyclic = {type(o).__name__ for o in gc.garbage}
        assert not cyclic & {"Exchange", "HttpResponseParser", "HttpResponse"}, cyclic
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
        await server.__aexit__()


async def test_a_reset_is_a_connection_error_not_a_protocol_one(client: HttpClient) -> None:
    """RST instead of a response: ConnectionReset (11205, like aiohttp's ClientOSError)."""

    async def resets(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        await server.read_request(reader)
        reset(writer)

    server = await _serve(resets)
    try:
        with pytest.raises(ConnectionReset):
            await _get(client, server.url())
    finally:
        await server.__aexit__()
