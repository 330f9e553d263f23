"""A real MediaSession on 127.0.0.1 against UDP sockets in the test: timing, audio, DTMF, record."""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from rcmlrouter.media import audio, dtmf, g711, rtp
from rcmlrouter.media.clock import MediaClock
from rcmlrouter.media.player import ClipSource, SilenceSource
from rcmlrouter.media.session import MediaParams, MediaSession
from support.tones import dominant_frequency

EVENT_PT = 101


class Sink(asyncio.DatagramProtocol):
    """A peer's RTP socket: keeps (arrival time, packet, source address)."""

    def __init__(self) -> None:
        self.packets: list[tuple[float, rtp.RtpPacket]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        packet = rtp.parse(data)
        assert packet is not None
        self.packets.append((time.monotonic(), packet))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def audio(self, payload_type: int = 0) -> list[rtp.RtpPacket]:
        return [p for _, p in self.packets if p.payload_type == payload_type]


async def open_sink() -> Sink:
    loop = asyncio.get_running_loop()
    _, sink = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    return sink


@pytest.fixture
async def peer() -> AsyncIterator[Sink]:
    sink = await open_sink()
    yield sink
    assert sink.transport is not None
    sink.transport.close()


@pytest.fixture
async def session(peer: Sink, rtp_port: int) -> AsyncIterator[MediaSession]:
    params = MediaParams("PCMU", 0, EVENT_PT, "127.0.0.1", peer.port)
    media = await MediaSession.open("127.0.0.1", rtp_port, params, MediaClock())
    yield media
    media.close()


def send_to(session: MediaSession, peer: Sink, packet: rtp.RtpPacket) -> None:
    assert peer.transport is not None
    peer.transport.sendto(rtp.pack(packet), ("127.0.0.1", session.endpoint.local_port))


async def test_a_tone_arrives_on_the_20ms_grid(session: MediaSession, peer: Sink) -> None:
    clip = audio.tone(1000.0, 2.0)
    started = time.monotonic()
    assert await session.play(ClipSource(clip)) is None
    elapsed = time.monotonic() - started
    await asyncio.sleep(0.05)
    assert abs(elapsed - 2.0) < 0.1
    packets = [p for p in peer.audio() if p.payload != g711.silence("PCMU", 160)]
    assert abs(len(packets) - 100) <= 5
    seqs = [p.sequence for _, p in peer.packets]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    stamps = [p.timestamp for _, p in peer.packets]
    assert all((b - a) & 0xFFFFFFFF == 160 for a, b in itertools.pairwise(stamps))
    assert peer.packets[0][1].marker and not any(p.marker for _, p in peer.packets[1:])
    gaps = np.diff([t for t, _ in peer.packets]) * 1000
    assert 19 <= float(np.percentile(gaps, 50)) <= 21
    assert float(np.percentile(gaps, 99)) < 30
    pcm = g711.decode(b"".join(p.payload for p in packets), "PCMU")
    assert dominant_frequency(pcm) == pytest.approx(1000, abs=5)
    assert abs(len(pcm) - len(clip.pcm)) <= 160


async def test_silence_between_plays_and_loop(session: MediaSession, peer: Sink) -> None:
    await session.play(SilenceSource(0.2))
    await session.play(ClipSource(audio.tone(500, 0.1), loop=3))
    await asyncio.sleep(0.05)
    loud = [p for p in peer.audio() if p.payload != g711.silence("PCMU", 160)]
    assert len(loud) == 15


def event_packets(digit: str, timestamp: int, seq: int) -> list[rtp.RtpPacket]:
    return [
        rtp.RtpPacket(EVENT_PT, seq + i, timestamp, 0xABC, p.marker, p.payload)
        for i, p in enumerate(dtmf.event_packets(digit, 100))
    ]


async def test_rfc4733_digit_detected_once_and_latched(session: MediaSession, peer: Sink) -> None:
    other = await open_sink()  # the caller's real source address differs from its SDP
    for packet in event_packets("7", 8000, 10):
        send_to(session, other, packet)
        await asyncio.sleep(0.005)
    digits = await session.collect_digits(0, "#", 0.3)
    assert digits == "7"
    assert session.endpoint.latched == ("127.0.0.1", other.port)
    before = len(other.packets)
    await asyncio.sleep(0.1)
    assert len(other.packets) - before >= 4  # symmetric RTP: we now send to where it came from
    assert other.transport is not None
    other.transport.close()


async def test_gather_digits_and_finish_key(session: MediaSession, peer: Sink) -> None:
    for i, digit in enumerate("12#9"):
        for packet in event_packets(digit, 1000 + 2000 * i, 20 * i):
            send_to(session, peer, packet)
    await asyncio.sleep(0.05)
    assert await session.collect_digits(0, "#", 1.0) == "12"
    assert await session.collect_digits(1, "#", 1.0) == "9"
    started = time.monotonic()
    assert await session.collect_digits(4, "#", 0.2) == ""
    assert 0.15 < time.monotonic() - started < 0.5


async def test_a_digit_interrupts_play(session: MediaSession, peer: Sink) -> None:
    async def press() -> None:
        await asyncio.sleep(0.3)
        session.receive_digit("5")  # as SIP INFO would

    presser = asyncio.create_task(press())
    started = time.monotonic()
    got = await session.play(ClipSource(audio.tone(800, 5.0)), interrupt_on_digits=True)
    assert got == "5"
    assert time.monotonic() - started < 0.5
    await presser
    assert await session.collect_digits(1, "#", 0.1) == "5"  # the barge-in digit is kept


async def test_send_digits_as_rfc4733(session: MediaSession, peer: Sink) -> None:
    started = time.monotonic()
    await session.send_digits("12w#")
    elapsed = time.monotonic() - started
    await asyncio.sleep(0.05)
    receiver = dtmf.DtmfReceiver()
    got = [
        d
        for _, p in peer.packets
        if p.payload_type == EVENT_PT
        for d in receiver.feed(p.timestamp, p.payload)
    ]
    assert got == ["1", "2", "#"]
    assert 0.9 < elapsed < 1.5  # 3 x (7 + 4) packets + 25 ticks of pause


async def test_hold_stops_sending(session: MediaSession, peer: Sink) -> None:
    await asyncio.sleep(0.1)
    session.update(MediaParams("PCMU", 0, EVENT_PT, "127.0.0.1", peer.port, "sendonly"))
    await asyncio.sleep(0.05)
    held = len(peer.packets)
    await asyncio.sleep(0.2)
    assert len(peer.packets) == held
    session.update(MediaParams("PCMU", 0, EVENT_PT, "127.0.0.1", peer.port, "sendrecv"))
    await asyncio.sleep(0.1)
    assert len(peer.packets) > held
    assert peer.packets[held][1].marker


async def send_audio(session: MediaSession, peer: Sink, clip: audio.AudioClip) -> None:
    data = clip.encoded("PCMU")
    for i in range(0, len(data), 160):
        send_to(
            session, peer, rtp.RtpPacket(0, i // 160, 4000 + i, 0xDEF, i == 0, data[i : i + 160])
        )
        await asyncio.sleep(0.02)


async def test_record_until_silence(session: MediaSession, peer: Sink, tmp_path: Path) -> None:
    speech = audio.AudioClip(np.concatenate([audio.tone(440, 1.0).pcm, audio.silence(3.0).pcm]))
    sender = asyncio.create_task(send_audio(session, peer, speech))
    result = await session.record(
        tmp_path / "r.wav", max_length=10, silence_timeout=1.0, beep=False
    )
    sender.cancel()
    assert result.reason == "timeout"
    assert result.duration == pytest.approx(1.3, abs=0.1)  # the tone + the kept tail
    with wave.open(str(result.path)) as recorded:
        assert (recorded.getframerate(), recorded.getnchannels()) == (8000, 1)
        pcm = np.frombuffer(recorded.readframes(recorded.getnframes()), "<i2")
    assert len(pcm) == round(result.duration * 8000)
    assert dominant_frequency(pcm[:8000]) == pytest.approx(440, abs=5)


async def test_record_finish_key_and_hangup(
    session: MediaSession, peer: Sink, tmp_path: Path
) -> None:
    sender = asyncio.create_task(send_audio(session, peer, audio.tone(300, 3.0)))
    asyncio.get_running_loop().call_later(0.8, session.receive_digit, "#")  # after the beep
    result = await session.record(tmp_path / "a.wav", silence_timeout=5, beep=True)
    assert (result.reason, result.digits) == ("finish-key", "#")
    assert 0.1 < result.duration < 0.6
    asyncio.get_running_loop().call_later(0.3, session.close)
    result = await session.record(tmp_path / "b.wav", silence_timeout=5, beep=False)
    sender.cancel()
    assert result.reason == "hangup" and result.digits_param == "hangup"
    assert 0.1 < result.duration < 0.6


async def test_max_length(session: MediaSession, peer: Sink, tmp_path: Path) -> None:
    sender = asyncio.create_task(send_audio(session, peer, audio.tone(300, 3.0)))
    result = await session.record(tmp_path / "m.wav", max_length=1.0, silence_timeout=5, beep=False)
    sender.cancel()
    assert result.reason == "max-length"
    assert result.duration == pytest.approx(1.0, abs=0.05)


async def test_operations_return_after_close(session: MediaSession) -> None:
    session.close()
    assert await session.play(ClipSource(audio.tone(400, 1.0))) is None
    assert await session.collect_digits(3, "#", 5) == ""
    await session.send_digits("123")


async def test_a_closed_session_is_freed_without_the_cycle_collector(
    peer: Sink, rtp_port: int
) -> None:
    """Every answered call has a session: a cycle in it costs a GC pause that stops all calls."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        params = MediaParams("PCMU", 0, EVENT_PT, "127.0.0.1", peer.port)
        media = await MediaSession.open("127.0.0.1", rtp_port, params, MediaClock())
        await asyncio.sleep(0.05)
        media.close()
        await asyncio.sleep(0.01)  # the transports' connection_lost
        del media
        gc.collect()
        cyclic = {type(o).__name__ for o in gc.garbage}
        assert not cyclic & {"MediaSession", "RtpEndpoint", "RtpSender", "DtmfReceiver"}, cyclic
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


async def test_silence_is_suppressed_to_keepalives_and_resumes_marked(
    peer: Sink, rtp_port: int
) -> None:
    """``idle_keepalive``: 200 ms of trailing silence, then one packet per keepalive interval
    (not 50/s) while nothing plays; the next sound resumes on the 20 ms clock with the marker bit
    and a timestamp that counted the quiet time."""
    params = MediaParams("PCMU", 0, EVENT_PT, "127.0.0.1", peer.port)
    media = await MediaSession.open("127.0.0.1", rtp_port, params, MediaClock(), 0.25)
    try:
        await asyncio.sleep(0.3)  # 200 ms of silence packets, then quiet
        quiet_from = len(peer.audio())
        assert 8 <= quiet_from <= 17
        await asyncio.sleep(1.05)
        keepalives = peer.audio()[quiet_from:]
        assert 3 <= len(keepalives) <= 5  # one per 0.25 s, not 52
        assert all(p.marker for p in keepalives)
        before = peer.audio()[-1]
        await media.play(ClipSource(audio.tone(1000.0, 0.4)))
        arrived = {p.sequence: t for t, p in peer.packets}
        first = next(p for p in peer.audio() if p.sequence == (before.sequence + 1) & 0xFFFF)
        assert first.marker
        rtp_gap = ((first.timestamp - before.timestamp) & 0xFFFFFFFF) / 8000
        wall_gap = arrived[first.sequence] - arrived[before.sequence]
        assert abs(rtp_gap - wall_gap) < 0.06, (rtp_gap, wall_gap)
        tone = [p for p in peer.audio() if (p.sequence - first.sequence) & 0xFFFF in range(1, 19)]
        assert len(tone) == 18 and not any(p.marker for p in tone)  # continuous again
    finally:
        media.close()


async def test_a_pause_with_silence_suppression_sends_only_keepalives(
    peer: Sink, rtp_port: int
) -> None:
    """``<Pause>`` on a suppressing session: the time passes, ~nothing is sent; a key press
    interrupts it when asked to."""
    params = MediaParams("PCMU", 0, EVENT_PT, "127.0.0.1", peer.port)
    media = await MediaSession.open("127.0.0.1", rtp_port, params, MediaClock(), 0.5)
    try:
        await asyncio.sleep(0.3)
        sent = len(peer.audio())
        started = time.monotonic()
        assert await media.play(SilenceSource(1.0)) is None
        assert 0.95 < time.monotonic() - started < 1.3
        assert len(peer.audio()) - sent <= 3  # keepalives, not 50 packets
        asyncio.get_running_loop().call_later(0.2, media.receive_digit, "5")
        started = time.monotonic()
        assert await media.play(SilenceSource(5.0), interrupt_on_digits=True) == "5"
        assert time.monotonic() - started < 0.6
    finally:
        media.close()
