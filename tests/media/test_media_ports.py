"""The RTP port pool (media/ports.py): a random start per process, least recently used first,
ports other processes hold skipped for a while and retried, a scan across the whole range, and
``LookupError`` only when the range is used up; with real sockets, two pools (two daemons) on one
range and a foreign process in it."""

from __future__ import annotations

import errno
import random
import socket
from collections.abc import Callable

import pytest

from rcmlrouter.media import ports as ports_module
from rcmlrouter.media.ports import BUSY_FOR, RECHECK_AFTER, RtpPortPool
from rcmlrouter.media.rtp import BoundPair, bind_pair
from support.ports import free_port_range


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def foreign(held: set[int]) -> Callable[[int], int]:
    """A bind function: EADDRINUSE for the ports another process holds."""

    def bind(port: int) -> int:
        if port in held:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        return port

    return bind


def test_each_pool_starts_at_its_own_random_point() -> None:
    starts = {RtpPortPool(20000, 30000).acquire() for _ in range(20)}
    assert len(starts) > 10  # 5,000 possible starts: 20 pools in lockstep would give 1
    assert all(port % 2 == 0 and 20000 <= port < 29999 for port in starts)


def test_ports_are_reused_least_recently_used_first() -> None:
    pool = RtpPortPool(20000, 20008, rng=random.Random(0))  # 20000 20002 20004 20006
    first = [pool.acquire() for _ in range(4)]
    assert sorted(first) == [20000, 20002, 20004, 20006]
    with pytest.raises(LookupError):
        pool.acquire()
    pool.release(first[2])
    pool.release(first[0])
    assert [pool.acquire(), pool.acquire()] == [first[2], first[0]]
    pool.release(first[1])
    pool.release(first[1])  # a second release is a no-op, not a duplicate free port
    assert pool.acquire() == first[1]
    with pytest.raises(LookupError):
        pool.acquire()


def test_claim_scans_past_every_port_another_process_holds() -> None:
    pool = RtpPortPool(20000, 22000, rng=random.Random(1))  # 1,000 ports
    held = {port for port in range(20000, 22000, 2) if port != 21234}
    claimed = None
    batches = 0
    while claimed is None:  # the caller's loop: batches of attempts, the loop runs in between
        claimed = pool.claim(foreign(held), attempts=64)
        batches += 1
    assert claimed == (21234, 21234) and pool.in_use == 1
    assert pool.busy == pool.busy_found and batches == pool.busy_found // 64 + 1
    with pytest.raises(LookupError):  # the rest is busy too: the range is used up
        while pool.claim(foreign(held), attempts=64) is None:
            pass
    assert pool.busy == pool.busy_found == 999
    with pytest.raises(LookupError):  # and stays so, without another scan
        pool.claim(foreign(held))
    assert pool.busy_found == 999


def test_busy_ports_are_skipped_for_a_while_then_offered_again() -> None:
    clock = Clock()
    pool = RtpPortPool(20000, 20040, rng=random.Random(2), clock=clock)  # 20 ports
    held = {20010, 20012}
    got = [pool.claim(foreign(held)) for _ in range(18)]
    assert {port for port, _ in got if port} == set(range(20000, 20040, 2)) - held
    assert pool.busy == 2
    for port, _ in got:
        pool.release(port)
    clock.now += BUSY_FOR - 0.1
    skipped = [pool.acquire() for _ in range(18)]
    assert not held & set(skipped)  # still remembered as busy
    for port in skipped:
        pool.release(port)
    clock.now += 0.2
    held.clear()  # the other process let them go
    again = {pool.acquire() for _ in range(20)}
    assert {20010, 20012} <= again and pool.busy == 0


