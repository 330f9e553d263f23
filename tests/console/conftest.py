"""Fixtures for the console tests (in process: the API app with the console mounted)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from console_harness import Console, start_console


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    async for value in start_console(tmp_path):
        yield value
