"""What the console reads from the running daemon besides the store: the routing snapshot and
organizations (explanations), the callback attempts log, the node's health and metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from rcmlrouter.callback_attempts import CallbackAttempts
from rcmlrouter.directory import Directory
from rcmlrouter.routing.table import RoutingSnapshot


@dataclass(slots=True)
class ConsoleSources:
    """Lent by the composition root (``app.py``); tests build their own.

    ``health()``: this node's ``/health`` document; ``metrics()``: its ``/metrics`` text.
    """

    snapshot: RoutingSnapshot
    directory: Directory
    attempts: CallbackAttempts
    health: Callable[[], dict[str, Any]]
    metrics: Callable[[], bytes]
    default_region: str = "US"
    session_timeout: float = 3600.0


SOURCES_KEY = web.AppKey("console_sources", ConsoleSources)


def sources_of(request: web.Request) -> ConsoleSources:
    return request.app[SOURCES_KEY]
