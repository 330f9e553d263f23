"""Media streams benchmark: concurrent bidirectional streams per process, with a same-run baseline.

Run: .venv/bin/python tests/bench/stream_bench.py [--streams 200,400] [--seconds 10]

For each stream count N, one process (uvloop, like the daemon) opens N MediaSessions on
127.0.0.1 (the daemon's RTP path and its one media clock) and puts a bidirectional
``MediaStream`` (``<Connect><Stream>``: streams/) on each. Three other processes play the
outside world:

- the phone: sends each session 50 RTP packets/s of µ-law (the caller's voice; the stream
  forwards each to the agent as a ``media`` message) and, on the same socket (a session
  latches onto the address RTP comes from), timestamps every RTP packet the sessions send:
  the output frame gap per stream (p50 / p99 / max) and packets/s;
- the agent: a picows WebSocket server that sends each stream one 20 ms ``media`` message every
  20 ms (50 frames/s back), and counts what it receives;

So each stream carries 50 frames/s each way. CPU is the measured process's time over the window
(100 % = one core). Baseline: the same N sessions with the same inbound RTP, each playing a
looped tone instead of a stream (the same calls without streams). Target: N >= 200 with output
gap p99 < 25 ms. Each configuration runs ``--rounds`` times (3), baseline and streams
interleaved; the table shows medians. ``sent/s``, ``skipped`` (packets the clock skipped after
a stall of over 100 ms) and ``tick p99`` (how late the clock's ticks ran) are the engine's own
view; ``rx pps`` and the gaps are the phone's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

PHONE = r"""
import asyncio, json, socket, struct, sys, time
import numpy as np
import uvloop
warmup, window = float(sys.argv[1]), float(sys.argv[2])
last, gaps, count, measuring = {}, [], [0], [False]
class Ear(asyncio.DatagramProtocol):
    def datagram_received(self, data, addr):
        now = time.monotonic()
        ssrc = struct.unpack_from("!I", data, 8)[0]
        if measuring[0]:
            count[0] += 1
            if ssrc in last:
                gaps.append(now - last[ssrc])
        last[ssrc] = now
async def main():
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Ear, local_addr=("127.0.0.1", 0))
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    print(transport.get_extra_info("sockname")[1], flush=True)
    ports = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
    start, n = loop.time(), 0
    while loop.time() - start < warmup + window:
        n += 1
        await asyncio.sleep(max(0.0, start + n * 0.02 - loop.time()))
        measuring[0] = loop.time() - start >= warmup
        for i, port in enumerate(ports):  # the caller's voice: 50 packets/s to each session
            header = struct.pack("!BBHII", 0x80, 0, n & 0xFFFF, n * 160, 7000 + i)
            transport.sendto(header + b"\x55" * 160, ("127.0.0.1", port))
    g = np.array(gaps) * 1000 if gaps else np.zeros(1)
    print(json.dumps({"pps": count[0] / window, "p50": float(np.percentile(g, 50)),
                      "p99": float(np.percentile(g, 99)), "max": float(g.max()),
                      "streams": len(last)}), flush=True)
uvloop.run(main())
"""

AGENT = r"""
import asyncio, base64, json, sys, time
import uvloop
from picows import WSListener, WSMsgType, ws_create_server
warmup, window = float(sys.argv[1]), float(sys.argv[2])
tone = bytes((i * 37) & 0x7F for i in range(160))
clients, received = set(), [0]
class Agent(WSListener):
    def on_ws_connected(self, transport):
        self.sid = None
        clients.add(self)
        self.transport = transport
    def on_ws_disconnected(self, transport):
        clients.discard(self)
    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.TEXT:
            return
        data = frame.get_payload_as_bytes()
        if self.sid is None and b'"start"' in data:
            self.sid = json.loads(data)["streamSid"]
            self.message = json.dumps({"event": "media", "streamSid": self.sid,
                "media": {"payload": base64.b64encode(tone).decode()}}).encode()
        elif b'"media"' in data:
            received[0] += 1
