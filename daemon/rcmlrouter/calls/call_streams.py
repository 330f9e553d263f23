"""A call's media streams: ``<Connect><Stream>``, ``<Start><Stream>``, ``<Stop><Stream>`` and
the REST API's ``Calls/{CA}/Streams``, on the call's own media session.

:class:`CallStreams` implements the executor's ``StreamControl`` port and the supervisor's
``LiveStreams`` (the API's way in, through ``supervisor.live_call(sid)``). Each stream is a
:class:`~rcmlrouter.streams.media_stream.MediaStream` (the socket, the wire protocol, the
agent's audio on the media clock); this module adds what belongs to the call:

- the ``X-Twilio-Signature`` of the handshake: the stream URL signed with the account's auth
  token, as Twilio signs it (no parameters);
- status callbacks through the durable outbox, ordered under the stream's sid (``MZ…``):
  ``stream-started``, ``stream-stopped``, ``stream-error`` with ``AccountSid``, ``CallSid``,
  ``StreamSid``, ``StreamName``, ``StreamEvent``, ``StreamError``, ``Timestamp``;
- a notification for every ``stream-error`` and for the problems a stream survives;
- the stream's row in the store (``streams``, a call's page lists it), through the services'
  batch writer, never awaited: ``in-progress`` when opened, then ``stopped`` or ``failed`` with
  the error; a refused ``<Connect>`` / ``<Start>`` is a ``failed`` row;
- limits: ``[streams] max_per_call`` streams at once (31940), names unique among running ones
  (31941); a call without media of ours (not answered, or bridged by ``<Dial>``) cannot stream
  (21220).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from datetime import UTC, datetime
from typing import Final

import structlog

from rcmlrouter.calls.call_media import CallMedia
from rcmlrouter.calls.call_state import CallState
from rcmlrouter.calls.wiring import CallWiring
from rcmlrouter.dates import rfc2822
from rcmlrouter.errors import StreamRefusedError
from rcmlrouter.rcml.model import Stream
from rcmlrouter.rcml.ports import StreamOutcome
from rcmlrouter.rcml.signing import compute_signature
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.stream_records import StreamRecord, StreamStartedBy
from rcmlrouter.streams.connector import HANDSHAKE_CODE
from rcmlrouter.streams.media_stream import MediaStream, StreamEnd, StreamSpec

log = structlog.get_logger(__name__)

NOT_IN_PROGRESS: Final = 21220
TOO_MANY: Final = 31940
NAME_IN_USE: Final = 31941


class _StreamEvents:
    """One stream's status callbacks, notifications and row (its ``StreamHooks``)."""

    __slots__ = ("name", "record", "sequence", "sid", "state", "stream", "wiring")

    def __init__(
        self,
        sid: str,
        stream: Stream,
        state: CallState,
        wiring: CallWiring,
        how: StreamStartedBy,
        track: str,
    ) -> None:
        self.sid = sid
        self.stream = stream
        self.name = stream.name or sid
        self.state = state
        self.wiring = wiring
        self.sequence = 0
        now = time.time()
        self.record = StreamRecord(
            sid, state.account_sid, state.call_sid, self.name, stream.url, track, how,
            "in-progress", None, None, now, now,
        )  # fmt: skip

    def _save(self, status: str, error_code: int | None = None, message: str | None = None) -> None:
        self.record = dataclasses.replace(
            self.record,
            status=status,
            error_code=error_code,
            error_message=message,
            date_updated=time.time(),
        )
        self.wiring.services.stream_records.add(self.record)

    def _callback(self, event: str, error: str | None = None) -> None:
        url = self.stream.status_callback
        if url is None:
            return
        state = self.state
        params = {
            "AccountSid": state.account_sid,
            "CallSid": state.call_sid,
            "StreamSid": self.sid,
            "StreamName": self.name,
            "StreamEvent": event,
            "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        if error is not None:
            params["StreamError"] = error
        method = self.stream.status_callback_method
        outbox = self.wiring.services.outbox
        outbox.enqueue(self.sid, state.account_sid, self.sequence, url, method, params)
        self.sequence += 1

    def opened(self) -> None:
        self.wiring.services.stream_records.add(self.record)

    def started(self) -> None:
        log.info("stream.started", stream_sid=self.sid, url=self.stream.url)
        self._callback("stream-started")

    def stopped(self) -> None:
        log.info("stream.stopped", stream_sid=self.sid)
        self._save("stopped")
        self._callback("stream-stopped")

    def failed(self, error_code: int, message: str) -> None:
        log.info("stream.failed", stream_sid=self.sid, error_code=error_code, error=message)
        self._save("failed", error_code, message)
        self.notify(error_code, message)
        self._callback("stream-error", message)

    def ended(self) -> None:
        """The stream is over: a row still ``in-progress`` (stopped before it connected, or
        with the call) is ``stopped``."""
        if self.record.status == "in-progress":
            self._save("stopped")

    def notify(self, error_code: int, message: str) -> None:
        self.wiring.notify(self.state, error_code, f"stream {self.name}: {message}", None)


class CallStreams:
    """The media streams of one call."""

    def __init__(self, media: CallMedia, state: CallState, wiring: CallWiring) -> None:
        self.media = media
        self.state = state
        self.wiring = wiring
        self._running: dict[str, MediaStream] = {}  # by StreamSid
        self._tasks: set[asyncio.Task[StreamEnd]] = set()

    @property
    def account_sid(self) -> str:
        return self.state.account_sid

    # -- the executor's port ----------------------------------------------------------------

    async def connect(self, stream: Stream) -> StreamOutcome:
        await self.media.streamable()
        try:
            running = self._open(stream, bidirectional=True, how="connect")
        except StreamRefusedError as exc:
            self._refused(stream, exc, "connect")
            return StreamOutcome({"StreamEvent": "stream-error", "StreamError": str(exc)})
        sid = running.spec.stream_sid
        try:
            end = await running.run()
        finally:
            self._running.pop(sid, None)
        if self.media.session is not None:  # keys pressed for the agent are not a <Gather>'s
            self.media.session.flush_digits()
        params = {"StreamSid": sid, "StreamEvent": "stream-stopped"}
        if end.error_code is not None:
            params.update(StreamEvent="stream-error", StreamError=end.message)
        ended = self.media.call.ended.done()
        return StreamOutcome(params, call_ended=ended)

    async def start(self, stream: Stream) -> None:
        await self.media.streamable()
        try:
            self.start_stream(stream, "start")
        except StreamRefusedError as exc:
            self._refused(stream, exc, "start")

    async def stop(self, name: str) -> None:
        self.stop_stream(name)

    # -- the supervisor's LiveStreams (the REST API) ----------------------------------------

    def start_stream(self, stream: Stream, how: StreamStartedBy = "api") -> dict[str, str]:
        """Start a one-way stream beside the document; its description (StreamRefusedError)."""
        running = self._open(stream, bidirectional=False, how=how)
        task = asyncio.create_task(running.run())
        self._tasks.add(task)
        sid = running.spec.stream_sid
        task.add_done_callback(lambda done: self._ended(sid, done))
        return self._describe(running, "in-progress")

    def stop_stream(self, ref: str) -> dict[str, str] | None:
        """Stop the stream whose sid or name is ``ref``; its description, None if none."""
        for sid, running in list(self._running.items()):
            if ref in (sid, running.spec.name) and not running.stopping:
                running.stop()
                return self._describe(running, "stopped")
        return None

    def close(self) -> None:
        """The call ended: every stream stops (its media session closed under it)."""
        for running in list(self._running.values()):
            running.stop()

    # -- inside -----------------------------------------------------------------------------

    def _open(self, stream: Stream, *, bidirectional: bool, how: StreamStartedBy) -> MediaStream:
        services = self.wiring.services
        config, session = services.config.streams, self.media.session
        connector = services.media.streams if services.media is not None else None
        if session is None or session.closed.done() or session.sender.on_hold:
            raise StreamRefusedError("the call has no media of ours to stream", NOT_IN_PROGRESS)
        if connector is None:
            raise StreamRefusedError("media streams are not configured", HANDSHAKE_CODE)
        if len(self._running) >= config.max_per_call:
            raise StreamRefusedError(f"more than {config.max_per_call} streams", TOO_MANY)
        running_names = {r.spec.name for r in self._running.values() if not r.stopping}
        if stream.name and stream.name in running_names:
            raise StreamRefusedError(f"a stream named {stream.name!r} is running", NAME_IN_USE)
        sid = new_sid("MZ")
        state = self.state
        headers = {}
        if state.auth_token:
            headers["X-Twilio-Signature"] = compute_signature(stream.url, {}, state.auth_token)
        spec = StreamSpec(
            stream_sid=sid,
            url=stream.url,
            name=stream.name or sid,
            account_sid=state.account_sid,
            call_sid=state.call_sid,
            track=stream.track,
            bidirectional=bidirectional,
            parameters=dict(stream.parameters),
            headers=headers,
        )
        hooks = _StreamEvents(sid, stream, state, self.wiring, how, _track(stream, bidirectional))
        running = MediaStream(spec, connector, session, hooks, buffer_seconds=config.buffer_seconds)
        hooks.opened()
        running.done.add_done_callback(lambda _: hooks.ended())
        self._running[sid] = running
        return running

    def _refused(self, stream: Stream, exc: StreamRefusedError, how: StreamStartedBy) -> None:
        track = _track(stream, bidirectional=how == "connect")
        events = _StreamEvents(new_sid("MZ"), stream, self.state, self.wiring, how, track)
        events.failed(exc.error_code, str(exc))

    def _ended(self, sid: str, task: asyncio.Task[StreamEnd]) -> None:
        self._tasks.discard(task)
        self._running.pop(sid, None)
        with contextlib.suppress(asyncio.CancelledError):
            if task.exception() is not None:
                log.error("stream.crashed", stream_sid=sid, error=repr(task.exception()))

    def _describe(self, running: MediaStream, status: str) -> dict[str, str]:
        spec = running.spec
        return {
            "sid": spec.stream_sid,
            "account_sid": spec.account_sid,
            "call_sid": spec.call_sid,
            "name": spec.name,
            "status": status,
            "date_updated": rfc2822(time.time()),
        }


def _track(stream: Stream, bidirectional: bool) -> str:
    """What is streamed to the agent: a ``<Connect>`` stream sends the caller's audio only."""
    return "inbound_track" if bidirectional else stream.track
