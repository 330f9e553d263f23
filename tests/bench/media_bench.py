"""Media benchmark: concurrent ``<Play>`` streams per process, next to a same-run baseline.

Run: .venv/bin/python tests/bench/media_bench.py [--streams 100,500,1000] [--seconds 10]

For each stream count, one process (uvloop, like the daemon) opens N MediaSessions on
127.0.0.1, each playing a looped 1 kHz tone (PCMU) to a sink; the sink is another process that
timestamps every packet and reports the inter-packet gap per SSRC (p50 / p99 / max) and packets
per second. CPU is the sender's process time over the measured window (100 % = one core).
Baseline: the same N streams sent by a minimal asyncio sender (one ``call_at`` chain per stream,
prebuilt packet, one socket), measured the same way. Target: >= 500 streams per core, p99 < 25 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import subprocess
import sys
import time

SINK = r"""
import json, socket, struct, sys, time
import numpy as np
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
warmup, window = float(sys.argv[1]), float(sys.argv[2])
last, gaps, count = {}, [], 0
start = time.monotonic()
sock.settimeout(0.5)
while True:
    try:
        data = sock.recv(2048)
    except socket.timeout:
        if time.monotonic() - start > warmup + window:
            break
        continue
    now = time.monotonic()
    if now - start > warmup + window:
        break
    ssrc = struct.unpack_from("!I", data, 8)[0]
    if now - start >= warmup:
        count += 1
        if ssrc in last:
            gaps.append(now - last[ssrc])
    last[ssrc] = now
g = np.array(gaps) * 1000 if gaps else np.zeros(1)
print(json.dumps({"pps": count / window, "p50": float(np.percentile(g, 50)),
                  "p99": float(np.percentile(g, 99)), "max": float(g.max()), "streams": len(last)}))
"""


def start_sink(warmup: float, window: float) -> tuple[subprocess.Popen[str], int]:
    sink = subprocess.Popen(
        [sys.executable, "-c", SINK, str(warmup), str(window)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout is not None
    return sink, int(sink.stdout.readline())


async def engine(streams: int, sink_port: int, warmup: float, window: float) -> float:
    from rcmlrouter.media import audio
    from rcmlrouter.media.clock import MediaClock
    from rcmlrouter.media.player import ClipSource
    from rcmlrouter.media.session import MediaParams, MediaSession

    clock = MediaClock()
    params = MediaParams("PCMU", 0, 101, "127.0.0.1", sink_port)
    source = ClipSource(audio.tone(1000.0, 3.0), loop=0)
    sessions = [
        await MediaSession.open("127.0.0.1", 30000 + 2 * i, params, clock) for i in range(streams)
    ]
    plays = [asyncio.create_task(session.play(source)) for session in sessions]
    result = await measure(warmup, window, lambda: [s.close() for s in sessions], plays)
    print(json.dumps({"late_ticks": clock.late_ticks, "ticks": clock.ticks}), file=sys.stderr)
    return result


async def baseline(streams: int, sink_port: int, warmup: float, window: float) -> float:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    handles: list[asyncio.TimerHandle] = []

    def send(index: int, packet: bytes, due: float) -> None:
        transport.sendto(packet, ("127.0.0.1", sink_port))
        handles[index] = loop.call_at(due + 0.02, send, index, packet, due + 0.02)

    for i in range(streams):
        packet = struct.pack("!BBHII", 0x80, 0, 0, 0, i) + bytes(160)
        due = loop.time() + 0.02
        handles.append(loop.call_at(due, send, i, packet, due))
    return await measure(warmup, window, lambda: [h.cancel() for h in handles], [])


async def measure(warmup: float, window: float, stop: object, tasks: list[asyncio.Task[object]]):
    await asyncio.sleep(warmup)
    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.sleep(window)
    used = (time.process_time() - cpu) / (time.monotonic() - wall)
    stop()  # type: ignore[operator]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return used


def run_one(kind: str, streams: int, warmup: float, window: float) -> dict[str, float]:
    sink, port = start_sink(warmup, window)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    sender = engine if kind == "engine" else baseline
    cpu = runner(sender(streams, port, warmup, window))
    out, _ = sink.communicate(timeout=30)
    result = json.loads(out.strip().splitlines()[-1])
    result["cpu"] = cpu
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", default="100,500,1000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.one:  # child: one measurement in a fresh process
        kind, streams = options.one[0], int(options.one[1])
        print(json.dumps(run_one(kind, streams, 2.0, options.seconds)))
        return 0
    print(f"{'sender':<9}{'streams':>8}{'CPU %':>8}{'µs/pkt':>8}{'streams/core':>13}"
          f"{'pps':>9}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}")  # fmt: skip
    for streams in (int(n) for n in options.streams.split(",")):
        for kind in ("baseline", "engine"):
            proc = subprocess.run(
                [sys.executable, __file__, "--one", kind, str(streams), "--seconds",
                 str(options.seconds)], capture_output=True, text=True, check=True,
                env={**os.environ, "PYTHONPATH": "daemon"},
            )  # fmt: skip
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            per_packet = r["cpu"] / max(r["pps"], 1) * 1e6
            per_core = streams / r["cpu"] if r["cpu"] else float("inf")
            print(f"{kind:<9}{streams:>8}{100 * r['cpu']:>8.1f}{per_packet:>8.1f}"
                  f"{per_core:>13.0f}{r['pps']:>9.0f}{r['p50']:>8.2f}{r['p99']:>8.2f}"
                  f"{r['max']:>8.2f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
