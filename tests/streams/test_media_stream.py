"""A real MediaStream: a MediaSession on loopback RTP and an agent on loopback (a `websockets`
server following Twilio's documented protocol, support/stream_agent.py, or Pipecat): the wire
messages, the caller's audio and keys at the agent, the agent's audio on the 20 ms clock, clear
and marks, one-way tracks. Failures: test_stream_failures.py.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np
from websockets.asyncio.server import ServerConnection

from rcmlrouter.media import g711
from rcmlrouter.media.audio import tone
from rcmlrouter.media.player import ClipSource, SilenceSource
from rcmlrouter.streams.media_stream import MediaStream
from support.ports import free_port
from support.stream_agent import (
    StreamAgent,
    clear_message,
    mark_message,
    media_message,
    read_all,
    tone_ulaw,
)
from support.stream_call import Call, Hooks, agent_with, connector, spec, start


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
