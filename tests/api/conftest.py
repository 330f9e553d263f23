"""Fixtures for the API tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from api_harness import PUBLIC_BASE, Api, start_api


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async for value in start_api(tmp_path, public_base_url=PUBLIC_BASE):
        yield value
