"""One call's media: the RTP endpoint, the sender on the shared clock, DTMF in, the recorder.

The call leg opens a :class:`MediaSession` once the SDP is agreed and drives it with a few
awaitables: :meth:`~MediaSession.play`, :meth:`~MediaSession.collect_digits`,
:meth:`~MediaSession.record`, :meth:`~MediaSession.send_digits`. Every one of them returns (does
not raise) when the session is closed under it, e.g. because the caller hung up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, TypeAlias

from rcmlrouter.media import g711, rtp
from rcmlrouter.media.audio import FRAME_SAMPLES, tone
from rcmlrouter.media.clock import PTIME, ClockStream, MediaClock
from rcmlrouter.media.dtmf import DtmfReceiver
from rcmlrouter.media.keypad import Keypad
from rcmlrouter.media.player import ClipSource, RtpSender, SilenceSource, Source
from rcmlrouter.media.recorder import Recorder, RecordingResult
from rcmlrouter.media.track_recording import TrackRecording

BEEP: Final = ClipSource(tone(1000.0, 0.5, amplitude=0.3))
RECORD_POLL: Final = 0.1
_STATIC_PT: Final = {0: "PCMU", 8: "PCMA"}
_NOT_SENDING: Final = ("sendonly", "inactive")  # the peer's direction that means hold
AudioSink: TypeAlias = Callable[[str, bytes], None]
"""Takes each audio payload received (codec name, G.711 bytes): a conference's input."""
IDLE_AFTER: Final = 10  # silent packets (200 ms) before a quiet session leaves the clock


@dataclass(frozen=True, slots=True)
class MediaParams:
    """The agreed media, from the SDP offer/answer (``direction`` is the peer's)."""

    codec: str
    payload_type: int
    telephone_event_pt: int | None
    remote_ip: str
    remote_port: int
    direction: str = "sendrecv"

    @property
    def on_hold(self) -> bool:
        return self.direction in _NOT_SENDING or self.remote_ip in ("0.0.0.0", "::")  # noqa: S104


class MediaTap(Protocol):
    """Hears a call's audio and key presses (a media stream): the caller's audio as it
    arrives, every audio frame sent to the caller, each key press. Called on the event loop;
    must not block."""

    def inbound(self, payload: bytes, codec: str) -> None: ...

    def outbound(self, payload: bytes, codec: str) -> None: ...

    def digit(self, digit: str) -> None: ...


