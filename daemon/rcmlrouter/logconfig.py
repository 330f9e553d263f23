"""structlog configuration: JSON lines on stdout (console renderer on a TTY), configured once.

The daemon (``run``) logs to stdout; every other command logs to stderr, so its result alone is
on stdout (``rcmlrouter init | jq``).

Per-call fields are bound with :mod:`structlog.contextvars`; secrets are redacted by
:func:`redact_secrets` before rendering.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog


class _SafeStream:
    """stdout (or stderr) that never raises: a closed pipe (the reader died) must not crash the
    daemon. The stream is looked up on each write, so pytest's capture and redirections work."""

    def __init__(self) -> None:
        self.broken = False
        self.to_stderr = False

    @property
    def stream(self) -> Any:
        return sys.stderr if self.to_stderr else sys.stdout

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return int(self.stream.write(text))
            except (OSError, ValueError):
                self.broken = True
        return 0

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except (OSError, ValueError):
                self.broken = True


_STDOUT = _SafeStream()
_LIFECYCLE: list[Any] = []  # processors of the unfiltered lifecycle logger

_SECRET_KEYS = frozenset({"auth_token", "password", "authorization", "token", "AuthToken"})


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace the value of any secret-looking key with a fixed marker."""
    for key in event_dict:
        if key in _SECRET_KEYS:
            event_dict[key] = "***"
    return event_dict


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
    if fmt == "console" or (fmt == "auto" and _STDOUT.stream.isatty()):
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(_STDOUT),  # type: ignore[arg-type]
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
                renderer,
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
        structlog.PrintLogger(_STDOUT),  # type: ignore[arg-type]
        processors=_LIFECYCLE or None,
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )
