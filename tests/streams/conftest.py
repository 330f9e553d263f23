"""Fixtures of the media-stream tests: a call's media on loopback (support/stream_call.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from rcmlrouter.media import rtp
from rcmlrouter.media.clock import MediaClock
from rcmlrouter.media.session import MediaParams, MediaSession
from support.stream_call import CONNECTORS, EVENT_PT, Call, Caller


@pytest.fixture
async def call() -> AsyncIterator[Call]:
    loop = asyncio.get_running_loop()
    _, caller = await loop.create_datagram_endpoint(Caller, local_addr=("127.0.0.1", 0))
    clock = MediaClock()
    params = MediaParams("PCMU", 0, EVENT_PT, "127.0.0.1", caller.port)
    session = await MediaSession.attach(rtp.bind_pair("127.0.0.1", 0), params, clock)
    yield Call(session, caller, clock)
    session.close()
    assert caller.transport is not None
    caller.transport.close()


@pytest.fixture(autouse=True)
async def _close_connectors() -> AsyncIterator[None]:
    yield
    while CONNECTORS:
        await CONNECTORS.pop().close()