async def main():
    server = await ws_create_server(lambda request: Agent(), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    start, n, counted = loop.time(), 0, None
    while True:
        n += 1
        await asyncio.sleep(max(0.0, start + n * 0.02 - loop.time()))
        for agent in list(clients):
            if agent.sid is not None:
                agent.transport.send(WSMsgType.TEXT, agent.message)
        if counted is None and loop.time() - start >= warmup:
            counted, received[0] = loop.time(), 0
        if counted is not None and loop.time() - counted >= window:
            break
    print(json.dumps({"agent_recv": received[0] / window}), flush=True)
    await asyncio.sleep(3600)
uvloop.run(main())
"""


async def engine(
    kind: str, streams: int, phone: subprocess.Popen[str], agent: int, seconds: float
) -> float:
    from rcmlrouter.httpclient.addresses import AddressBook
    from rcmlrouter.media import audio, rtp
    from rcmlrouter.media.clock import MediaClock
    from rcmlrouter.media.player import ClipSource
    from rcmlrouter.media.session import MediaParams, MediaSession
    from rcmlrouter.streams.connector import StreamConnector
    from rcmlrouter.streams.media_stream import MediaStream, StreamSpec

    class Hooks:
        def started(self) -> None: ...
        def stopped(self) -> None: ...
        def failed(self, code: int, message: str) -> None:
            print("failed", code, message, file=sys.stderr)

        def notify(self, code: int, message: str) -> None:
            print("notify", code, message, file=sys.stderr)

    clock = MediaClock()
    lateness: list[float] = []
    on_tick = clock._on_tick

    def timed_tick() -> None:  # the engine's own view: how late each tick of the clock ran
        lateness.append(clock.loop.time() - clock._next_tick)
        on_tick()

    clock._on_tick = timed_tick  # type: ignore[method-assign]
    assert phone.stdout is not None and phone.stdin is not None
    params = MediaParams("PCMU", 0, 101, "127.0.0.1", int(phone.stdout.readline()))
    sessions, port = [], 40000
    while len(sessions) < streams:
        port += 2
        try:
            pair = rtp.bind_pair("127.0.0.1", port)
        except OSError:
            continue
        sessions.append(await MediaSession.attach(pair, params, clock))
    ports = [session.endpoint.local_port for session in sessions]
    phone.stdin.write(json.dumps(ports) + "\n")
    phone.stdin.flush()
    connector = StreamConnector(AddressBook(), allow_insecure=True)
    tasks: list[asyncio.Task[object]] = []
    running: list[MediaStream] = []
    for i, session in enumerate(sessions):
        if kind == "streams":
            spec = StreamSpec(f"MZ{i:032d}", f"ws://127.0.0.1:{agent}/", "s", "AC", "CA",
                              bidirectional=True)  # fmt: skip
            stream = MediaStream(spec, connector, session, Hooks())
            running.append(stream)
            tasks.append(asyncio.create_task(stream.run()))
        else:
            tone = ClipSource(audio.tone(1000.0, 3.0), loop=0)
            tasks.append(asyncio.create_task(session.play(tone)))
    await asyncio.sleep(2.0)  # connected, warm
    sent = sum(s._clock_stream.sent for s in sessions)
    skipped = sum(s._clock_stream.skipped for s in sessions)
    lateness.clear()
    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - wall
    used = (time.process_time() - cpu) / elapsed
    lateness.sort()
    ENGINE.update(
        sent_pps=(sum(s._clock_stream.sent for s in sessions) - sent) / elapsed,
        skipped=sum(s._clock_stream.skipped for s in sessions) - skipped,
        tick_p99=lateness[int(len(lateness) * 0.99)] * 1000 if lateness else 0.0,
    )
    for stream in running:
        stream.stop()
    for session in sessions:
        session.close()
    await asyncio.wait(tasks, timeout=5)
    await connector.close()
    return used


ENGINE: dict[str, float] = {}


def spawn(code: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def run_one(kind: str, streams: int, seconds: float) -> dict[str, float]:
    import uvloop

    warmup = 2.0
    phone = spawn(PHONE, warmup, seconds)
    agent = spawn(AGENT, warmup, seconds)
    try:
        assert agent.stdout is not None
        agent_port = int(agent.stdout.readline())
        cpu = uvloop.run(engine(kind, streams, phone, agent_port, seconds))
        result = json.loads(phone.communicate(timeout=30)[0].strip().splitlines()[-1])
        line = agent.stdout.readline() if kind == "streams" else "{}"
        result.update(json.loads(line or "{}"))
    finally:
        for proc in (agent, phone):
            proc.kill()
    result["cpu"] = cpu
    result.update(ENGINE)
    return result


def median(results: list[dict[str, float]], key: str) -> float:
    return float(statistics.median(r.get(key, 0.0) for r in results))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", default="200,400")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.one:  # child: one measurement in a fresh process
        print(json.dumps(run_one(options.one[0], int(options.one[1]), options.seconds)))
        return 0
    print(f"{'calls':<9}{'streams':>8}{'CPU %':>8}{'%/stream':>9}{'+%/stream':>10}"
          f"{'sent/s':>8}{'skipped':>8}{'tick p99':>9}{'rx pps':>8}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'max ms':>8}{'agent rx/s':>11}")  # fmt: skip
    for streams in (int(n) for n in options.streams.split(",")):
        runs: dict[str, list[dict[str, float]]] = {"baseline": [], "streams": []}
        for _ in range(options.rounds):  # interleaved: both kinds see the same machine
            for kind in runs:
                proc = subprocess.run(
                    [sys.executable, __file__, "--one", kind, str(streams), "--seconds",
                     str(options.seconds)], capture_output=True, text=True, check=False,
                    env={**os.environ, "PYTHONPATH": "daemon"},
                )  # fmt: skip
                if proc.returncode:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    return 1
                runs[kind].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        base_cpu = median(runs["baseline"], "cpu")
        for kind, results in runs.items():
            r = {key: median(results, key) for key in results[0]}
            extra = (r["cpu"] - base_cpu) * 100 / streams if kind == "streams" else 0.0
            print(f"{kind:<9}{streams:>8}{100 * r['cpu']:>8.1f}{100 * r['cpu'] / streams:>9.3f}"
                  f"{extra:>10.3f}{r['sent_pps']:>8.0f}{r['skipped']:>8.0f}{r['tick_p99']:>9.1f}"
                  f"{r['pps']:>8.0f}{r['p50']:>8.2f}{r['p99']:>8.2f}"
                  f"{r['max']:>8.2f}{r.get('agent_recv', 0):>11.0f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
