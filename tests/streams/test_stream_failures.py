"""A real MediaStream when the agent misbehaves or fails: bad frames, huge frames, closing first,
never reading, going silent, refusing; and the caller hanging up mid-stream.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time

from websockets.asyncio.server import ServerConnection

from rcmlrouter.httpclient.addresses import AddressBook
from rcmlrouter.httpclient.deny import DenyList, parse_networks
from rcmlrouter.media.audio import tone
from rcmlrouter.media.player import ClipSource
from rcmlrouter.streams.media_stream import MediaStream
from support.stream_agent import (
    StreamAgent,
    mark_message,
    media_message,
    read_all,
)
from support.stream_call import Call, Hooks, agent_with, connector, spec, start

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455's handshake constant


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
