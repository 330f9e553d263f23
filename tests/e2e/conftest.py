"""Fixtures for end-to-end tests: one daemon and one webhook server per module."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.daemon import DaemonProcess
from support.pg import drop_schema, new_schema_name
from support.webhooks import WebhookServer

_numbers = itertools.count(100)


@pytest.fixture(scope="module")
def webhooks() -> Iterator[WebhookServer]:
    server = WebhookServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    process = DaemonProcess(tmp_path_factory.mktemp("daemon")).start()
    yield process
    process.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def dial() -> str:
    """A fresh SIP dial string for one test (``77001``, ``77002``…)."""
    return f"77{next(_numbers):03d}"


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test's cluster, dropped after it."""
    name = new_schema_name()
    yield name
    drop_schema(name)
