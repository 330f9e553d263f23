"""Fixtures for the SIP endpoint tests: the endpoint on 127.0.0.1:0 with short timers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sip_harness import FAST, RecordingHandler

from rcmlrouter.sip.endpoint import SipEndpoint


@pytest.fixture
def handler() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
async def endpoint(handler: RecordingHandler) -> AsyncIterator[SipEndpoint]:
    ep = SipEndpoint(handler, timers=FAST)
    await ep.start(["udp:127.0.0.1:0", "tcp:127.0.0.1:0"])
    yield ep
    for task in list(handler.tasks):
        task.cancel()
    await ep.stop()
