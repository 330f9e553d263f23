"""A real MediaStream: a MediaSession on loopback RTP and a `websockets` agent on loopback.

The caller is a UDP socket in the test (it sends µ-law RTP and records what it gets); the agent
follows Twilio's documented protocol (support/stream_agent.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection

from rcmlrouter.httpclient.addresses import AddressBook
from rcmlrouter.httpclient.deny import DenyList, parse_networks
from rcmlrouter.media import g711, rtp
from rcmlrouter.media.audio import tone
from rcmlrouter.media.clock import MediaClock
from rcmlrouter.media.player import ClipSource, SilenceSource
from rcmlrouter.media.session import MediaParams, MediaSession
from rcmlrouter.streams.connector import StreamConnector
from rcmlrouter.streams.media_stream import MediaStream, StreamSpec
from support.ports import free_port
from support.stream_agent import (
    StreamAgent,
    clear_message,
    mark_message,
    media_message,
    read_all,
    tone_ulaw,
)

EVENT_PT = 101
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455's handshake constant


class Caller(asyncio.DatagramProtocol):
    """The caller's RTP socket: what it hears, with arrival times."""

    def __init__(self) -> None:
        self.heard: list[tuple[float, rtp.RtpPacket]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        packet = rtp.parse(data)
        if packet is not None:
            self.heard.append((time.monotonic(), packet))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def audio_since(self, since: float) -> list[tuple[float, bytes]]:
        return [(at, p.payload) for at, p in self.heard if at >= since and p.payload_type == 0]


@dataclass
class Hooks:
    events: list[tuple[str, int | None]] = field(default_factory=list)
    notes: list[tuple[int, str]] = field(default_factory=list)

    def started(self) -> None:
        self.events.append(("started", None))

    def stopped(self) -> None:
        self.events.append(("stopped", None))

    def failed(self, error_code: int, message: str) -> None:
        self.events.append(("failed", error_code))

    def notify(self, error_code: int, message: str) -> None:
        self.notes.append((error_code, message))


@dataclass
class Call:
    session: MediaSession
    caller: Caller
    clock: MediaClock
    seq: int = 0

    def speak(self, payload: bytes) -> None:
        """One RTP packet from the caller."""
        self.seq += 1
        packet = rtp.RtpPacket(0, False, self.seq, self.seq * 160, 1234, payload)
        assert self.caller.transport is not None
        self.caller.transport.sendto(
            rtp.pack(packet), ("127.0.0.1", self.session.endpoint.local_port)
        )

    def press(self, digit: str) -> None:
        self.session.receive_digit(digit)


@pytest.fixture
async def call() -> AsyncIterator[Call]:
    loop = asyncio.get_running_loop()
    _, caller = await loop.create_datagram_endpoint(Caller, local_addr=("127.0.0.1", 0))
    clock = MediaClock()
    params = MediaParams("PCMU", 0, EVENT_PT, "127.0.0.1", caller.port)
    session = await MediaSession.attach(rtp.bind_pair("127.0.0.1", 0), params, clock)
    yield Call(session, caller, clock)
    session.close()
    assert caller.transport is not None
    caller.transport.close()


CONNECTORS: list[StreamConnector] = []


@pytest.fixture(autouse=True)
async def _close_connectors() -> AsyncIterator[None]:
    yield
    while CONNECTORS:
        await CONNECTORS.pop().close()


def connector(**kwargs: object) -> StreamConnector:
    book = kwargs.pop("book", None)
    book = AddressBook() if book is None else book
    options: dict[str, object] = {"allow_insecure": True, "connect_timeout": 2.0}
    options.update(kwargs)
    made = StreamConnector(book, **options)  # type: ignore[arg-type]
    CONNECTORS.append(made)
    return made


def spec(url: str, **kwargs: object) -> StreamSpec:
    values: dict[str, object] = {
        "stream_sid": "MZ" + "1" * 32,
        "url": url,
        "name": "agent",
        "account_sid": "AC1",
        "call_sid": "CA1",
        "bidirectional": True,
        "parameters": {"who": "test"},
        "headers": {"X-Twilio-Signature": "sig"},
    }
    values.update(kwargs)
    return StreamSpec(**values)  # type: ignore[arg-type]


async def start(
    call: Call, agent: StreamAgent, **kwargs: object
) -> tuple[MediaStream, Hooks, asyncio.Task[object]]:
    hooks = Hooks()
    options = {k: v for k, v in kwargs.items() if k in ("buffer_seconds",)}
    spec_kwargs = {k: v for k, v in kwargs.items() if k not in options and k != "conn"}
    stream = MediaStream(
        spec(agent.url, **spec_kwargs),
        kwargs.get("conn") or connector(),  # type: ignore[arg-type]
        call.session,
        hooks,
        **options,  # type: ignore[arg-type]
    )
    task: asyncio.Task[object] = asyncio.create_task(stream.run())
    return stream, hooks, task


async def agent_with(behaviour: object) -> StreamAgent:
    return await StreamAgent(behaviour=behaviour).start()  # type: ignore[arg-type]


async def test_connected_start_caller_audio_dtmf_and_stop(call: Call) -> None:
    agent = await StreamAgent().start()
    stream, hooks, task = await start(call, agent)
    await agent.wait_for("start")
    voice = tone_ulaw(440.0, 0.5)
    for offset in range(0, len(voice), 160):
        call.speak(voice[offset : offset + 160])
        await asyncio.sleep(0.02)
    call.press("7")
    await agent.wait_for("media", 25)
    await agent.wait_for("dtmf")
    stream.stop()
    end = await task
    await agent.wait_for("stop")
    kinds = [r.message["event"] for r in agent.received]
    assert kinds[:2] == ["connected", "start"]
    assert kinds[-1] == "stop"
    start_message = agent.events("start")[0]
    assert start_message["start"]["customParameters"] == {"who": "test"}
    assert start_message["start"]["tracks"] == ["inbound"]
    numbers = [int(r.message["sequenceNumber"]) for r in agent.received[1:]]
    assert numbers == list(range(1, len(numbers) + 1))
    media = agent.events("media")
    assert [int(m["media"]["chunk"]) for m in media] == list(range(1, len(media) + 1))
    stamps = [int(m["media"]["timestamp"]) for m in media]
    assert stamps == sorted(stamps)
    assert agent.events("dtmf")[0]["dtmf"] == {"track": "inbound_track", "digit": "7"}
    assert agent.headers[0]["x-twilio-signature"] == "sig"
    heard = agent.inbound_audio()
    spectrum = np.abs(np.fft.rfft(heard.astype(float)))
    assert abs(np.argmax(spectrum[1:]) + 1 - 440 * len(heard) / 8000) <= 3
    assert hooks.events == [("started", None), ("stopped", None)]
    assert end.error_code is None and not end.by_agent
    await agent.stop()


async def test_agent_audio_plays_in_steady_20ms_frames_from_a_burst(call: Call) -> None:
    async def burst(agent: StreamAgent, ws: ServerConnection) -> None:
        start = json.loads(await ws.recv())  # connected
        start = json.loads(await ws.recv())
        sid = start["streamSid"]
        audio = tone_ulaw(1000.0, 1.0)
        for offset in range(0, len(audio), 1000):  # 1 s of audio at once, odd-sized messages
            await ws.send(media_message(sid, audio[offset : offset + 1000]))
        await ws.send(mark_message(sid, "end-of-tone"))
        await read_all(agent, ws)

    agent = await agent_with(burst)
    stream, _hooks, task = await start(call, agent)
    await agent.wait_for("mark", timeout=3)
    played = [
        (at, payload) for at, payload in call.caller.audio_since(0) if payload != b"\xff" * 160
    ]
    assert 48 <= len(played) <= 51, len(played)
    gaps = np.diff([at for at, _ in played])
    assert np.percentile(gaps, 99) < 0.025 + 0.02  # generous: two cores shared with others
    assert 0.9 < played[-1][0] - played[0][0] < 1.2
    pcm = g711.decode(b"".join(p for _, p in played), "PCMU")
    spectrum = np.abs(np.fft.rfft(pcm.astype(float)))
    assert abs((np.argmax(spectrum[1:]) + 1) * 8000 / len(pcm) - 1000) < 10
    stream.stop()
    await task
    await agent.stop()


async def test_clear_stops_the_audio_within_40ms_and_returns_marks_in_order(
    call: Call,
) -> None:
    cleared: list[float] = []

    async def talk_then_clear(agent: StreamAgent, ws: ServerConnection) -> None:
        await ws.recv()
        sid = json.loads(await ws.recv())["streamSid"]
        await ws.send(media_message(sid, tone_ulaw(800.0, 2.0)))
        await ws.send(mark_message(sid, "one"))
        await ws.send(media_message(sid, tone_ulaw(800.0, 2.0)))
        await ws.send(mark_message(sid, "two"))
        await asyncio.sleep(0.5)
        cleared.append(time.monotonic())
        await ws.send(clear_message(sid))
        await read_all(agent, ws)

    agent = await agent_with(talk_then_clear)
    stream, _hooks, task = await start(call, agent)
    await agent.wait_for("mark", 2, timeout=3)
    assert [m["mark"]["name"] for m in agent.events("mark")] == ["one", "two"]
    await asyncio.sleep(0.1)
    sound = [at for at, p in call.caller.audio_since(0) if p != b"\xff" * 160]
    assert sound and sound[-1] - cleared[0] < 0.040, sound[-1] - cleared[0]
    stream.stop()
    await task
    await agent.stop()


async def test_bad_json_and_binary_frames_are_noted_once_and_the_stream_goes_on(
    call: Call,
) -> None:
    async def misbehave(agent: StreamAgent, ws: ServerConnection) -> None:
        await ws.recv()
        sid = json.loads(await ws.recv())["streamSid"]
        for _ in range(3):
            await ws.send("{not json")
            await ws.send(b"\x00\x01binary")
            await ws.send('{"event": "dance"}')
        await ws.send(mark_message(sid, "still-here"))
        await read_all(agent, ws)

    agent = await agent_with(misbehave)
    stream, hooks, task = await start(call, agent)
    await agent.wait_for("mark")
    assert sorted(code for code, _ in hooks.notes) == [31924]  # one notification per stream
    stream.stop()
    end = await task
    assert end.error_code is None
    await agent.stop()


async def test_a_huge_frame_ends_the_stream_with_an_error(call: Call) -> None:
    async def huge(agent: StreamAgent, ws: ServerConnection) -> None:
        await ws.recv()
        sid = json.loads(await ws.recv())["streamSid"]
        await ws.send(media_message(sid, b"\xff" * 200_000))
        await read_all(agent, ws)

    agent = await agent_with(huge)
    _stream, hooks, task = await start(call, agent, conn=connector(max_message=65536))
    end = await asyncio.wait_for(task, 5)
    assert end.error_code == 31924
    assert hooks.events == [("started", None), ("failed", 31924)]
    await agent.stop()


async def test_the_agent_closing_first_stops_the_stream(call: Call) -> None:
    async def hang_up(agent: StreamAgent, ws: ServerConnection) -> None:
        await ws.recv()
        await ws.recv()
        await ws.close()

    agent = await agent_with(hang_up)
    _stream, hooks, task = await start(call, agent)
    end = await asyncio.wait_for(task, 5)
    assert end.by_agent and end.error_code is None
    assert hooks.events == [("started", None), ("stopped", None)]
    await agent.stop()


async def test_the_caller_hanging_up_sends_stop(call: Call) -> None:
    agent = await StreamAgent().start()
    _stream, _hooks, task = await start(call, agent)
    await agent.wait_for("start")
    call.session.close()
    await asyncio.wait_for(task, 5)
    await agent.wait_for("stop")
    await agent.stop()


async def test_refused_and_insecure_and_denied_connections_fail_with_their_codes(
    call: Call,
) -> None:
    cases = [
        ("ws://127.0.0.1:9/none", connector(), 31902),
        ("ws://127.0.0.1:9/none", connector(allow_insecure=False), 31922),
        (
            "ws://127.0.0.1:9/none",
            connector(book=AddressBook(DenyList(parse_networks(["127.0.0.0/8"])))),
            31923,
        ),
    ]
    for url, conn, code in cases:
        hooks = Hooks()
        stream = MediaStream(spec(url), conn, call.session, hooks)
        end = await asyncio.wait_for(stream.run(), 5)
        assert end.error_code == code, (url, end)
        assert hooks.events == [("failed", code)]
        await conn.close()


async def test_an_agent_that_never_reads_never_delays_the_call(call: Call) -> None:
    async def deaf(agent: StreamAgent, ws: ServerConnection) -> None:
        await ws.wait_closed()  # never reads: TCP buffers fill, then our queue

    agent = await StreamAgent(behaviour=deaf).start()
    agent.max_size = None
    stream, hooks, task = await start(call, agent, conn=connector(send_queue=50))
    while stream.socket is None:
        await asyncio.sleep(0.01)
    started = time.monotonic()
    playing = asyncio.create_task(call.session.play(ClipSource(tone(500.0, 1.0))))
    frame = b"\x55" * 160
    for _ in range(40):  # 40 bursts of 2,000 frames (16 MB of JSON) while a tone plays
        for _ in range(2000):
            stream.inbound(frame, "PCMU")
        await asyncio.sleep(0.02)
    await playing
    assert time.monotonic() - started < 4.0
    assert stream.socket.dropped > 0
    assert [code for code, _ in hooks.notes] == [31925]
    assert call.clock.late_ticks <= 5
    stream.stop()
    await asyncio.wait_for(task, 5)
    await agent.stop()


async def test_both_tracks_of_a_one_way_stream_carry_what_plays(call: Call) -> None:
    agent = await StreamAgent().start()
    stream, _hooks, task = await start(call, agent, bidirectional=False, track="both_tracks")
    await agent.wait_for("start")
    assert agent.events("start")[0]["start"]["tracks"] == ["inbound", "outbound"]
    for _ in range(10):
        call.speak(b"\x00" * 160)
    await call.session.play(ClipSource(tone(600.0, 0.5)))
    stream.stop()
    await task
    tracks = [m["media"]["track"] for m in agent.events("media")]
    assert tracks.count("inbound") == 10
    assert tracks.count("outbound") >= 24
    await agent.stop()


async def test_a_stream_keeps_a_quiet_call_on_the_clock(call: Call) -> None:
    """With silence suppression (idle_keepalive) a <Pause> sends nothing; a stream's outbound
    track still gets every 20 ms frame."""
    call.session.idle_keepalive = 1.0
    await call.session.play(SilenceSource(0.5))  # asleep now: off the clock
    agent = await StreamAgent().start()
    stream, _hooks, task = await start(call, agent, bidirectional=False, track="outbound_track")
    await agent.wait_for("start")
    await call.session.play(SilenceSource(1.0))
    stream.stop()
    await task
    assert len(agent.events("media")) >= 45
    await agent.stop()


AGENT = Path(__file__).resolve().parents[1] / "support" / "pipecat_agent.py"


async def test_a_pipecat_barge_in_clears_the_callers_audio_within_40ms(
    call: Call, tmp_path: Path
) -> None:
    """Pipecat's interruption (its serializer's ``clear``) stops what the caller hears."""
    port, out = free_port(), tmp_path / "agent.json"
    agent = await asyncio.create_subprocess_exec(
        sys.executable, str(AGENT), "--port", str(port), "--out", str(out), "--tone", "800",
        "--tone-seconds", "4", "--interrupt-after", "1.0", stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert agent.stdout is not None
        assert (await asyncio.wait_for(agent.stdout.readline(), 30)).strip() == b"ready"
        hooks = Hooks()
        stream = MediaStream(spec(f"ws://127.0.0.1:{port}/"), connector(), call.session, hooks)
        task = asyncio.create_task(stream.run())
        await asyncio.sleep(2.0)
        stream.stop()
        await task
        await asyncio.wait_for(agent.wait(), 15)
    finally:
        if agent.returncode is None:
            agent.kill()
    result = json.loads(out.read_text())
    heard_at = call.caller.audio_since(0)
    sound = [at for at, p in heard_at if np.abs(g711.decode(p, "PCMU")).max() > 3000]
    assert sound, "the caller heard nothing"
    heard = sound[-1] - sound[0]
    assert 0.6 < heard < 1.2, heard
    assert sound[-1] - result["clear_at"] < 0.040, sound[-1] - result["clear_at"]


async def test_an_agent_that_goes_silent_is_found_by_a_ping(call: Call) -> None:
    """The agent's host stops answering without closing anything (no FIN): after the ping's
    idle and reply times the stream ends as a dropped socket (31921), not never."""

    async def handshake_then_silence(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        await asyncio.sleep(30)  # reads nothing, answers nothing, closes nothing

    server = await asyncio.start_server(handshake_then_silence, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hooks = Hooks()
    conn = connector(ping_idle=0.3, ping_reply=0.3)
    stream = MediaStream(spec(f"ws://127.0.0.1:{port}/"), conn, call.session, hooks)
    started = time.monotonic()
    end = await asyncio.wait_for(stream.run(), 5)
    assert end.error_code == 31921 and end.by_agent
    assert hooks.events == [("started", None), ("failed", 31921)]
    assert time.monotonic() - started < 2.0
    server.close()
