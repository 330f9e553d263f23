"""A running call as the supervisor holds it: its CallSid, its task, how its document stops,
and the handles live call control (``POST Calls/{CA}``, ``calls/live_control.py``) acts through.

A call's document runs in the call's task. It stops in one of three ways, and the run needs to
know which one:

- the far end ended the call (one of :data:`REMOTE_ENDS`): the task is cancelled and there is
  nothing left to end (:attr:`LiveCall.remote_ended`);
- the supervisor stopped it (:meth:`LiveCall.interrupt`: ``drain`` at the drain deadline,
  ``api-hangup`` for ``Status=completed``, ``canceled`` for ``Status=canceled``): the task is
  cancelled and the run ends the call as :attr:`LiveCall.stop_cause` says;
- the API redirected it (:meth:`LiveCall.redirect`): the running verb stops and the executor runs
  the new document (the :class:`~rcmlrouter.rcml.ports.Steering` port; the supervisor makes every
  call task's ``STEERING`` its live call). Only a running verb is stopped: a redirect that comes
  while no verb runs (the first document is being fetched) waits for the next verb.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Final, Protocol

from rcmlrouter.rcml.model import Stream
from rcmlrouter.rcml.ports import STEERING, RedirectTarget

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


class CallbackSwitch(Protocol):
    """Where a call's remaining status callbacks go (its events: ``calls/call_events.py``)."""

    def switch_callbacks(self, url: str, method: str) -> asyncio.Future[None]:
        """From now on send the call's events to ``url`` (``""``: none); resolves when the
        call's record says so durably (a restart sends the final event there)."""
        ...


class LiveCall:
    """One call in the supervisor's registry (by CallSid)."""

    __slots__ = (
        "_final",
        "_in_verb",
        "_limit",
        "_redirect",
        "_redirect_cancelled",
        "_running",
        "answered_at",
        "call_sid",
        "callbacks",
        "inbound",
        "remote_ended",
        "status_of",
        "stop_cause",
        "streams",
        "task",
    )

    def __init__(self, call_sid: str, *, inbound: bool, status: str = "queued") -> None:
        self.call_sid = call_sid
        self.inbound = inbound
        self.task: asyncio.Task[None] | None = None
        self.remote_ended = False
        self.stop_cause: str | None = None
        self.status_of: Callable[[], str] = lambda: status
        """The call's CallStatus now (queued, ringing, in-progress): the run keeps it current."""
        self.answered_at: Callable[[], float | None] = lambda: None
        """When the call was answered (wall clock; None before): the run keeps it current."""
        self.callbacks: CallbackSwitch | None = None
        """The call's events, when the run lets the API move its status callbacks."""
        self.streams: LiveStreams | None = None  # the call's media streams, once it has media
        self._running = False
        self._redirect: RedirectTarget | None = None
        self._in_verb = False
        self._redirect_cancelled = False
        self._final: asyncio.Future[None] | None = None
        self._limit: asyncio.TimerHandle | None = None

    @property
    def status(self) -> str:
        return self.status_of()

    @property
    def ending(self) -> bool:
        """The call is being ended (remotely, or by the supervisor), or its task is over."""
        task = self.task
        return self.remote_ended or self.stop_cause is not None or task is None or task.done()

    def watch(self, ended: asyncio.Future[str]) -> None:
        """From now on (the task is running) a remote end of the call stops the document."""
        self._running = True
        ended.add_done_callback(self._on_end)

    def settle(self) -> None:
        """The run is over: a late end of the call no longer cancels anything."""
        self._running = False
        self.limit_time(None)

    def limit_time(self, seconds: float | None) -> None:
        """End the call (``time-limit``) once it has lasted ``seconds`` from its answer (from
        now, while it is not answered; at once when that is past); None: no limit. A new limit
        replaces the last (``TimeLimit`` of ``POST Calls``, then of an update)."""
        if self._limit is not None:
            self._limit.cancel()
            self._limit = None
        if seconds is None:
            return
        answered = self.answered_at()
        delay = seconds if answered is None else answered + seconds - time.time()
        loop = asyncio.get_running_loop()
        self._limit = loop.call_later(max(delay, 0.0), self.interrupt, "time-limit")

    def interrupt(self, cause: str) -> None:
        """Stop the running document; the run then ends the call (``cause``: ``drain``,
        ``api-hangup``, ``canceled``)."""
        if self.stop_cause is None:
            self.stop_cause = cause
        if self.task is not None:
            self.task.cancel()

    def uncancel(self) -> None:
        """The run caught the cancellation and goes on ending the call."""
        if self.task is not None:
            self.task.uncancel()

    # -- redirect (the executor's Steering port) ----------------------------------------------

    def redirect(self, target: RedirectTarget) -> None:
        """Run ``target`` instead of the rest of the document (the last redirect wins)."""
        self._redirect = target
        if self._in_verb and not self._redirect_cancelled and self.task is not None:
            self._redirect_cancelled = True
            self.task.cancel()

    @property
    def redirecting(self) -> bool:
        """A redirect is stopping the running verb (its cancellation is the steering's)."""
        return self._redirect_cancelled

    def take_redirect(self) -> RedirectTarget | None:
        target, self._redirect = self._redirect, None
        return target

    def verb_started(self) -> None:
        self._in_verb = True

    def verb_ended(self) -> RedirectTarget | None:
        self._in_verb = False
        if self._redirect_cancelled:
            self._redirect_cancelled = False
            if self.task is not None:
                self.task.uncancel()
        return self.take_redirect()

    # -- the end ------------------------------------------------------------------------------

    def closing(self, final: asyncio.Future[None]) -> None:
        """The run committed the call's final record: ``final`` resolves when it is durable."""
        self._final = final

    async def wait_closed(self, seconds: float) -> bool:
        """Wait (at most ``seconds``) for the task to end and its final record to be
        durable; True when both happened."""
        task = self.task
        if task is None:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        done, _ = await asyncio.wait([task], timeout=seconds)
        if not done:
            return False
        final = self._final
        if final is None or final.done():
            return True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(final), max(0.0, deadline - loop.time()))
        return final.done()

    def _on_end(self, ended: asyncio.Future[str]) -> None:
        if self._running and not ended.cancelled() and ended.result() in REMOTE_ENDS:
            self.remote_ended = True
            if self.task is not None:
                self.task.cancel()


def stopped_by_redirect() -> bool:
    """Whether this call task's cancellation is a redirect from the API (its steering's), not
    the end of the call: the stopped verb cleans up and the call goes on with the new document."""
    live = STEERING.get()
    return isinstance(live, LiveCall) and live.redirecting
