"""One media stream: a call's audio to an agent's WebSocket and, when bidirectional, back.

:meth:`MediaStream.run` connects, sends ``connected`` and ``start``, then forwards the tracks it
was asked for (the caller's audio as it arrives, the audio sent to the caller as it is sent) and,
on a bidirectional stream, the caller's key presses; the agent's audio is played to the caller
through :class:`~rcmlrouter.streams.playout.AgentPlayout` on the media clock. It returns when the
agent closes the socket, :meth:`MediaStream.stop` is called (``<Stop><Stream>``, the REST API,
the end of ``<Connect>``'s document is not one), or the call's media closes; we then send
``stop`` and close the socket. Nothing here blocks the call's media: the media taps only queue
messages (:class:`~rcmlrouter.streams.connector.AgentSocket`).

What happens is told to :class:`StreamHooks` (the call wing turns it into status callbacks and
notifications): ``started``, then ``stopped`` or ``failed`` (connect refused or timed out, the
socket dropped without a close frame, an oversized message); ``notify`` for the problems after
which the stream goes on (one each per stream: a protocol violation, a binary frame, the
agent's audio overflowing its buffer, media dropped for an agent that does not read).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import structlog

from rcmlrouter import metrics
from rcmlrouter.media import g711
from rcmlrouter.media.session import MediaSession
from rcmlrouter.streams.connector import (
    CLOSE_CODE,
    PROTOCOL_CODE,
    AgentSocket,
    Closed,
    Frame,
    StreamConnectError,
    StreamConnector,
)
from rcmlrouter.streams.playout import FRAME_BYTES, AgentAudio, AgentPlayout
from rcmlrouter.streams.wire import (
    AgentClear,
    AgentMark,
    AgentMedia,
    ProtocolViolation,
    StreamMessages,
    read_agent_message,
    tracks_of,
)

log = structlog.get_logger(__name__)

SLOW_AGENT_CODE: Final = 31925  # rcmlrouter: the agent does not read; oldest media dropped
OVERFLOW_CODE: Final = 31926  # rcmlrouter: the agent's audio overflowed the stream's buffer
TOO_BIG_CLOSE: Final = 1009  # WebSocket close code: message too big
_CLOSING: set[asyncio.Task[None]] = set()  # closing handshakes that outlive their stream


class StreamHooks(Protocol):
    """What a stream tells the call it belongs to."""

    def started(self) -> None: ...

    def stopped(self) -> None: ...

    def failed(self, error_code: int, message: str) -> None: ...

    def notify(self, error_code: int, message: str) -> None: ...


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """What to stream where: ``track`` is ``inbound_track``, ``outbound_track`` or
    ``both_tracks``; a ``bidirectional`` stream (``<Connect>``) sends the caller's audio and
    key presses and plays the agent's audio."""

    stream_sid: str
    url: str
    name: str
    account_sid: str
    call_sid: str
    track: str = "inbound_track"
    bidirectional: bool = False
    parameters: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """How a stream ended: ``error_code`` set when it failed."""

    by_agent: bool
    error_code: int | None = None
    message: str = ""


