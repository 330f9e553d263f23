"""Fixtures for the RCML fetcher tests: a loopback webhook server and the shared session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from webhook_server import WebhookServer

from rcmlrouter.rcml.fetch import FetchTimeouts, RcmlFetcher, create_webhook_session
from rcmlrouter.rcml.keepalive import KeepAliveClient


@pytest.fixture
async def server() -> AsyncIterator[WebhookServer]:
    webhook_server = WebhookServer()
    await webhook_server.start()
    yield webhook_server
    await webhook_server.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    client_session = create_webhook_session(pool_size=20)
    yield client_session
    await client_session.close()


@pytest.fixture(params=["aiohttp", "keepalive"])
async def fetcher(
    request: pytest.FixtureRequest, session: aiohttp.ClientSession
) -> AsyncIterator[RcmlFetcher]:
    """Every fetcher test runs on both transports: aiohttp and the daemon's keep-alive client."""
    lane = KeepAliveClient(limit=20) if request.param == "keepalive" else None
    yield RcmlFetcher(session, FetchTimeouts(connect=2.0, read=3.0, total=3.0), lane=lane)
    if lane is not None:
        await lane.close()
