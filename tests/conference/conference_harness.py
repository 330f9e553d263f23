"""Conference fixtures: RTP phones on 127.0.0.1 (each sends its own tone, keeps what it hears),
the daemon side's real media sessions, and a registry over a real SQLite store."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rcmlrouter.media import g711, rtp
from rcmlrouter.media.clock import MediaClock
from rcmlrouter.media.session import MediaParams, MediaSession
from support.ports import free_rtp_port

PT = {"PCMU": 0, "PCMA": 8}


def dominant_frequencies(pcm: np.ndarray, rate: int = 8000, floor: float = 0.15) -> set[int]:
    """The frequencies (rounded to 10 Hz) whose peak is at least ``floor`` of the strongest."""
    if len(pcm) < 800:
        return set()
    windowed = pcm.astype(np.float64) * np.hanning(len(pcm))
    spectrum = np.abs(np.fft.rfft(windowed))
    spectrum[:5] = 0
    freqs = np.fft.rfftfreq(len(pcm), 1 / rate)
    top = float(spectrum.max())
    if top <= 0:
        return set()
    peaks = set()
    for i in range(1, len(spectrum) - 1):
        if (
            spectrum[i] >= floor * top
            and spectrum[i] >= spectrum[i - 1]
            and spectrum[i] >= spectrum[i + 1]
        ):
            peaks.add(int(round(freqs[i] / 10) * 10))
    return peaks


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0


@dataclass
class Phone(asyncio.DatagramProtocol):
    """A caller's RTP: sends ``frequency`` (0: silence) every 20 ms, decodes what arrives."""

    frequency: float
    codec: str = "PCMU"
    heard: list[tuple[float, bytes]] = field(default_factory=list)
    transport: Any = None
    remote: tuple[str, int] | None = None
    _handle: Any = None
    _n: int = 0
    keys: list[Any] = field(default_factory=list)  # dtmf.EventPacket s to send instead of audio
    _event_ts: int = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        packet = rtp.parse(data)
        if packet is not None and packet.payload_type in (0, 8):
            codec = "PCMU" if packet.payload_type == 0 else "PCMA"
            self.heard.append((time.monotonic(), g711.decode_bytes(packet.payload, codec)))

    @property
    def port(self) -> int:
        return int(self.transport.get_extra_info("sockname")[1])

    def start(self, remote: tuple[str, int]) -> None:
        self.remote = remote
        self._ssrc = random.getrandbits(32)
        self._t0 = asyncio.get_running_loop().time()
        self._send()

    def _send(self) -> None:
        loop = asyncio.get_running_loop()
        n = self._n
        t = (np.arange(160) + 160 * n) / 8000
        level = 0.2 if self.frequency else 0.0
        pcm = (level * 32767 * np.sin(2 * np.pi * self.frequency * t)).astype(np.int16)
        if self.keys:  # a key press: telephone-event packets (PT 101), no audio meanwhile
            packet = self.keys.pop(0)
            if packet.marker:  # one timestamp for every packet of an event (RFC 4733)
                self._event_ts = 160 * n
            header = rtp.pack_header(101, n, self._event_ts, self._ssrc, packet.marker)
            self.transport.sendto(header + packet.payload, self.remote)
        else:
            header = rtp.pack_header(PT[self.codec], n, 160 * n, self._ssrc, n == 0)
            self.transport.sendto(header + g711.encode(pcm, self.codec), self.remote)
        self._n += 1
        self._handle = loop.call_at(self._t0 + 0.02 * self._n, self._send)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self.transport.close()

    def heard_between(self, start: float, end: float) -> np.ndarray:
        chunks = [pcm for at, pcm in self.heard if start <= at < end]
        return np.frombuffer(b"".join(chunks), dtype="<i2") if chunks else np.zeros(0, np.int16)


async def open_phone(frequency: float, codec: str = "PCMU") -> Phone:
    loop = asyncio.get_running_loop()
    _, phone = await loop.create_datagram_endpoint(
        lambda: Phone(frequency, codec), local_addr=("127.0.0.1", 0)
    )
    return phone


async def open_call(
    phone: Phone, clock: MediaClock, codec: str | None = None, keepalive: float = 0.0
) -> MediaSession:
    """The daemon side of ``phone``'s call: a real MediaSession on a free port."""
    codec = codec or phone.codec
    params = MediaParams(codec, PT[codec], 101, "127.0.0.1", phone.port)
    endpoint = await rtp.RtpEndpoint.open("127.0.0.1", free_rtp_port(), ("127.0.0.1", phone.port))
    session = MediaSession(params, clock, endpoint, keepalive)
    phone.start(("127.0.0.1", endpoint.local_port))
    return session


@pytest.fixture
async def clock() -> AsyncIterator[MediaClock]:
    media_clock = MediaClock()
    yield media_clock
    media_clock.close()


class Outbox:
    """The outbox's two calls the conference makes, kept in order."""

    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []

    def event(
        self, key: str, account: str, sequence: int, url: str, method: str, params: Any
    ) -> Any:
        return dict(params)

    def commit(self, *, events: Any = (), **_: Any) -> None:
        self.events.extend(events)

    def names(self) -> list[str]:
        return [e["StatusCallbackEvent"] for e in self.events]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Any]:
    from rcmlrouter.assembly.stores import open_store_url

    opened = await open_store_url(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    await opened.close()