class MediaStream:
    """Runs one stream on a call's media session (implements ``media.session.MediaTap``)."""

    def __init__(
        self,
        spec: StreamSpec,
        connector: StreamConnector,
        session: MediaSession,
        hooks: StreamHooks,
        *,
        buffer_seconds: float = 120.0,
    ) -> None:
        self.spec = spec
        self.connector = connector
        self.session = session
        self.hooks = hooks
        self.messages = StreamMessages(spec.stream_sid)
        self.tracks = ("inbound",) if spec.bidirectional else tracks_of(spec.track)
        max_frames = max(1, round(buffer_seconds * 8000 / FRAME_BYTES))
        self.audio = AgentAudio(max_frames, self._echo_mark)
        self.audio.on_overflow = self._overflowed
        self.playout = AgentPlayout(self.audio)
        self.socket: AgentSocket | None = None
        self._connecting: asyncio.Future[AgentSocket] | None = None
        self._started_at = 0.0
        self._stop: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._notified: set[int] = set()
        self.done: asyncio.Future[StreamEnd] = asyncio.get_running_loop().create_future()

    # -- control --------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """:meth:`stop` was called, or the stream is over."""
        return self._stop.done() or self.done.done()

    def stop(self) -> None:
        """End the stream (``stop`` to the agent, then close)."""
        if not self._stop.done():
            self._stop.set_result(None)

    async def run(self) -> StreamEnd:
        """Connect, stream until the end; never raises for the agent's faults."""
        try:
            end = await self._run()
        except asyncio.CancelledError:  # the call's task stopped (the caller hung up): say so
            if self._connecting is not None and not self._connecting.done():
                self._connecting.cancel()  # no socket may outlive its call
            self._teardown()
            socket = self.socket
            if socket is not None and not socket.closing:
                socket.send(self.messages.stop(self.spec.account_sid, self.spec.call_sid))
                closing = asyncio.get_running_loop().create_task(socket.close())
                _CLOSING.add(closing)
                closing.add_done_callback(_CLOSING.discard)
                self.hooks.stopped()
            self._finish(StreamEnd(by_agent=False))
            raise
        self._finish(end)
        return end

    def _finish(self, end: StreamEnd) -> None:
        if self.done.done():
            return
        self.done.set_result(end)
        if self.socket is not None:  # it was connected
            metrics.STREAMS_ACTIVE.dec()
            metrics.STREAM_FRAMES_DROPPED.labels("to_agent").inc(self.socket.dropped)
            metrics.STREAM_FRAMES_DROPPED.labels("from_agent").inc(self.audio.dropped_frames)
        outcome = "stopped" if end.error_code is None else str(end.error_code)
        metrics.STREAMS_TOTAL.labels(outcome).inc()

    async def _run(self) -> StreamEnd:
        spec = self.spec
        connect = self.connector.connect(spec.url, spec.headers, self._on_frame)
        self._connecting = connecting = asyncio.ensure_future(connect)
        waits: list[asyncio.Future[Any]] = [connecting, self._stop, self.session.closed]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if not connecting.done():
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, StreamConnectError):
                await connecting
            return StreamEnd(by_agent=False)  # never started: nothing to report
        try:
            self.socket = socket = connecting.result()
        except StreamConnectError as exc:
            self.hooks.failed(exc.error_code, str(exc))
            return StreamEnd(False, exc.error_code, str(exc))
        socket.send(self.messages.connected())
        socket.send(
            self.messages.start(spec.account_sid, spec.call_sid, self.tracks, spec.parameters)
        )
        self._started_at = asyncio.get_running_loop().time()
        metrics.STREAMS_ACTIVE.inc()
        self.hooks.started()
        self.session.add_tap(self)
        player = None
        if spec.bidirectional:
            player = asyncio.create_task(self.session.play(self.playout))
        try:
            ends: list[asyncio.Future[Any]] = [socket.closed, self._stop, self.session.closed]
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._teardown()
            if player is not None:
                player.cancel()
        if socket.closed.done():
            return self._agent_ended(socket.closed.result())
        socket.send(self.messages.stop(spec.account_sid, spec.call_sid))
        await socket.close()
        self.hooks.stopped()
        return StreamEnd(by_agent=False)

    def _teardown(self) -> None:
        self.session.remove_tap(self)
        self.playout.finish()

    def _agent_ended(self, closed: Closed) -> StreamEnd:
        if closed.code == TOO_BIG_CLOSE:
            message = f"the agent sent a message over {self.connector.max_message} bytes"
            self.hooks.failed(PROTOCOL_CODE, message)
            return StreamEnd(True, PROTOCOL_CODE, message)
        if closed.code is None or closed.code == 1006:
            message = f"the agent's socket dropped ({closed.error or 'no close frame'})"
            self.hooks.failed(CLOSE_CODE, message)
            return StreamEnd(True, CLOSE_CODE, message)
        self.hooks.stopped()
        return StreamEnd(by_agent=True)

    # -- the agent's frames ---------------------------------------------------------------

    def _on_frame(self, frame: Frame) -> None:
        """One message from the agent (called by the socket, on the event loop)."""
        if frame.binary:
            self._notify_once(PROTOCOL_CODE, "binary frame from the agent (expected JSON text)")
            return
        if not self.spec.bidirectional:
            self._notify_once(PROTOCOL_CODE, "the agent sent a message on a unidirectional stream")
            return
        try:
            message = read_agent_message(frame.data)
        except ProtocolViolation as exc:
            self._notify_once(PROTOCOL_CODE, f"message from the agent ignored: {exc}")
            return
        if isinstance(message, AgentMedia):
            self.audio.add_media(message.payload)
        elif isinstance(message, AgentMark):
            self.audio.add_mark(message.name)
        elif isinstance(message, AgentClear):
            self.audio.clear()

    def _echo_mark(self, name: str) -> None:
        if self.socket is not None:
            self.socket.send(self.messages.mark(name))

    def _overflowed(self) -> None:
        self._notify_once(
            OVERFLOW_CODE,
            f"the agent sent audio faster than it plays: over {self.audio.max_frames // 50} s "
            "buffered, the newest dropped",
        )

    def _notify_once(self, error_code: int, message: str) -> None:
        if error_code not in self._notified:
            self._notified.add(error_code)
            self.hooks.notify(error_code, message)

    # -- media taps (called for every packet: keep them short) ----------------------------

    def _now_ms(self) -> int:
        return int((asyncio.get_running_loop().time() - self._started_at) * 1000)

    def _send_media(self, track: str, payload: bytes, codec: str) -> None:
        socket = self.socket
        if socket is None:
            return
        if codec != "PCMU":
            payload = g711.transcode(payload, codec, "PCMU")
        text = self.messages.media(track, self._now_ms(), payload)
        if not socket.send(text, droppable=True):
            self._notify_once(
                SLOW_AGENT_CODE, "the agent does not read fast enough: oldest media dropped"
            )

    def inbound(self, payload: bytes, codec: str) -> None:
        if "inbound" in self.tracks:
            self._send_media("inbound", payload, codec)

    def outbound(self, payload: bytes, codec: str) -> None:
        if "outbound" in self.tracks:
            self._send_media("outbound", payload, codec)

    def digit(self, digit: str) -> None:
        if self.spec.bidirectional and self.socket is not None:
            self.socket.send(self.messages.dtmf(digit))