def test_with_nothing_free_busy_ports_are_rechecked_before_giving_up() -> None:
    clock = Clock()
    pool = RtpPortPool(20000, 20008, rng=random.Random(3), clock=clock)
    held = {20000, 20002, 20004}
    assert pool.claim(foreign(held)) == (20006, 20006)
    with pytest.raises(LookupError):
        pool.claim(foreign(held))
    clock.now += RECHECK_AFTER
    held.discard(20002)
    assert pool.claim(foreign(held)) == (20002, 20002)
    with pytest.raises(LookupError):  # the other two were checked again just now
        pool.claim(foreign(held))


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENFILE, errno.EADDRNOTAVAIL])
def test_an_error_that_is_not_the_ports_fault_is_raised_and_the_port_kept(code: int) -> None:
    pool = RtpPortPool(20000, 20004, rng=random.Random(4))

    def bind(port: int) -> int:
        raise OSError(code, "not the port")

    with pytest.raises(OSError) as info:
        pool.claim(bind)
    assert info.value.errno == code
    assert pool.busy == 0 and pool.in_use == 0
    assert sorted([pool.acquire(), pool.acquire()]) == [20000, 20002]


def test_the_old_lockstep_cannot_recur_with_real_sockets(unused_range: int) -> None:
    """Two pools (two daemons) on one range, and a third process holding a few ports: the
    second pool takes every port the first left, without one failure; then both are used up."""
    low = unused_range
    a = RtpPortPool(low, low + 200, rng=random.Random(5))
    b = RtpPortPool(low, low + 200, rng=random.Random(5))  # even the same start: no lockstep
    pairs: list[BoundPair] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.bind(("127.0.0.1", low + 41))  # someone's odd port: pair low+40 unusable
            for pool, count in ((a, 25), (b, 25), (a, 25), (b, 24)):
                pairs += [claim(pool, low) for _ in range(count)]
            ports = {pair.port for pair in pairs}
            assert len(ports) == 100 - 1 and low + 40 not in ports
            with pytest.raises(LookupError):
                claim(a, low)
            with pytest.raises(LookupError):
                claim(b, low)
    finally:
        for pair in pairs:
            pair.close()


def claim(pool: RtpPortPool, low: int) -> BoundPair:
    while (claimed := pool.claim(lambda port: bind_pair("127.0.0.1", port), 16)) is None:
        pass
    return claimed[1]


def test_bind_pair_keeps_the_errno_and_closes_what_it_opened(unused_range: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        stranger.bind(("127.0.0.1", unused_range + 1))
        with pytest.raises(OSError) as info:
            bind_pair("127.0.0.1", unused_range)
        assert info.value.errno == errno.EADDRINUSE
    pair = bind_pair("127.0.0.1", unused_range)  # the even socket of the failed try was closed
    assert pair.rtp.getsockname()[1] == unused_range
    assert pair.rtcp.getsockname()[1] == unused_range + 1
    pair.close()


def test_the_constants_keep_their_promises() -> None:
    assert ports_module.RECHECK_AFTER < ports_module.BUSY_FOR
    assert {errno.EADDRINUSE, errno.EACCES} == set(ports_module.PORT_ERRNOS)


@pytest.fixture
def unused_range() -> int:
    """The start of 200 loopback ports below the ephemeral range that no one holds now."""
    return free_port_range(200)


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_a_port_comes_back_only_once_its_sockets_are_closed(
    loop_name: str, unused_range: int
) -> None:
    """CallMedia gives the port back from ``when_closed``: at that moment a new bind of the
    pair must succeed (asyncio and uvloop close the sockets an iteration after close())."""
    import asyncio

    import uvloop

    from rcmlrouter.media.rtp import RtpEndpoint

    async def scenario() -> list[str]:
        seen: list[str] = []
        endpoint = await RtpEndpoint.attach(bind_pair("127.0.0.1", unused_range), ("127.0.0.1", 9))

        def closed() -> None:
            bind_pair("127.0.0.1", unused_range).close()  # raises if a socket were still bound
            seen.append("closed")

        endpoint.close()
        endpoint.when_closed(closed)
        seen.append("after close()")
        for _ in range(5):
            await asyncio.sleep(0)
        endpoint.when_closed(lambda: seen.append("at once"))  # already closed: runs now
        return seen

    runner = uvloop.run if loop_name == "uvloop" else asyncio.run
    assert runner(scenario()) == ["after close()", "closed", "at once"]