class MediaSession:
    """A call's RTP stream and the operations the RCML verbs need."""

    def __init__(
        self,
        params: MediaParams,
        clock: MediaClock,
        endpoint: rtp.RtpEndpoint,
        idle_keepalive: float = 0.0,
    ) -> None:
        """``idle_keepalive`` > 0: while nothing plays (``<Pause>``, waiting for keys, a
        recording), send one silence packet every that many seconds instead of every 20 ms
        (silence suppression; the peer's NAT binding and RTP timeout stay alive). A
        ``<Pause>``-held call then costs the media clock nothing."""
        self.params = params
        self.clock = clock
        self.endpoint = endpoint
        endpoint.on_packet = self._on_packet
        self.sender = RtpSender(
            self.endpoint.send, params.codec, params.payload_type, params.telephone_event_pt
        )
        self.sender.on_hold = params.on_hold
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._dtmf = DtmfReceiver()
        self.keys = Keypad()
        self._recorder: Recorder | None = None
        self._call_recorder: Recorder | None = None  # Record=true of an API call: all of it
        self._call_tracks: TrackRecording | None = None  # the same, other tracks than inbound
        self.taps: list[MediaTap] = []
        self.idle_keepalive = idle_keepalive
        self._idle_ticks = 0
        self._asleep: asyncio.TimerHandle | None = None
        self._slept_at = 0.0  # loop time and RTP timestamp of the first packet not sent
        self._slept_timestamp = 0
        self.audio_sink: AudioSink | None = None
        self._lent = False
        self._clock_stream: ClockStream = clock.register(self._tick)

    @classmethod
    async def open(
        cls,
        local_ip: str,
        port: int,
        params: MediaParams,
        clock: MediaClock,
        idle_keepalive: float = 0.0,
    ) -> MediaSession:
        """Bind ``port`` (and ``port + 1``) and start sending. Raises OSError."""
        return await cls.attach(rtp.bind_pair(local_ip, port), params, clock, idle_keepalive)

    @classmethod
    async def attach(
        cls,
        pair: rtp.BoundPair,
        params: MediaParams,
        clock: MediaClock,
        idle_keepalive: float = 0.0,
    ) -> MediaSession:
        """The session on sockets already bound (the port pool's claim); start sending."""
        remote = (params.remote_ip, params.remote_port)
        endpoint = await rtp.RtpEndpoint.attach(pair, remote)
        return cls(params, clock, endpoint, idle_keepalive)

    # -- the 20 ms clock, and leaving it while silent -------------------------------------------

    def _tick(self) -> None:
        self.sender.tick()
        if self.idle_keepalive <= 0 or self.taps:  # a stream hears every 20 ms frame
            return
        if not self.sender.idle:
            self._idle_ticks = 0
            return
        self._idle_ticks += 1
        if self._idle_ticks >= IDLE_AFTER:
            self.clock.unregister(self._clock_stream)
            loop = asyncio.get_running_loop()
            self._slept_at, self._slept_timestamp = loop.time(), self.sender.timestamp
            self._asleep = loop.call_later(self.idle_keepalive, self._keepalive)

    def _catch_up(self) -> None:
        """RTP time ran on while nothing was sent: the next packet's timestamp and marker."""
        elapsed = asyncio.get_running_loop().time() - self._slept_at
        self.sender.resume_at(self._slept_timestamp + int(elapsed / PTIME) * FRAME_SAMPLES)

    def _keepalive(self) -> None:
        self._catch_up()
        self.sender.tick()  # one silence packet
        self._asleep = asyncio.get_running_loop().call_later(self.idle_keepalive, self._keepalive)

    def _wake(self) -> None:
        """Something is to be sent: back on the 20 ms clock."""
        if self._asleep is None or self._lent:
            return
        self._asleep.cancel()
        self._asleep = None
        self._catch_up()
        self._idle_ticks = 0
        self._clock_stream = self.clock.register(self._tick)

    # -- a conference's mixer drives the sending -----------------------------------------------

    @property
    def lent(self) -> bool:
        return self._lent

    def lend_clock(self) -> None:
        """A conference's mixer sends this session's packets from now on (:meth:`tick_with`,
        once per tick of its own clock stream, right after it mixed): the session leaves the
        clock, asleep or not."""
        if self._lent or self.closed.done():
            return
        if self._asleep is not None:
            self._asleep.cancel()
            self._asleep = None
            self._catch_up()
        else:
            self.clock.unregister(self._clock_stream)
        self._lent = True

    def tick_with(self, fill: bytes) -> None:
        """One packet from the mixer: ``fill`` unless a key press or a playout comes first."""
        self.sender.tick(fill)

    def return_clock(self) -> None:
        """The mixer is done with this session: back on the clock (idle rules as before)."""
        if not self._lent:
            return
        self._lent = False
        if self.closed.done():
            return
        self._idle_ticks = 0
        self._clock_stream = self.clock.register(self._tick)

    # -- the peer -------------------------------------------------------------------------------

    def update(self, params: MediaParams) -> None:
        """A re-INVITE changed the media: address, codec, or hold (``sendonly``/``inactive``)."""
        self.params = params
        self.endpoint.set_remote((params.remote_ip, params.remote_port))
        self.sender.set_codec(params.codec, params.payload_type, params.telephone_event_pt)
        self.sender.on_hold = params.on_hold

    def add_tap(self, tap: MediaTap) -> None:
        """``tap`` hears the call from now on; while any does, the session stays on the 20 ms
        clock (silence is sent, not suppressed: a stream's outbound track has no gaps)."""
        self.taps.append(tap)
        self.sender.taps.append(tap.outbound)
        self._wake()

    def remove_tap(self, tap: MediaTap) -> None:
        if tap in self.taps:
            self.taps.remove(tap)
            self.sender.taps.remove(tap.outbound)

    def receive_digit(self, digit: str) -> None:
        """A key press (RFC 4733 or SIP INFO)."""
        for tap in self.taps:
            tap.digit(digit)
        self.keys.press(digit)

    def flush_digits(self) -> None:
        self.keys.flush()

    def _on_packet(self, packet: rtp.RtpPacket) -> None:
        if packet.payload_type == self.params.telephone_event_pt:
            for digit in self._dtmf.feed(packet.timestamp, packet.payload):
                self.receive_digit(digit)
            return
        codec = _STATIC_PT.get(packet.payload_type)
        if packet.payload_type == self.params.payload_type:
            codec = self.params.codec
        if codec is None:
            return
        for tap in self.taps:
            tap.inbound(packet.payload, codec)
        if self.audio_sink is not None:
            self.audio_sink(codec, packet.payload)
        if self._recorder is None and self._call_recorder is None:
            return
        pcm = g711.decode_bytes(packet.payload, codec)
        now = asyncio.get_running_loop().time()
        if self._recorder is not None:
            self._recorder.feed(packet.timestamp, pcm, now)
        if self._call_recorder is not None:
            self._call_recorder.feed(packet.timestamp, pcm, now)

    # -- operations -----------------------------------------------------------------------------

    async def play(self, source: Source, *, interrupt_on_digits: bool = False) -> str | None:
        """Play ``source`` to the end; with ``interrupt_on_digits``, stop at the first key press
        and return that digit (it stays buffered for :meth:`collect_digits`). ``None`` when the
        source played out or the session closed."""
        if interrupt_on_digits and (first := self.keys.first()) is not None:
            return first
        if self.closed.done():
            return None
        if isinstance(source, SilenceSource) and self.idle_keepalive > 0 and not self.taps:
            return await self._quiet(source.ticks * PTIME, interrupt_on_digits)
        self._wake()
        playout = self.sender.play(source)
        try:
            while not playout.done.done() and not self.closed.done():
                waits: list[asyncio.Future[Any]] = [playout.done, self.closed]
                if interrupt_on_digits:
                    waits.append(self.keys.next_press())
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if interrupt_on_digits and (first := self.keys.first()) is not None:
                    return first
            return None
        finally:
            playout.stop()

    async def _quiet(self, seconds: float, interrupt_on_digits: bool) -> str | None:
        """Silence without sending it (``idle_keepalive``): the session leaves the clock."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self.closed.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            waits: list[asyncio.Future[Any]] = [self.closed]
            if interrupt_on_digits:
                waits.append(self.keys.next_press())
            await asyncio.wait(waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            if interrupt_on_digits and (first := self.keys.first()) is not None:
                return first
        return None

    async def collect_digits(
        self, num_digits: int, finish_on_key: str, digit_timeout: float
    ) -> str:
        """Key presses until ``num_digits`` (0 = no limit), ``finish_on_key`` (not included),
        ``digit_timeout`` seconds without a key, or the end of the session."""
        return await self.keys.collect(num_digits, finish_on_key, digit_timeout, self.closed)

    async def record(
        self,
        path: Path,
        *,
        max_length: float = 3600.0,
        silence_timeout: float = 5.0,
        finish_on_key: str = "1234567890*#",
        beep: bool = True,
    ) -> RecordingResult:
        """Record the caller to ``path`` (16-bit 8 kHz WAV) until silence, length, a finish
        key, or hangup; see :class:`RecordingResult`."""
        if beep:
            await self.play(BEEP)
        self.flush_digits()
        loop = asyncio.get_running_loop()
        recorder = Recorder(path, max_length, silence_timeout)
        recorder.start(loop.time())
        self._recorder = recorder
        try:
            digit = await self._record_until_done(recorder, set(finish_on_key))
        finally:
            self._recorder = None
            duration = recorder.close()
        reason = recorder.done.result()
        return RecordingResult(path, duration, reason, digit)

    def stop_recording(self) -> bool:
        """End the recording in progress now (reason ``stopped``); False when none is (the
        beep still plays, or no recording)."""
        if self._recorder is None:
            return False
        self._recorder.finish("stopped")
        return True

    async def _record_until_done(self, recorder: Recorder, keys: Iterable[str]) -> str:
        loop = asyncio.get_running_loop()
        while not recorder.done.done():
            if self.closed.done():
                recorder.finish("hangup")
                break
            while (digit := self.keys.take()) is not None:
                if digit in keys:
                    recorder.finish("finish-key")
                    return digit
            waits: list[asyncio.Future[Any]] = [recorder.done, self.keys.next_press(), self.closed]
            await asyncio.wait(waits, timeout=RECORD_POLL)
            recorder.check(loop.time())
        return ""

    def start_call_recording(
        self, path: Path, max_length: float, track: str = "inbound", channels: str = "mono"
    ) -> None:
        """Record the call to ``path`` from now until :meth:`stop_call_recording` (no silence
        timeout; alongside any ``<Record>``): what the far end says (``inbound``, placed by its
        RTP timestamps), or with what we send (``outbound``, ``both``; mono or ``dual``) through
        a :class:`~rcmlrouter.media.track_recording.TrackRecording` tap."""
        if track == "inbound" and channels == "mono":
            recorder = Recorder(path, max_length, 0.0)
            recorder.start(asyncio.get_running_loop().time())
            self._call_recorder = recorder
            return
        tracks = TrackRecording(path, max_length, track, channels)
        self._call_tracks = tracks
        self.add_tap(tracks)

    def stop_call_recording(self) -> float | None:
        """Close the call recording; its duration in seconds (None when none was running)."""
        recorder, self._call_recorder = self._call_recorder, None
        tracks, self._call_tracks = self._call_tracks, None
        if tracks is not None:
            self.remove_tap(tracks)
            return tracks.close()
        return None if recorder is None else recorder.close(trim=False)

    async def send_digits(self, digits: str) -> None:
        """Send key presses as RFC 4733 events (``w`` waits 0.5 s, ``W`` 1 s)."""
        if self.closed.done():
            return
        self._wake()
        done = self.sender.send_digits(digits)
        await asyncio.wait([done, self.closed], return_when=asyncio.FIRST_COMPLETED)

    def close(self) -> None:
        """Stop sending, release the sockets; pending operations return."""
        if self.closed.done():
            return
        self.audio_sink = None
        self.clock.unregister(self._clock_stream)
        self._clock_stream.tick = _no_tick  # the stream refers to this session: no cycle left
        if self._asleep is not None:
            self._asleep.cancel()
            self._asleep = None
        self.endpoint.close()
        # endpoint -> on_packet -> self -> endpoint: break the cycle, so a call's media is freed
        # when the call ends, not by the cycle collector (whose pauses stop every call)
        self.endpoint.on_packet = rtp.ignore_packet
        self.taps.clear()
        self.sender.taps.clear()
        if self.sender.playout is not None:
            self.sender.playout.stop()
        if self._recorder is not None:
            self._recorder.finish("hangup")
        self.closed.set_result(None)


def _no_tick() -> None:
    """A closed session's clock callback."""
