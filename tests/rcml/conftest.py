"""Fixtures for the RCML fetcher tests: a loopback webhook server and the one HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from webhook_server import WebhookServer

from rcmlrouter.httpclient.client import HttpClient
from rcmlrouter.rcml.fetch import FetchTimeouts, RcmlFetcher


@pytest.fixture
async def server() -> AsyncIterator[WebhookServer]:
    webhook_server = WebhookServer()
    await webhook_server.start()
    yield webhook_server
    await webhook_server.stop()


@pytest.fixture
async def http_client() -> AsyncIterator[HttpClient]:
    client = HttpClient(limit=20)
    yield client
    await client.close()


@pytest.fixture
async def fetcher(http_client: HttpClient) -> RcmlFetcher:
    """The fetcher on the daemon's one HTTP client path."""
    return RcmlFetcher(http_client, FetchTimeouts(connect=2.0, read=3.0, total=3.0))
