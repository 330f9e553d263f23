"""What a call sends: playout sources and the RTP sender the media clock ticks every 20 ms.

A source yields encoded 160-byte frames (20 ms of G.711). :class:`RtpSender` sends one packet per
tick: a DTMF event packet while digits are being sent, else the current playout's next frame,
else silence (so the peer's jitter buffer and any NAT stay alive). On hold (the peer said
``sendonly`` or ``inactive``) the sender keeps time but sends nothing.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Iterator
from typing import Final, Protocol

from rcmlrouter.media import dtmf, g711, rtp
from rcmlrouter.media.audio import FRAME_SAMPLES, AudioClip

INTER_DIGIT_TICKS: Final = 4  # 80 ms of silence between two key presses
DIGIT_MS: Final = 100


class Source(Protocol):
    """Something to play: encoded frames for the negotiated codec."""

    def frames(self, codec: str) -> Iterator[bytes]: ...


class ClipSource:
    """A clip, played ``loop`` times (0 = until stopped)."""

    def __init__(self, clip: AudioClip, loop: int = 1) -> None:
        self.clip = clip
        self.loop = loop

    def frames(self, codec: str) -> Iterator[bytes]:
        data = self.clip.encoded(codec)
        played = 0
        while data and (self.loop == 0 or played < self.loop):
            for offset in range(0, len(data), FRAME_SAMPLES):
                yield data[offset : offset + FRAME_SAMPLES]
            played += 1


class SilenceSource:
    """``seconds`` of silence (``<Pause>``), on the same clock as the audio."""

    def __init__(self, seconds: float) -> None:
        self.ticks = max(0, round(seconds * 50))

    def frames(self, codec: str) -> Iterator[bytes]:
        frame = g711.silence(codec, FRAME_SAMPLES)
        for _ in range(self.ticks):
            yield frame


class SequenceSource:
    """Several sources one after the other (a ``<Gather>``'s nested verbs)."""

    def __init__(self, sources: list[Source]) -> None:
        self.sources = sources

    def frames(self, codec: str) -> Iterator[bytes]:
        for source in self.sources:
            yield from source.frames(codec)


class Playout:
    """One running source; ``done`` resolves True when it played out, False when stopped."""

    def __init__(self, frames: Iterator[bytes]) -> None:
        self._frames = frames
        self.done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.frames_played = 0

    def next_frame(self) -> bytes | None:
        if self.done.done():
            return None
        frame = next(self._frames, None)
        if frame is None:
            self.done.set_result(True)
        else:
            self.frames_played += 1
        return frame

    def stop(self) -> None:
        if not self.done.done():
            self.done.set_result(False)


_DigitItem = dtmf.EventPacket | Callable[[], None] | None  # event packet, completion, silence


class RtpSender:
    """Builds and sends this call's RTP packets, one per :meth:`tick`."""

    def __init__(
        self, send: Callable[[bytes], None], codec: str, payload_type: int, event_pt: int | None
    ) -> None:
        self.send = send
        self.codec = codec
        self.payload_type = payload_type
        self.event_pt = event_pt
        self.ssrc = random.getrandbits(32)
        self.sequence = random.getrandbits(16)
        self.timestamp = random.getrandbits(32)
        self.on_hold = False
        self.playout: Playout | None = None
        self._digits: deque[_DigitItem] = deque()
        self._event_timestamp = 0
        self._marker = True
        self._silence = g711.silence(codec, FRAME_SAMPLES)
        # who hears each audio frame sent (a stream's outbound track): (payload, codec)
        self.taps: list[Callable[[bytes, str], None]] = []

    @property
    def idle(self) -> bool:
        """Nothing to play and no key press queued: the next packets are silence."""
        return self.playout is None and not self._digits

    def resume_at(self, timestamp: int) -> None:
        """The next packet carries ``timestamp`` and the marker bit (RFC 3551 §4.1: the first
        packet after a silence in which nothing was sent)."""
        self.timestamp = timestamp & 0xFFFFFFFF
        self._marker = True

    def set_codec(self, codec: str, payload_type: int, event_pt: int | None) -> None:
        self.codec, self.payload_type, self.event_pt = codec, payload_type, event_pt
        self._silence = g711.silence(codec, FRAME_SAMPLES)

    def play(self, source: Source) -> Playout:
        """Start ``source``, replacing (stopping) whatever was playing."""
        if self.playout is not None:
            self.playout.stop()
        self.playout = Playout(source.frames(self.codec))
        return self.playout

    def send_digits(self, digits: str) -> asyncio.Future[None]:
        """Queue RFC 4733 key presses (``w`` = 0.5 s, ``W`` = 1 s pause); resolves when sent."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for key in digits:
            if key in dtmf.PAUSE_KEYS:
                self._digits.extend([None] * round(dtmf.PAUSE_KEYS[key] * 50))
            elif self.event_pt is not None:
                self._digits.extend(dtmf.event_packets(key, DIGIT_MS))
                self._digits.extend([None] * INTER_DIGIT_TICKS)

        def finished() -> None:
            if not done.done():
                done.set_result(None)

        self._digits.append(finished)
        return done

    def tick(self, fill: bytes | None = None) -> None:
        """Send this tick's packet: a key press, else the playout's frame, else ``fill`` (a
        conference's mix for this call, already encoded in its codec), else silence."""
        payload_type, timestamp, marker, payload = self._next(fill)
        if self.taps and payload is not None and payload_type == self.payload_type:
            for tap in self.taps:
                tap(payload, self.codec)
        if payload is not None and not self.on_hold:
            header = rtp.pack_header(payload_type, self.sequence, timestamp, self.ssrc, marker)
            self.send(header + payload)
            self.sequence = (self.sequence + 1) & 0xFFFF
            self._marker = False
        elif self.on_hold:
            self._marker = True
        self.timestamp = (self.timestamp + FRAME_SAMPLES) & 0xFFFFFFFF

    def _next(self, fill: bytes | None) -> tuple[int, int, bool, bytes | None]:
        while self._digits:
            item = self._digits.popleft()
            if isinstance(item, dtmf.EventPacket):
                if item.marker:
                    self._event_timestamp = self.timestamp
                assert self.event_pt is not None
                return self.event_pt, self._event_timestamp, item.marker, item.payload
            if item is None:
                return self.payload_type, self.timestamp, self._marker, self._silence
            item()  # a send_digits() completion: no packet, look at the next item
        frame = self.playout.next_frame() if self.playout is not None else None
        if frame is None:
            self.playout = None
            frame = fill if fill is not None else self._silence
        return self.payload_type, self.timestamp, self._marker, frame
