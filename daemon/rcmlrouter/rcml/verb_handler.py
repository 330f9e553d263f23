"""What a verb handler gets and what it returns (the executor's handler table is built on it).

A handler is ``async def handler(runner, verb) -> Outcome``: ``None`` continues with the next
verb, :data:`STOP` ends the document, a :class:`~rcmlrouter.rcml.model.Document` replaces the
running one. :class:`VerbRunner` is the part of the executor a handler may use; the executor
implements it, so handler modules (``media_verbs``) need not import the executor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

from rcmlrouter.rcml.model import Document
from rcmlrouter.rcml.ports import CallLeg, StreamControl


class _Stop:
    """Marker: the document ends here."""


STOP: Final = _Stop()

Outcome = Document | _Stop | None


class VerbRunner(Protocol):
    """The executor as a verb handler sees it."""

    @property
    def leg(self) -> CallLeg: ...

    @property
    def streams(self) -> StreamControl | None:
        """The call's media streams (None where the leg has no media of its own)."""
        ...

    def notify(self, error_code: int, message: str) -> None:
        """Record a notification about the running document."""
        ...

    async def ensure_answered(self) -> None: ...

    async def follow(
        self, url: str, method: str, extra: Mapping[str, str] | None = None
    ) -> Document:
        """Fetch the next document (bounded by ``MAX_REDIRECTS``)."""
        ...
