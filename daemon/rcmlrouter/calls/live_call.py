"""A running call as the supervisor holds it: its CallSid, its task, and how its document stops.

A call's document runs in the call's task. It stops in one of two ways, and the run needs to
know which one:

- the far end ended the call (one of :data:`REMOTE_ENDS`): the task is cancelled and there is
  nothing left to end (:attr:`LiveCall.remote_ended`);
- the supervisor stopped it (:meth:`LiveCall.interrupt`, today at the drain deadline; live call
  control from the API later): the task is cancelled and the run ends the call as
  :attr:`LiveCall.stop_cause` says.
"""

from __future__ import annotations

import asyncio
from typing import Final, Protocol

from rcmlrouter.rcml.model import Stream

# End causes that come from the far end (or the network) and interrupt the running RCML. An
# answered outgoing call can only end with the first and the last of them.
REMOTE_ENDS: Final = frozenset({"remote-bye", "cancel", "ack-timeout", "transport-error"})


class LiveStreams(Protocol):
    """A running call's media streams, as the REST API drives them (``calls/call_streams``)."""

    @property
    def account_sid(self) -> str: ...

    def start_stream(self, stream: Stream) -> dict[str, str]:
        """Start a one-way stream: its description (sid, name, status…); raises
        ``StreamRefusedError``."""
        ...

    def stop_stream(self, ref: str) -> dict[str, str] | None:
        """Stop the stream with sid or name ``ref``: its description; None when none."""
        ...


class LiveCall:
    """One call in the supervisor's registry (by CallSid)."""

    __slots__ = (
        "_running",
        "call_sid",
        "inbound",
        "remote_ended",
        "stop_cause",
        "streams",
        "task",
    )

    def __init__(self, call_sid: str, *, inbound: bool) -> None:
        self.call_sid = call_sid
        self.inbound = inbound
        self.task: asyncio.Task[None] | None = None
        self.remote_ended = False
        self.stop_cause: str | None = None
        self.streams: LiveStreams | None = None  # the call's media streams, once it has media
        self._running = False

    def watch(self, ended: asyncio.Future[str]) -> None:
        """From now on (the task is running) a remote end of the call stops the document."""
        self._running = True
        ended.add_done_callback(self._on_end)

    def settle(self) -> None:
        """The run is over: a late end of the call no longer cancels anything."""
        self._running = False

    def interrupt(self, cause: str) -> None:
        """Stop the running document; the run then ends the call (``cause``: ``drain``)."""
        if self.stop_cause is None:
            self.stop_cause = cause
        if self.task is not None:
            self.task.cancel()

    def uncancel(self) -> None:
        """The run caught the cancellation and goes on ending the call."""
        if self.task is not None:
            self.task.uncancel()

    def _on_end(self, ended: asyncio.Future[str]) -> None:
        if self._running and not ended.cancelled() and ended.result() in REMOTE_ENDS:
            self.remote_ended = True
            if self.task is not None:
                self.task.cancel()
