"""The client's memory is bounded whatever the tenants' URLs: idle pool and DNS cache."""

from __future__ import annotations

import asyncio

import pytest

from rcmlrouter.httpclient.addresses import AddressBook
from rcmlrouter.httpclient.client import HttpClient
from rcmlrouter.httpclient.failures import ConnectFailed
from rcmlrouter.httpclient.pool import IdlePool
from support.rawhttp import OK, RawServer


class Stub:
    def __init__(self) -> None:
        self.closed = False
        self.idle_since = 0.0

    def close(self) -> None:
        self.closed = True


async def test_the_idle_pool_keeps_at_most_max_idle_connections_oldest_out() -> None:
    pool: IdlePool[Stub] = IdlePool(keepalive=60.0, max_idle=3)
    stubs = [Stub() for _ in range(5)]
    for n, stub in enumerate(stubs):
        pool.put(("http", f"host{n}", 80), stub)
    assert len(pool) == 3 and pool.destinations == 3
    assert [stub.closed for stub in stubs] == [True, True, False, False, False]
    assert pool.take(("http", "host0", 80)) is None
    assert pool.take(("http", "host4", 80)) is stubs[4]
    assert len(pool) == 2 and pool.destinations == 2
    pool.close()
    assert all(stub.closed for stub in stubs if stub is not stubs[4])


async def test_idle_connections_are_closed_and_forgotten_once_expired() -> None:
    pool: IdlePool[Stub] = IdlePool(keepalive=0.05, max_idle=100)
    stubs = [Stub() for _ in range(50)]
    for n, stub in enumerate(stubs):
        pool.put(("http", f"host{n}.test", 80), stub)  # hosts that are never asked for again
    await asyncio.sleep(0.2)
    assert len(pool) == 0 and pool.destinations == 0
    assert all(stub.closed for stub in stubs)


async def test_newest_first_and_a_stale_or_closed_one_is_skipped() -> None:
    pool: IdlePool[Stub] = IdlePool(keepalive=60.0, max_idle=10)
    key = ("http", "a", 80)
    old, closed, new = Stub(), Stub(), Stub()
    for stub in (old, closed, new):
        pool.put(key, stub)
    closed.closed = True
    assert pool.take(key) is new
    assert pool.take(key) is old  # the closed one was skipped (and dropped)
    assert pool.take(key) is None and pool.destinations == 0


async def test_the_dns_cache_is_bounded_and_expires() -> None:
    asked: list[str] = []

    async def lookup(host: str, _port: int) -> list[str]:
        asked.append(host)
        if host == "gone.test":
            raise OSError("no such name")
        return ["127.0.0.1"]

    book = AddressBook(lookup=lookup, ttl=0.1, max_entries=2)
    for host in ("a.test", "b.test", "a.test", "c.test", "a.test", "b.test"):
        assert await book.addresses(host, 80) == ["127.0.0.1"]
    # a.test was used last before c.test came in, so b.test was the one forgotten
    assert asked == ["a.test", "b.test", "c.test", "b.test"]
    assert len(book) == 2
    await asyncio.sleep(0.15)
    await book.addresses("a.test", 80)
    assert asked[-1] == "a.test"  # expired: asked again
    with pytest.raises(ConnectFailed):
        await book.addresses("gone.test", 80)
    assert len(book) == 2  # failures are not cached


async def test_a_client_talking_to_many_hosts_stays_bounded() -> None:
    """Many distinct host names (one server): at most ``dns_entries`` names and ``max_idle``
    idle connections are kept."""

    async def lookup(_host: str, _port: int) -> list[str]:
        return ["127.0.0.1"]

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        while True:
            await server.read_request(reader)
            writer.write(OK)
            await writer.drain()

    async with (
        RawServer(answer) as server,
        HttpClient(limit=4, max_idle=8, lookup=lookup, dns_entries=16) as client,
    ):
        for n in range(40):
            url = server.url().with_host(f"tenant{n}.test")
            response = await client.request(
                "GET", url, {}, None, connect=1, read=1, total=2, max_body=100, max_redirects=0
            )
            assert response.status == 200
        assert client.dns_cached == 16
        assert len(client.idle) == 8 and client.idle.destinations == 8
    await asyncio.sleep(0.05)
    assert server.open == 0  # every idle connection was closed with the client
