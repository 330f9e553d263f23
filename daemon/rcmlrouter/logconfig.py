"""structlog configuration: JSON lines on stdout (console renderer on a TTY), configured once.

The daemon (``run``) logs to stdout; every other command logs to stderr, so its result alone is
on stdout (``rcmlrouter init | jq``).

Per-call fields are bound with :mod:`structlog.contextvars`; secrets are redacted by
:func:`redact_secrets` before rendering.

A line costs what ``tests/bench/log_bench.py`` measures (one ``call.completed`` a call at the
default level ``info``): JSON by orjson (structlog's advice for speed; the standard ``json``
module took a fifth of the line), a UTC timestamp formatted once a second, and the sink below.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog


class LineSink:
    """stdout (or stderr) as structlog's logger and the standard library's stream.

    It never raises: a closed pipe (the reader died) must not crash the daemon. The stream is
    looked up on each write, so pytest's capture and redirections work. Lines arrive rendered
    (orjson's bytes, or text from the console renderer)."""

    def __init__(self) -> None:
        self.broken = False
        self.to_stderr = False
        self._lock = threading.Lock()

    @property
    def stream(self) -> Any:
        return sys.stderr if self.to_stderr else sys.stdout

    def msg(self, message: bytes | str) -> None:
        """One rendered line (structlog's logger interface)."""
        text = message.decode() if isinstance(message, bytes) else message
        self.write(text + "\n")

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg

    def write(self, text: str) -> int:
        if self.broken:
            return 0
        with self._lock:
            try:
                written = int(self.stream.write(text))
                self.stream.flush()
            except (OSError, ValueError):
                self.broken = True
                return 0
        return written

    def flush(self) -> None:
        """Lines are flushed as they are written (the standard library calls this too)."""


_STDOUT = LineSink()
_LIFECYCLE: list[Any] = []  # processors of the unfiltered lifecycle logger

_SECRET_KEYS = frozenset({"auth_token", "password", "authorization", "token", "AuthToken"})


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace the value of any secret-looking key with a fixed marker."""
    for key in _SECRET_KEYS.intersection(event_dict):
        event_dict[key] = "***"
    return event_dict


class UtcTimestamp:
    """``timestamp``: ISO 8601 UTC with microseconds (``2026-11-27T10:00:00.123456Z``, as
    structlog's ``TimeStamper(fmt="iso", utc=True)``), the date and time formatted once a
    second."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        event_dict["timestamp"] = f"{self._prefix}.{int((now - second) * 1e6):06d}Z"
        return event_dict


def _orjson_text(obj: Any, **kwargs: Any) -> str:
    """orjson for the standard library's records (its formatter must return text)."""
    return orjson.dumps(obj, **kwargs).decode()


def configure_logging(level: str = "info", fmt: str = "auto", *, to_stderr: bool = False) -> None:
    """Configure structlog and the stdlib root logger (aiohttp, asyncio) once.

    ``fmt``: ``json``, ``console``, or ``auto`` (console on a TTY, JSON otherwise).
    ``to_stderr``: log to stderr (the commands whose result is on stdout); else stdout.
    """
    _STDOUT.to_stderr = to_stderr
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: Any
    foreign_renderer: Any
    if fmt == "console" or (fmt == "auto" and _STDOUT.stream.isatty()):
        renderer = foreign_renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        foreign_renderer = structlog.processors.JSONRenderer(serializer=_orjson_text)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        UtcTimestamp(),
        redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *_args: _STDOUT,
        cache_logger_on_first_use=True,
    )
    # Records from the standard library (asyncio, aiohttp) go through the same renderer.
    _LIFECYCLE[:] = [*shared, structlog.processors.format_exc_info, renderer]
    handler = logging.StreamHandler(_STDOUT)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                foreign_renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.WARNING))


def lifecycle_logger() -> Any:
    """A logger whose lines (``ready``, ``stopping``, ``stopped``) are printed at any level.

    Operators' scripts and systemd-less supervisors wait for ``{"event": "ready"}``.
    """
    return structlog.wrap_logger(
        _STDOUT,
        processors=_LIFECYCLE or None,
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )
